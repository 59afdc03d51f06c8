"""Unlabeled image streams with a stable id per image, for the pseudo-labelling data engine.

Every source gives examples {"image": PIL RGB (via `to_rgb`), "image_bytes": the original
encoded file, stored as is by the pseudo-labeller, "id": a stable string, "dataset": the source as named}:
- a folder (nested directories): id = the path relative to the folder;
- webdataset-style tar shards (a glob or one .tar): id = "<shard path relative to the shards'
  common directory>/<member name>";
- a `datasets` image dataset (Hub name or local data files, its `image_column`): id = the row
  index for a `Dataset`, "<shard index>/<row in shard>" for a stream (stable however the
  stream is later split across processes or DataLoader workers).

Folders and tar shards are read by our own generator rather than `imagefolder` / `webdataset`:
those stream a folder as a single shard (no parallel reading) and refuse shards whose samples
mix image types. Images that cannot be decoded are skipped with a counted warning.

`unlabeled_images` is the one stream over several sources that both the data engine (`pseudo_label.py`) and
the student's online teacher read: seeded order, split across processes, resumable.
"""

import functools
import glob
import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import datasets
import fsspec
from datasets import Features, Value

from .caching import files_fingerprint
from .images import decode_rgb
from .mixing import shuffle_and_shard
from .sources import load_named_dataset
from .skipping import UNDECODABLE_ERRORS, log_skipped_sample

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# What a non-streamed Dataset stores; "image" is decoded from the bytes when read.
STORED_UNLABELED_FEATURES = Features({"image_bytes": Value("binary"), "id": Value("string"), "dataset": Value("string")})
# What `unlabeled_images` yields: Arrow types only, so that several sources concatenate.
UNLABELED_STREAM_COLUMNS = ["image_bytes", "id", "dataset"]


def _file_image(source: dict) -> Iterator[tuple[str, Callable[[], bytes]]]:
    yield source["id"], Path(source["path"]).read_bytes


def _tar_images(source: dict) -> Iterator[tuple[str, Callable[[], bytes]]]:
    # Stream mode ("r|*") reads the shard once, front to back, as webdataset readers do.
    with tarfile.open(source["path"], "r|*") as tar:
        for member in tar:
            if member.isfile() and member.name.lower().endswith(source["extensions"]):
                yield f"{source['id']}/{member.name}", tar.extractfile(member).read


def _image_value_bytes(value: dict) -> bytes:
    """The encoded bytes of an undecoded `datasets.Image` value ({"bytes", "path"})."""
    if value.get("bytes") is not None:
        return value["bytes"]
    if value.get("path"):
        with fsspec.open(value["path"], "rb") as image_file:
            return image_file.read()
    raise ValueError("image value has neither bytes nor a path")


def _dataset_shard_images(source: dict, dataset: datasets.IterableDataset, image_column: str):
    shard = dataset.shard(num_shards=dataset.n_shards, index=source["shard_index"])
    for row, example in enumerate(shard):
        yield f"{source['shard_index']}/{row}", functools.partial(_image_value_bytes, example[image_column])


def _checked_example(
    image_id: str, read_bytes: Callable[[], bytes], with_rgb: bool, dataset_name: str, image_processor=None
) -> dict | None:
    """{"image"?, "image_bytes", "id", "dataset"} for a usable image; None (logged, counted) for one that cannot be
    decoded or that `image_processor` refuses (too elongated to resize)."""
    try:
        image_bytes = read_bytes()
        rgb = decode_rgb(image_bytes)
        if image_processor is not None:
            image_processor.processed_size((rgb.height, rgb.width))
    except UNDECODABLE_ERRORS as error:
        log_skipped_sample(dataset_name, image_id, error)
        return None
    example = {"image_bytes": image_bytes, "id": image_id, "dataset": dataset_name}
    return {"image": rgb, **example} if with_rgb else example


def _generate_images(
    sources: list[dict], read_images: Callable, with_rgb: bool, dataset_name: str, image_processor=None
):
    """The `from_generator` generator: every usable image of every source (file, tar shard, dataset shard).
    A source that breaks while being read (a damaged tar) is skipped from there on."""
    for source in sources:
        try:
            for image_id, read_bytes in read_images(source):
                example = _checked_example(image_id, read_bytes, with_rgb, dataset_name, image_processor)
                if example is not None:
                    yield example
        except UNDECODABLE_ERRORS as error:
            log_skipped_sample(dataset_name, source["id"], error)


