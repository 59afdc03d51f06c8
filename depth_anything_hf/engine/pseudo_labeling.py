"""The data engine of Depth Anything (METHOD.md section 4): pseudo disparity from the teacher on CLEAN images.

One function, `predict_pseudo_disparity`, computes the targets, both here (written to parquet shards by
`training_scripts/pseudo_label.py`) and in the student's online `--teacher` mode, so that both give the
same targets. The images it sees are made by `teacher_input_images`: decoded RGB resized to the teacher's
input resolution by the teacher's image processor.

A pseudo-labeled dataset is a folder of parquet shards, one row per image (`PSEUDO_LABEL_FEATURES`):
- `image`: the image file exactly as stored in the source (`datasets.Image`: original bytes, the id as path);
- `disparity`: float16 [h, w], the teacher's prediction at its input resolution (h, w multiples of 14);
- `original_height`, `original_width`: the size of the decoded image (EXIF orientation applied);
- `dataset`: the unlabeled source as named on the command line; `id`: the image's id within it;
- `teacher`: the teacher's name or path; `teacher_sha256`: a hash of its weights.

`load_pseudo_labels` / `pseudo_labeled_samples` turn such a dataset back into student samples: the image
resized to the disparity's size exactly as when it was labelled, in [0, 1], with the disparity as float32.

Shards are written atomically (`ShardWriter`: a hidden temp file, fsync, `os.replace`) under deterministic
names per (process, shard index), and each process records its position in the stream (`ProgressRecord`)
only after a shard is durable, so a run killed at any moment resumes without losing or repeating images.
"""

import dataclasses
import glob
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets import Features, List, Value
from datasets import Image as ImageFeature
from huggingface_hub import DatasetCardData, HfApi

from ..data import decode_rgb, load_unlabeled_images, shard_for_process
from ..image_processing_depth_anything_hf import DepthAnythingHFImageProcessor

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
# Hidden, so that `datasets` never reads progress records or half-written shards as data.
PROGRESS_DIRECTORY = ".progress"
AUTOCAST_DTYPES = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def teacher_input_images(
    rgb_images: Sequence, image_processor, device: torch.device | str | None = None
) -> list[torch.Tensor]:
    """Each RGB image resized to the teacher's input resolution by `image_processor`: float32 [3, h, w] in [0, 1].

    Not normalised, so that the student can perturb the same image; `teacher_pixel_values` normalises. The resize
    runs on `device` (the teacher's, when labelling): on a GPU that keeps the bicubic resize off the CPU, which
    otherwise bounds the data engine's throughput.
    """
    return [
        image_processor.preprocess(rgb_image, do_normalize=False, device=device)["pixel_values"][0]
        for rgb_image in rgb_images
    ]


def teacher_pixel_values(images: torch.Tensor, image_processor) -> torch.Tensor:
    """`images` ([B, 3, h, w] in [0, 1]) normalised with the teacher processor's mean and std."""
    return image_processor.normalize(images, image_processor.image_mean, image_processor.image_std)


