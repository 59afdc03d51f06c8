"""Endless, resumable data streams for the training loops.

A `ResumableStream` reads a `datasets.IterableDataset` pass after pass (`set_epoch` reshuffles each pass) and
checkpoints its position with datasets' own `IterableDataset.state_dict()` / `load_state_dict()`, so a resumed
run reads exactly the examples an uninterrupted run would have read. Shuffling is shard-order shuffling
(`shuffle(buffer_size=1)`), which unlike a shuffle buffer resumes exactly. Labeled folders and unlabeled image
folders have one shard per file, so for them that is a full permutation. Pseudo-label parquet shards hold
`pseudo_label.py --shard_size` rows each, read in labelling order within a shard; that order is itself a seeded
permutation of the unlabeled images (`unlabeled_images`), so the rows of a batch are not neighbouring files.
`--shuffle_buffer_size` adds row-level mixing across shards, at the cost of an exact resume (the buffer restarts
empty).
"""

from collections.abc import Sequence

import datasets
from accelerate import Accelerator

from ..data import load_labeled_dataset, mix_labeled_datasets, shard_for_process, shuffle_and_shard
from ..data.pseudo_labels import load_pseudo_labels
from ..data.specs import DatasetSpec
from ..data.unlabeled import unlabeled_images


class ResumableStream:
    """Examples of `dataset`, pass after pass; `state_dict()` is the position after the last example taken."""

    def __init__(self, dataset: datasets.IterableDataset, name: str):
        if not isinstance(dataset, datasets.IterableDataset):
            raise TypeError(f"{name}: expected a datasets.IterableDataset, got {type(dataset).__name__}")
        self.dataset = dataset
        self.name = name
        self.epoch = 0
        self._iterator = None
        self._examples_this_pass = 0
        self._resuming = False

    def take(self, count: int) -> list[dict]:
        """The next `count` examples, starting a new pass when the current one ends."""
        examples = []
        while len(examples) < count:
            if self._iterator is None:
                self.dataset.set_epoch(self.epoch)
                self._iterator = iter(self.dataset)
                self._examples_this_pass = 0
            try:
                examples.append(next(self._iterator))
                self._examples_this_pass += 1
            except StopIteration:
                # A pass resumed at its very end yields nothing; a pass started from the beginning must.
                if self._examples_this_pass == 0 and not self._resuming:
                    raise ValueError(f"the {self.name} stream of this process is empty") from None
                self.epoch += 1
                self._iterator = None
            self._resuming = False
        return examples

    def count_examples(self) -> int:
        """The examples in one pass of this process's part, counted by reading one pass (call it before
        training: it leaves the stream at the start of its first pass)."""
        self.dataset.set_epoch(0)
        self._iterator = None
        return sum(1 for _ in self.dataset)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "dataset": self.dataset.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        # The dataset resumes its saved pass only while its epoch equals the saved one, so a pass finished
        # after the checkpoint starts the next one from the beginning.
        self.epoch = state["epoch"]
        self.dataset.load_state_dict(state["dataset"])
        self._iterator = None
        self._resuming = True


def labeled_stream(
    specs: Sequence[DatasetSpec],
    accelerator: Accelerator,
    seed: int,
    shuffle_buffer_size: int = 1,
    split: str = "train",
    zero_depth_is_sky: bool = False,
) -> ResumableStream:
    """The `--dataset` specs (each read with the split spec `split`, `--dataset_split`) mixed by weight,
    shuffled, this process's part (`mix_labeled_datasets`); `zero_depth_is_sky` (`--zero_depth_is_sky`) marks
    zero depth of folder datasets as sky."""
    weighted = [
        (
            load_labeled_dataset(
                spec.path,
                format=spec.kind,
                split=split,
                streaming=True,
                zero_depth_is_sky=zero_depth_is_sky or None,
            ).shuffle(seed=seed + index, buffer_size=shuffle_buffer_size),
            spec.weight,
        )
        for index, spec in enumerate(specs)
    ]
    mixed = weighted[0][0] if len(weighted) == 1 else mix_labeled_datasets(weighted, seed=seed)
    return ResumableStream(shard_for_process(mixed, accelerator.process_index, accelerator.num_processes), "labeled")


def unlabeled_image_stream(
    sources: Sequence[str], accelerator: Accelerator, seed: int, shuffle_buffer_size: int = 1, image_processor=None
) -> ResumableStream:
    """The `--unlabeled_dataset` images ({"image_bytes", "id", "dataset"}), each once per pass: the data engine's
    stream (`unlabeled_images`), so that the online teacher reads and skips images as `pseudo_label.py` does."""
    images = unlabeled_images(
        sources,
        seed,
        accelerator.process_index,
        accelerator.num_processes,
        image_processor=image_processor,
        shuffle_buffer_size=shuffle_buffer_size,
    )
    return ResumableStream(images, "unlabeled")


def pseudo_labeled_stream(
    paths: Sequence[str], accelerator: Accelerator, seed: int, shuffle_buffer_size: int = 1
) -> ResumableStream:
    """The student samples of `--pseudo_labels` folders (`load_pseudo_labels`), each once per pass."""
    samples = shuffle_and_shard(
        load_pseudo_labels(list(paths)), seed, accelerator.process_index, accelerator.num_processes, shuffle_buffer_size
    )
    return ResumableStream(samples, "pseudo-labeled")