def _add_rgb_images(batch: dict) -> dict:
    return {"image": [decode_rgb(image_bytes) for image_bytes in batch["image_bytes"]], **batch}


def _verified_rows(batch: dict, indices: list[int], image_column: str, dataset_name: str, image_processor) -> dict:
    """Batched `Dataset.map`: the bytes, index id and dataset of every usable row; the others are dropped."""
    examples = [
        _checked_example(str(index), functools.partial(_image_value_bytes, value), False, dataset_name, image_processor)
        for index, value in zip(indices, batch[image_column])
    ]
    kept = [example for example in examples if example is not None]
    return {column: [example[column] for example in kept] for column in STORED_UNLABELED_FEATURES}


def _load_image_dataset(name: str, split: str, streaming: bool, image_column: str, cache_dir, image_processor):
    dataset = load_named_dataset(name, split=split, streaming=streaming, cache_dir=cache_dir)
    if dataset.column_names is not None and image_column not in dataset.column_names:
        raise ValueError(f"dataset {name!r} has no image column {image_column!r}; its columns are {dataset.column_names}")
    dataset = dataset.select_columns([image_column]).cast_column(image_column, datasets.Image(decode=False))
    if streaming:
        return datasets.IterableDataset.from_generator(
            _generate_images,
            gen_kwargs={
                "sources": [{"id": f"shard {index}", "shard_index": index} for index in range(dataset.n_shards)],
                "read_images": functools.partial(_dataset_shard_images, dataset=dataset, image_column=image_column),
                "with_rgb": True,
                "dataset_name": name,
                "image_processor": image_processor,
            },
        )
    verified = dataset.map(
        _verified_rows, batched=True, with_indices=True, remove_columns=[image_column],
        features=STORED_UNLABELED_FEATURES,
        fn_kwargs={"image_column": image_column, "dataset_name": name, "image_processor": image_processor},
    )
    return verified.with_transform(_add_rgb_images)


def _normalised_extensions(extensions) -> tuple[str, ...]:
    if isinstance(extensions, str) or not all(isinstance(extension, str) and extension.startswith(".") for extension in extensions):
        raise ValueError(f"extensions must be a sequence of suffixes like '.jpg', got {extensions!r}")
    return tuple(extension.lower() for extension in extensions)


def _local_sources(source_text: str, extensions: tuple[str, ...]) -> tuple[list[dict], Callable] | None:
    """The files (or tar shards) of a local folder / tar glob source with their ids, and their reader; None for a
    `datasets` source (a Hub name, or a folder without images)."""
    if source_text.endswith(".tar") or any(character in source_text for character in "*?["):
        shard_paths = sorted(glob.glob(source_text))
        if not shard_paths:
            raise ValueError(f"no tar shards match {source_text!r}")
        shards_directory = os.path.commonpath([os.path.dirname(os.path.abspath(path)) for path in shard_paths])
        sources = [
            {"id": Path(os.path.abspath(path)).relative_to(shards_directory).as_posix(), "path": path, "extensions": extensions}
            for path in shard_paths
        ]
        return sources, _tar_images
    root = Path(source_text)
    image_paths = sorted(path for path in root.rglob("*") if path.suffix.lower() in extensions and path.is_file()) if root.is_dir() else []
    if not image_paths:
        return None
    return [{"id": path.relative_to(root).as_posix(), "path": str(path)} for path in image_paths], _file_image