def predict_pseudo_disparity(
    teacher: torch.nn.Module, pixel_values: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The teacher's pseudo disparity T(u) of clean images u (METHOD.md section 4, data engine): float16 [B, h, w].

    `pixel_values` are the normalised clean images [B, 3, h, w]. The teacher must be in eval mode: dropout or
    drop-path would make the targets random. Autocast is set here, not inherited from the caller, so that
    the data engine and the student's online teacher compute the same targets: `autocast_dtype` None runs in
    the teacher's own dtype, torch.bfloat16 / torch.float16 under autocast.
    """
    if teacher.training:
        raise ValueError("teacher is in training mode; call teacher.eval() so that its pseudo-labels are deterministic")
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
        raise ValueError(f"pixel_values must be a [B, 3, h, w] tensor, got {getattr(pixel_values, 'shape', pixel_values)!r}")
    with torch.no_grad(), torch.autocast(
        pixel_values.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
    ):
        disparity = teacher(pixel_values).predicted_depth
    return disparity.to(torch.float16)


def label_teacher_inputs(
    teacher: torch.nn.Module, image_processor, images: Sequence[torch.Tensor], autocast_dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """Pseudo disparity (float16 [h, w], on the teacher's device) of each `teacher_input_images` image.

    Images whose processed sizes differ (aspect ratios) go through the teacher in separate batches, one
    per size, in a fixed order, so the same images always form the same batches.
    """
    device = next(teacher.parameters()).device
    indices_of_size: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        indices_of_size.setdefault(tuple(image.shape[-2:]), []).append(index)
    disparities: list[torch.Tensor | None] = [None] * len(images)
    for indices in indices_of_size.values():
        pixel_values = teacher_pixel_values(torch.stack([images[index] for index in indices]), image_processor)
        batch_disparity = predict_pseudo_disparity(teacher, pixel_values.to(device), autocast_dtype)
        for index, disparity in zip(indices, batch_disparity):
            disparities[index] = disparity
    return disparities


def label_images(
    teacher: torch.nn.Module, image_processor, rgb_images: Sequence, autocast_dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """Pseudo disparity (float16 [h, w], on the teacher's device) of each RGB image, as the data engine labels it."""
    device = next(teacher.parameters()).device
    images = teacher_input_images(rgb_images, image_processor, device)
    return label_teacher_inputs(teacher, image_processor, images, autocast_dtype)


def teacher_sha256(model: torch.nn.Module) -> str:
    """sha256 of a model's weights: every state-dict entry's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _disparity_column(disparities: Sequence[np.ndarray]) -> pa.Array:
    """float16 [h, w] maps as one arrow list<list<halffloat>> column, built from offsets without Python floats."""
    row_counts = [disparity.shape[0] for disparity in disparities]
    row_lengths = np.concatenate([np.full(disparity.shape[0], disparity.shape[1]) for disparity in disparities])
    values = pa.array(np.concatenate([disparity.reshape(-1) for disparity in disparities]))
    rows = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int32)), values)
    return pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int32)), rows)


def pseudo_label_table(
    examples: Sequence[dict], disparities: Sequence[torch.Tensor], teacher: str, teacher_hash: str
) -> pa.Table:
    """Rows of `PSEUDO_LABEL_FEATURES` for unlabeled `examples` ({"image": PIL, "image_bytes", "id", "dataset"})."""
    maps = [disparity.cpu().numpy() for disparity in disparities]
    for example, disparity in zip(examples, maps):
        if not np.isfinite(disparity).all():
            raise ValueError(
                f"the teacher's disparity of {example['dataset']}/{example['id']} is not finite in float16 "
                f"(range {np.nanmin(disparity)} .. {np.nanmax(disparity)}); float16 holds |values| <= 65504"
            )
    schema = PSEUDO_LABEL_FEATURES.arrow_schema
    columns = {
        "image": pa.array(
            [{"bytes": example["image_bytes"], "path": example["id"]} for example in examples],
            type=schema.field("image").type,
        ),
        "disparity": _disparity_column(maps),
        "original_height": pa.array([example["image"].height for example in examples], pa.int32()),
        "original_width": pa.array([example["image"].width for example in examples], pa.int32()),
        "dataset": pa.array([example["dataset"] for example in examples], pa.string()),
        "id": pa.array([example["id"] for example in examples], pa.string()),
        "teacher": pa.array([teacher] * len(examples), pa.string()),
        "teacher_sha256": pa.array([teacher_hash] * len(examples), pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def _hidden_temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _commit(file, path: Path) -> None:
    """Make `file` (open on `_hidden_temporary_path(path)`) durable and rename it to `path` atomically.

    Readers see the old file or the complete new one, never a partial one, even after SIGKILL or power loss.
    """
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(_hidden_temporary_path(path), path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def shard_name(rank: int, world_size: int, shard_index: int) -> str:
    """The file name of shard `shard_index` of process `rank`: the same in every run with these arguments."""
    return f"{SPLIT}-{rank:05d}-of-{world_size:05d}-{shard_index:06d}.parquet"


class ShardWriter:
    """One parquet shard written batch by batch (one row group each), so memory stays one batch deep.

    The shard appears under its final name only when `close()` returns, complete and fsynced.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open(_hidden_temporary_path(self.path), "wb")
        self._writer = pq.ParquetWriter(self._file, PSEUDO_LABEL_FEATURES.arrow_schema)
        self.num_rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)
        self.num_rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        _commit(self._file, self.path)


@dataclasses.dataclass
class ProgressRecord:
    """What one process has durably written: its next shard, its images so far and its stream position.

    `run` holds the arguments that decide the output (sources, teacher, batching); a rerun must match them,
    or its shards would not continue the earlier ones.
    """

    rank: int
    world_size: int
    run: dict
    shards_written: int = 0
    images_written: int = 0
    stream_state: dict | None = None
    finished: bool = False

    @staticmethod
    def path_of(output_dir: str | os.PathLike, rank: int, world_size: int) -> Path:
        return Path(output_dir) / PROGRESS_DIRECTORY / f"process-{rank:05d}-of-{world_size:05d}.json"

    @classmethod
    def resume_or_start(cls, output_dir: str | os.PathLike, rank: int, world_size: int, run: dict) -> "ProgressRecord":
        """This process's record from an earlier run with the same arguments, or a fresh one.

        Raises a ValueError when `output_dir` holds a run with other arguments or another number of processes.
        """
        other_world_sizes = sorted(
            {
                int(Path(path).stem.rsplit("-of-", 1)[1])
                for path in glob.glob(str(Path(output_dir) / PROGRESS_DIRECTORY / "process-*-of-*.json"))
            }
            - {world_size}
        )
        if other_world_sizes:
            raise ValueError(
                f"output_dir {str(output_dir)!r} holds a run with {other_world_sizes[0]} processes; resume it with "
                f"that many processes (this run has {world_size}) or write to a new --output_dir"
            )
        path = cls.path_of(output_dir, rank, world_size)
        if not path.exists():
            return cls(rank=rank, world_size=world_size, run=run)
        record = cls(**json.loads(path.read_text()))
        if record.run != run:
            changed = sorted(key for key in run.keys() | record.run.keys() if run.get(key) != record.run.get(key))
            raise ValueError(
                f"output_dir {str(output_dir)!r} holds a run with other arguments ({', '.join(changed)} differ: "
                f"{ {key: record.run.get(key) for key in changed} } there); rerun with the same arguments to resume "
                "it, or write to a new --output_dir"
            )
        return record

    def save(self, output_dir: str | os.PathLike) -> None:
        path = self.path_of(output_dir, self.rank, self.world_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(_hidden_temporary_path(path), "wb")
        file.write(json.dumps(dataclasses.asdict(self), indent=1).encode())
        _commit(file, path)


class UnlabeledImageStream:
    """This process's part of several unlabeled image sources, read one after another, with a resumable position.

    Each source (`load_unlabeled_images`: a folder, tar shards or a `datasets` dataset) is split across the
    processes by `shard_for_process`, so together they read every image exactly once. Examples are
    {"image": PIL RGB, "image_bytes", "id", "dataset": the source as given}. `state_dict()` taken after an
    example, loaded into a new stream over the same sources, continues with the next example.
    """

    def __init__(self, sources: Sequence[str], rank: int, world_size: int, split: str = "train", image_column: str = "image"):
        if isinstance(sources, str) or not sources:
            raise ValueError(f"sources must be a non-empty list of unlabeled datasets, got {sources!r}")
        self.sources = list(sources)
        self.rank, self.world_size = rank, world_size
        self.split, self.image_column = split, image_column
        self._source_index = 0
        self._source_state: dict | None = None
        self._stream: datasets.IterableDataset | None = None

    def _source_stream(self, index: int) -> datasets.IterableDataset:
        stream = load_unlabeled_images(self.sources[index], streaming=True, split=self.split, image_column=self.image_column)
        return shard_for_process(stream, self.rank, self.world_size)

    def __iter__(self) -> Iterator[dict]:
        for index in range(self._source_index, len(self.sources)):
            stream = self._source_stream(index)
            if index == self._source_index and self._source_state is not None:
                stream.load_state_dict(self._source_state)
            self._source_index, self._stream = index, stream
            for example in stream:
                yield {**example, "dataset": self.sources[index]}

    def state_dict(self) -> dict:
        source_state = self._stream.state_dict() if self._stream is not None else self._source_state
        return {"source_index": self._source_index, "source_state": source_state}

    def load_state_dict(self, state: dict) -> None:
        self._source_index, self._source_state = state["source_index"], state["source_state"]
        self._stream = None


def write_dataset_card(output_dir: str | os.PathLike, run: dict, num_images: int) -> None:
    """README.md of a finished pseudo-labeled dataset: `datasets` metadata (configs, features, size) and a summary."""
    info = datasets.DatasetInfo(
        features=PSEUDO_LABEL_FEATURES,
        splits=datasets.SplitDict.from_split_dict([{"name": SPLIT, "num_examples": num_images}]),
    )
    card_data = DatasetCardData(
        configs=[{"config_name": "default", "data_files": [{"split": SPLIT, "path": SHARD_PATTERN}]}],
        tags=["depth-estimation", "pseudo-labels", "depth-anything"],
    )
    datasets.info.DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    sources = "\n".join(f"- `{source}`" for source in run["sources"])
    content = f"""---
{card_data.to_yaml()}
---

# Pseudo-labeled images (Depth Anything data engine)

{num_images} unlabeled images with the pseudo disparity predicted by the teacher `{run["teacher"]}`
(weights sha256 `{run["teacher_sha256"]}`) on the clean images, written by `training_scripts/pseudo_label.py`
(mixed precision: {run["mixed_precision"]}).

Sources:
{sources}

Columns: `image` (the original file bytes), `disparity` (float16 [h, w], affine-invariant disparity at the
teacher's input resolution, larger = nearer), `original_height` / `original_width` (the decoded image),
`dataset` and `id` (the image's source and its id there), `teacher` and `teacher_sha256`.

```python
import datasets
pseudo_labels = datasets.load_dataset("path/to/this/folder", split="{SPLIT}")  # or a Hub dataset id
# as student samples (the image resized as when it was labelled, float32 disparity):
from depth_anything_hf.engine.pseudo_labeling import load_pseudo_labels
samples = load_pseudo_labels("path/to/this/folder")
```
"""
    path = Path(output_dir) / "README.md"
    file = open(_hidden_temporary_path(path), "wb")
    file.write(content.encode())
    _commit(file, path)


# What a finished pseudo-labeled dataset publishes: the card and the shards, not progress records or temp files.
PUBLISHED_FILES = ("README.md", SHARD_PATTERN)


def push_pseudo_labels_to_hub(output_dir: str | os.PathLike, repo_id: str, api: HfApi | None = None):
    """Upload a finished pseudo-labeled dataset (card and shards) to the Hub dataset repository `repo_id`."""
    api = api if api is not None else HfApi()
    api.create_repo(repo_id=repo_id, repo_type="dataset", exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=os.fspath(output_dir),
        allow_patterns=list(PUBLISHED_FILES),
        commit_message="Upload pseudo-labels of the Depth Anything data engine",
    )


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
        return datasets.load_dataset(os.fspath(path_or_name), split=split, streaming=streaming), 1
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
