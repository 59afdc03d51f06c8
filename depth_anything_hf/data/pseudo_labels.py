"""The pseudo-labeled schema (the data engine's output) and its reader back to student samples.

A pseudo-labeled dataset is a folder of parquet shards, one row per image (`PSEUDO_LABEL_FEATURES`):
- `image`: the image file exactly as stored in the source (`datasets.Image`: original bytes, the id as path);
- `disparity`: float16 [h, w], the teacher's prediction at its input resolution (h, w multiples of 14);
- `original_height`, `original_width`: the size of the decoded image (EXIF orientation applied);
- `dataset`: the unlabeled source as named on the command line; `id`: the image's id within it;
- `teacher`: the teacher's name or path; `teacher_sha256`: a hash of its weights.

`load_pseudo_labels` / `pseudo_labeled_samples` turn such a dataset back into student samples: the image
resized to the disparity's size exactly as when it was labelled, in [0, 1], with the disparity as float32.
The writer is `depth_anything_hf.data_engine`.
"""

import glob
import os
from pathlib import Path

import datasets
import numpy as np
from datasets import Features, List, Value
from datasets import Image as ImageFeature

from ..image_processing_depth_anything_hf import DepthAnythingHFImageProcessor
from .images import decode_rgb
from .sources import load_named_dataset

PSEUDO_LABEL_FEATURES = Features(
    {
        "image": ImageFeature(),
        "disparity": List(List(Value("float16"))),
        "original_height": Value("int32"),
        "original_width": Value("int32"),
        "dataset": Value("string"),
        "id": Value("string"),
        "teacher": Value("string"),
        "teacher_sha256": Value("string"),
    }
)
SPLIT = "train"
DATA_DIRECTORY = "data"
SHARD_PATTERN = f"{DATA_DIRECTORY}/{SPLIT}-*.parquet"


STUDENT_SAMPLE_COLUMNS = ("image", "disparity", "original_size", "dataset", "id")


def _student_sample(row: dict, image_processor) -> dict:
    """One pseudo-labeled row (numpy-formatted) as a student sample; see `pseudo_labeled_samples`."""
    if row["image"].get("bytes") is None:
        raise ValueError(f"pseudo-labeled row {row['id']!r} holds no image bytes")
    disparity = np.asarray(row["disparity"], dtype=np.float32)
    height, width = disparity.shape
    # The labelling processor resized the decoded image to (height, width) with this same bicubic resize.
    image = image_processor.preprocess(
        decode_rgb(row["image"]["bytes"]),
        size={"height": height, "width": width},
        keep_aspect_ratio=False,
        ensure_multiple_of=1,
        do_normalize=False,
    )["pixel_values"][0]
    return {
        "image": image.numpy(),
        "disparity": disparity,
        "original_size": np.array([row["original_height"], row["original_width"]], dtype=np.int64),
        "dataset": str(row["dataset"]),
        "id": str(row["id"]),
    }


def pseudo_labeled_samples(dataset, num_shards: int = 1) -> datasets.IterableDataset:
    """Student samples from a pseudo-labeled dataset as loaded by `datasets.load_dataset("parquet", ...)`.

    Each sample (torch-formatted) holds `image` float32 [3, h, w] in [0, 1] (decoded from the stored bytes,
    RGB, resized to the teacher's input resolution exactly as when it was labelled, not normalised),
    `disparity` float32 [h, w], `original_size` int64 [2] (height, width), `dataset` and `id`.
    A non-streamed `datasets.Dataset` is read as a stream of `num_shards` shards.
    """
    if isinstance(dataset, datasets.Dataset):
        dataset = dataset.to_iterable_dataset(num_shards=num_shards)
    if not isinstance(dataset, datasets.IterableDataset):
        raise TypeError(
            f"dataset must be a datasets.Dataset or IterableDataset (one split), got {type(dataset).__name__}"
        )
    if dataset.column_names is not None:
        missing = [column for column in PSEUDO_LABEL_FEATURES if column not in dataset.column_names]
        if missing:
            raise ValueError(f"dataset is not a pseudo-labeled dataset: it lacks the columns {missing}")
    return (
        dataset.cast_column("image", ImageFeature(decode=False))
        .with_format("numpy")
        .map(
            _student_sample,
            fn_kwargs={"image_processor": DepthAnythingHFImageProcessor()},
            remove_columns=[column for column in PSEUDO_LABEL_FEATURES if column not in STUDENT_SAMPLE_COLUMNS],
        )
        .with_format("torch")
    )


def _pseudo_label_rows(path_or_name: str | os.PathLike, streaming: bool, split: str):
    """The rows of one output folder of `pseudo_label.py` or Hub dataset, and its number of parquet files."""
    path = Path(path_or_name)
    if not path.is_dir():
        return load_named_dataset(os.fspath(path_or_name), split=split, streaming=streaming), 1
    data_files = sorted(glob.glob(str(path / SHARD_PATTERN)))
    if not data_files:
        raise ValueError(f"{str(path)!r} holds no pseudo-label shards ({SHARD_PATTERN})")
    return datasets.load_dataset("parquet", data_files=data_files, split=SPLIT, streaming=streaming), len(data_files)


def load_pseudo_labels(paths_or_names, streaming: bool = True, split: str = SPLIT) -> datasets.IterableDataset:
    """Student samples (`pseudo_labeled_samples`) of the output of `pseudo_label.py`: a folder or Hub dataset id,
    or a list of them, read one after another."""
    if isinstance(paths_or_names, (str, os.PathLike)):
        paths_or_names = [paths_or_names]
    if not paths_or_names:
        raise ValueError("paths_or_names must name at least one pseudo-labeled dataset")
    rows, file_counts = zip(*(_pseudo_label_rows(path, streaming, split) for path in paths_or_names))
    all_rows = rows[0] if len(rows) == 1 else datasets.concatenate_datasets(list(rows))
    return pseudo_labeled_samples(all_rows, num_shards=sum(file_counts))
