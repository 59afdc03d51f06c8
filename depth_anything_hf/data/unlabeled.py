"""Unlabeled image streams with a stable id per image, for the pseudo-labelling data engine.

Every source gives examples {"image": PIL RGB (via `to_rgb`), "image_bytes": the original
encoded file, stored as is by the pseudo-labeller, "id": a stable string}:
- a folder (nested directories): id = the path relative to the folder;
- webdataset-style tar shards (a glob or one .tar): id = "<shard path relative to the shards'
  common directory>/<member name>";
- a `datasets` image dataset (Hub name or local data files, its `image_column`): id = the row
  index for a `Dataset`, "<shard index>/<row in shard>" for a stream (stable however the
  stream is later split across processes or DataLoader workers).

Folders and tar shards are read by our own generator rather than `imagefolder` / `webdataset`:
those stream a folder as a single shard (no parallel reading) and refuse shards whose samples
mix image types. Images that cannot be decoded are skipped with a counted warning.
"""

import functools
import glob
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import datasets
import fsspec
from datasets import Features, Value

from .caching import files_fingerprint
from .images import decode_rgb
from .mixing import shard_for_process
from .skipping import UNDECODABLE_ERRORS, log_skipped_sample

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# What a non-streamed Dataset stores; "image" is decoded from the bytes when read.
STORED_UNLABELED_FEATURES = Features({"image_bytes": Value("binary"), "id": Value("string")})


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


def _checked_example(image_id: str, read_bytes: Callable[[], bytes], with_rgb: bool, dataset_name: str) -> dict | None:
    """{"image"?, "image_bytes", "id"} for a decodable image; None (logged, counted) otherwise."""
    try:
        image_bytes = read_bytes()
        rgb = decode_rgb(image_bytes)
    except UNDECODABLE_ERRORS as error:
        log_skipped_sample(dataset_name, image_id, error)
        return None
    return {"image": rgb, "image_bytes": image_bytes, "id": image_id} if with_rgb else {"image_bytes": image_bytes, "id": image_id}


def _generate_images(sources: list[dict], read_images: Callable, with_rgb: bool, dataset_name: str):
    """The `from_generator` generator: every decodable image of every source (file, tar shard,
    dataset shard). A source that breaks while being read (a damaged tar) is skipped from there on."""
    for source in sources:
        try:
            for image_id, read_bytes in read_images(source):
                example = _checked_example(image_id, read_bytes, with_rgb, dataset_name)
                if example is not None:
                    yield example
        except UNDECODABLE_ERRORS as error:
            log_skipped_sample(dataset_name, source["id"], error)


def _add_rgb_images(batch: dict) -> dict:
    return {"image": [decode_rgb(image_bytes) for image_bytes in batch["image_bytes"]], **batch}


def _verified_rows(batch: dict, indices: list[int], image_column: str, dataset_name: str) -> dict:
    """Batched `Dataset.map`: the bytes and index id of every decodable row; the others are dropped."""
    examples = [
        _checked_example(str(index), functools.partial(_image_value_bytes, value), False, dataset_name)
        for index, value in zip(indices, batch[image_column])
    ]
    kept = [example for example in examples if example is not None]
    return {"image_bytes": [example["image_bytes"] for example in kept], "id": [example["id"] for example in kept]}


def _load_image_dataset(name: str, split: str, streaming: bool, image_column: str, cache_dir):
    dataset = datasets.load_dataset(name, split=split, streaming=streaming, cache_dir=cache_dir)
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
            },
        )
    verified = dataset.map(
        _verified_rows, batched=True, with_indices=True, remove_columns=[image_column],
        features=STORED_UNLABELED_FEATURES, fn_kwargs={"image_column": image_column, "dataset_name": name},
    )
    return verified.with_transform(_add_rgb_images)


def _normalised_extensions(extensions) -> tuple[str, ...]:
    if isinstance(extensions, str) or not all(isinstance(extension, str) and extension.startswith(".") for extension in extensions):
        raise ValueError(f"extensions must be a sequence of suffixes like '.jpg', got {extensions!r}")
    return tuple(extension.lower() for extension in extensions)


def load_unlabeled_images(
    source,
    streaming: bool = True,
    split: str = "train",
    image_column: str = "image",
    extensions=IMAGE_EXTENSIONS,
    cache_dir=None,
):
    """Stream the images of `source` as {"image": PIL RGB, "image_bytes": bytes, "id": str}.

    `source` is a folder (searched recursively for `extensions`), a tar path or glob of
    webdataset-style shards ("shards/train-*.tar"), or a `datasets` name / local dataset
    directory with an `image_column` (a folder without images is loaded this way).
    streaming=True gives a `datasets.IterableDataset` (one shard per file, tar shard or
    source shard); streaming=False a `datasets.Dataset` holding the bytes, decoding "image"
    when read. `split` and `cache_dir` apply to `datasets` sources and the non-streamed cache.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a folder, a tar glob or a dataset name, got {type(source).__name__}")
    source_text = os.fspath(source)
    extensions = _normalised_extensions(extensions)
    if source_text.endswith(".tar") or any(character in source_text for character in "*?["):
        shard_paths = sorted(glob.glob(source_text))
        if not shard_paths:
            raise ValueError(f"no tar shards match {source_text!r}")
        shards_directory = os.path.commonpath([os.path.dirname(os.path.abspath(path)) for path in shard_paths])
        sources = [
            {"id": Path(os.path.abspath(path)).relative_to(shards_directory).as_posix(), "path": path, "extensions": extensions}
            for path in shard_paths
        ]
        read_images = _tar_images
    else:
        root = Path(source_text)
        image_paths = sorted(path for path in root.rglob("*") if path.suffix.lower() in extensions and path.is_file()) if root.is_dir() else []
        if not image_paths:
            return _load_image_dataset(source_text, split, streaming, image_column, cache_dir)
        sources = [{"id": path.relative_to(root).as_posix(), "path": str(path)} for path in image_paths]
        read_images = _file_image
    gen_kwargs = {"sources": sources, "read_images": read_images, "dataset_name": source_text}
    if streaming:
        return datasets.IterableDataset.from_generator(_generate_images, gen_kwargs={**gen_kwargs, "with_rgb": True})
    stored = datasets.Dataset.from_generator(
        _generate_images, features=STORED_UNLABELED_FEATURES, gen_kwargs={**gen_kwargs, "with_rgb": False},
        cache_dir=cache_dir, fingerprint=files_fingerprint(sources, read_images.__qualname__, code_files=(__file__,)),
    )
    return stored.with_transform(_add_rgb_images)


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