def load_unlabeled_images(
    source,
    streaming: bool = True,
    split: str = "train",
    image_column: str = "image",
    extensions=IMAGE_EXTENSIONS,
    cache_dir=None,
    image_processor=None,
):
    """Stream the images of `source` as {"image": PIL RGB, "image_bytes": bytes, "id": str, "dataset": source}.

    `source` is a folder (searched recursively for `extensions`), a tar path or glob of
    webdataset-style shards ("shards/train-*.tar"), or a `datasets` name / local dataset
    directory with an `image_column` (a folder without images is loaded this way).
    streaming=True gives a `datasets.IterableDataset` (one shard per file, tar shard or
    source shard); streaming=False a `datasets.Dataset` holding the bytes, decoding "image"
    when read. `split` and `cache_dir` apply to `datasets` sources and the non-streamed cache.
    With an `image_processor` (the teacher's), images it refuses (more elongated than its
    `max_aspect_ratio`) are skipped and counted like undecodable ones, so that a labelling run never stops on them.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a folder, a tar glob or a dataset name, got {type(source).__name__}")
    source_text = os.fspath(source)
    local = _local_sources(source_text, _normalised_extensions(extensions))
    if local is None:
        return _load_image_dataset(source_text, split, streaming, image_column, cache_dir, image_processor)
    sources, read_images = local
    gen_kwargs = {
        "sources": sources, "read_images": read_images, "dataset_name": source_text, "image_processor": image_processor
    }
    if streaming:
        return datasets.IterableDataset.from_generator(_generate_images, gen_kwargs={**gen_kwargs, "with_rgb": True})
    stored = datasets.Dataset.from_generator(
        _generate_images, features=STORED_UNLABELED_FEATURES, gen_kwargs={**gen_kwargs, "with_rgb": False},
        cache_dir=cache_dir,
        fingerprint=files_fingerprint(
            sources, read_images.__qualname__, image_processor and image_processor.to_dict(), code_files=(__file__,)
        ),
    )
    return stored.with_transform(_add_rgb_images)


def unlabeled_images(
    sources: Sequence[str],
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    split: str = "train",
    image_column: str = "image",
    image_processor=None,
    shuffle_buffer_size: int = 1,
) -> datasets.IterableDataset:
    """The one unlabeled image stream, of the data engine and of the student's online teacher: the images of all
    `sources` (`load_unlabeled_images`) as {"image_bytes", "id", "dataset"}, in a seeded order, this process's part.

    The order is a `seed`ed permutation of the shards (`shuffle_and_shard`): of the images themselves for folders
    (one shard per file), of the shards for tar and `datasets` sources (whose members keep their stored order, as
    webdataset shards are shuffled when written). It is the same in every run with the same seed, and datasets'
    `state_dict()` / `load_state_dict()` resume it exactly. Only encoded bytes travel (an Arrow type, so that the
    sources concatenate); consumers decode them with `decode_rgb`.
    """
    if isinstance(sources, str) or not sources:
        raise ValueError(f"sources must be a non-empty list of unlabeled datasets, got {sources!r}")
    per_source = [
        load_unlabeled_images(source, split=split, image_column=image_column, image_processor=image_processor)
        .select_columns(UNLABELED_STREAM_COLUMNS)
        for source in sources
    ]
    images = per_source[0] if len(per_source) == 1 else datasets.concatenate_datasets(per_source)
    return shuffle_and_shard(images, seed, rank, world_size, shuffle_buffer_size)


def unlabeled_sources_fingerprint(sources: Sequence[str], extensions=IMAGE_EXTENSIONS) -> list[str]:
    """Per source, a sha256 of its listing: each image file's (or tar shard's) id and size for folders and tar
    globs, every file's for a local `datasets` folder, and the name alone for a Hub dataset (pin a revision).

    A run that resumes a position in the stream must see the same listing: a file added, removed or replaced by
    one of another size in between would shift the position and duplicate or miss images.
    """
    fingerprints = []
    for source in sources:
        source_text = os.fspath(source)
        local = _local_sources(source_text, _normalised_extensions(extensions))
        if local is not None:
            files = [(entry["id"], entry["path"]) for entry in local[0]]
        elif os.path.isdir(source_text):
            files = [
                (path.relative_to(source_text).as_posix(), str(path))
                for path in sorted(Path(source_text).rglob("*"))
                if path.is_file()
            ]
        else:
            files = []
        digest = hashlib.sha256(source_text.encode())
        for file_id, path in files:
            digest.update(f"\n{file_id}\t{os.stat(path).st_size}".encode())
        fingerprints.append(digest.hexdigest())
    return fingerprints
