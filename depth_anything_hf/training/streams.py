"""Endless, resumable data streams for the training loops.

A `ResumableStream` reads a `datasets.IterableDataset` pass after pass (`set_epoch` reshuffles each pass) and
checkpoints its position with datasets' own `IterableDataset.state_dict()` / `load_state_dict()`, so a resumed
run reads exactly the examples an uninterrupted run would have read. Shuffling is shard-order shuffling
(`shuffle(buffer_size=1)`), which unlike a shuffle buffer resumes exactly. Labeled folders and unlabeled image
folders have one shard per file, so for them that is a full permutation. Pseudo-label parquet shards hold
`pseudo_label.py --shard_size` rows each, read in labelling order within a shard; that order is itself a seeded
permutation of the unlabeled images (`unlabeled_images`), so the rows of a batch are not neighbouring files.
(`datasets` 5 reads the shuffled shards up to ten at a time, one example from each in turn, each shard one example
ahead in a thread of its own: a pass still reads every example once, and resumes exactly.)
`--shuffle_buffer_size` adds row-level mixing across shards, at the cost of an exact resume (the buffer restarts
empty).

`--prefetch_examples N > 0` moves the reading (file access, image and depth decoding, `transform`) into one reader
process that stays up to N examples ahead of the training loop. It reads the same examples in the same order as
the training process would, and hands each over with the dataset position after it, so the stream's state is the
same with or without prefetching and a run may resume with another N.
"""

import argparse
import multiprocessing
import os
import queue
import traceback
from collections.abc import Callable, Sequence

import datasets
import torch.multiprocessing
from accelerate import Accelerator

from ..data import (
    load_labeled_dataset,
    mix_labeled_datasets,
    sample_to_tensors,
    shard_for_process,
    shuffle_and_shard,
)
from ..data.pseudo_labels import load_pseudo_labels
from ..data.specs import DatasetSpec
from ..data.unlabeled import unlabeled_images

_END_OF_PASS, _FAILED = "end_of_pass", "failed"
# How long the training loop waits for the reader before checking that it is still alive.
_READER_POLL_SECONDS = 10.0


def _read_ahead(dataset, transform, epoch: int, state: dict | None, examples: multiprocessing.Queue) -> None:
    """The reader process: every pass from `epoch` on, each example (transformed) with the dataset position after
    it, then an end-of-pass marker; an exception is handed over as its traceback."""
    torch.set_num_threads(1)  # as torch's DataLoader workers: the cores are the training process's
    training_process = os.getppid()

    def hand_over(item: tuple) -> None:
        while True:
            try:
                return examples.put(item, timeout=_READER_POLL_SECONDS)
            except queue.Full:
                if os.getppid() != training_process:  # killed without closing the stream: nobody will read
                    raise SystemExit(0) from None

    try:
        if state is not None:
            dataset.load_state_dict(state)
        while True:
            dataset.set_epoch(epoch)
            for example in dataset:
                hand_over((transform(example) if transform else example, dataset.state_dict()))
            hand_over((_END_OF_PASS, None))
            epoch += 1
    except Exception:  # noqa: BLE001 - the training process re-raises it with its traceback
        hand_over((_FAILED, traceback.format_exc()))


class ResumableStream:
    """Examples of `dataset` (each passed through `transform` where given), pass after pass; `state_dict()` is the
    position after the last example taken. `prefetch_examples > 0` reads them in a reader process, that many
    ahead (`--prefetch_examples`)."""

    def __init__(
        self,
        dataset: datasets.IterableDataset,
        name: str,
        transform: Callable[[dict], dict] | None = None,
        prefetch_examples: int = 0,
    ):
        if not isinstance(dataset, datasets.IterableDataset):
            raise TypeError(f"{name}: expected a datasets.IterableDataset, got {type(dataset).__name__}")
        if prefetch_examples < 0:
            raise ValueError(f"{name}: prefetch_examples must be >= 0, got {prefetch_examples}")
        self.dataset = dataset
        self.name = name
        self.transform = transform
        self.prefetch_examples = prefetch_examples
        self.epoch = 0
        self._iterator = None
        self._examples_this_pass = 0
        self._resuming = False
        self._reader = self._prefetched = None
        self._dataset_state = None  # prefetching: the position after the last example taken

    def take(self, count: int) -> list[dict]:
        """The next `count` examples, starting a new pass when the current one ends."""
        if self.prefetch_examples:
            return self._take_prefetched(count)
        examples = []
        while len(examples) < count:
            if self._iterator is None:
                self.dataset.set_epoch(self.epoch)
                self._iterator = iter(self.dataset)
                self._examples_this_pass = 0
            try:
                example = next(self._iterator)
                examples.append(self.transform(example) if self.transform else example)
                self._examples_this_pass += 1
            except StopIteration:
                self._end_pass()
                self._iterator = None
            self._resuming = False
        return examples

    def _end_pass(self) -> None:
        # A pass resumed at its very end yields nothing; a pass started from the beginning must.
        if self._examples_this_pass == 0 and not self._resuming:
            raise ValueError(f"the {self.name} stream of this process is empty")
        self.epoch += 1
        self._examples_this_pass = 0

    def _take_prefetched(self, count: int) -> list[dict]:
        if self._reader is None:
            # fork, as torch's DataLoader workers: the dataset and transform need not be picklable.
            context = torch.multiprocessing.get_context("fork")
            self._prefetched = context.Queue(maxsize=self.prefetch_examples)
            self._reader = context.Process(
                target=_read_ahead,
                args=(self.dataset, self.transform, self.epoch, self._dataset_state, self._prefetched),
                name=f"{self.name} stream reader",
                daemon=True,
            )
            self._reader.start()
        examples = []
        while len(examples) < count:
            example, state = self._next_prefetched()
            if isinstance(example, str) and example == _FAILED:
                self.close()
                raise RuntimeError(f"the {self.name} stream's reader process failed:\n{state}")
            if isinstance(example, str) and example == _END_OF_PASS:
                self._end_pass()
            else:
                examples.append(example)
                self._dataset_state = state
                self._examples_this_pass += 1
            self._resuming = False
        return examples

    def _next_prefetched(self):
        while True:
            try:
                return self._prefetched.get(timeout=_READER_POLL_SECONDS)
            except queue.Empty:
                if not self._reader.is_alive():
                    exit_code = self._reader.exitcode
                    self.close()
                    raise RuntimeError(
                        f"the {self.name} stream's reader process exited (exit code {exit_code}) without handing "
                        "over an example or an error; was it killed, e.g. for memory?"
                    ) from None

    def close(self) -> None:
        """Stops the reader process, if any (a later `take` starts a new one at the stream's position)."""
        if self._reader is not None:
            self._reader.kill()
            self._reader.join()
            self._prefetched.close()
            self._reader = self._prefetched = None

    def count_examples(self) -> int:
        """The examples in one pass of this process's part, counted by reading one pass (call it before
        training: it leaves the stream at the start of its first pass)."""
        self.dataset.set_epoch(0)
        self._iterator = None
        return sum(1 for _ in self.dataset)

    def state_dict(self) -> dict:
        if self.prefetch_examples and self._dataset_state is not None:
            return {"epoch": self.epoch, "dataset": self._dataset_state}
        return {"epoch": self.epoch, "dataset": self.dataset.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        # The dataset resumes its saved pass only while its epoch equals the saved one, so a pass finished
        # after the checkpoint starts the next one from the beginning.
        self.close()
        self.epoch = state["epoch"]
        self.dataset.load_state_dict(state["dataset"])
        self._dataset_state = state["dataset"]
        self._iterator = None
        self._examples_this_pass = 0
        self._resuming = True


def labeled_stream(
    specs: Sequence[DatasetSpec],
    accelerator: Accelerator,
    seed: int,
    shuffle_buffer_size: int = 1,
    split: str = "train",
    zero_depth_is_sky: bool = False,
    prefetch_examples: int = 0,
) -> ResumableStream:
    """The `--dataset` specs (each read with the split spec `split`, `--dataset_split`) mixed by weight,
    shuffled, this process's part (`mix_labeled_datasets`), as tensors (`sample_to_tensors`);
    `zero_depth_is_sky` (`--zero_depth_is_sky`) marks zero depth of folder datasets as sky."""
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
    return ResumableStream(
        shard_for_process(mixed, accelerator.process_index, accelerator.num_processes),
        "labeled",
        transform=sample_to_tensors,
        prefetch_examples=prefetch_examples,
    )


def labeled_stream_from_arguments(args: argparse.Namespace, accelerator: Accelerator) -> ResumableStream:
    """`labeled_stream` of the data flags every training script shares (`arguments.add_data_arguments`)."""
    return labeled_stream(
        args.dataset,
        accelerator,
        args.seed,
        args.shuffle_buffer_size,
        args.dataset_split,
        zero_depth_is_sky=args.zero_depth_is_sky,
        prefetch_examples=args.prefetch_examples,
    )


def unlabeled_image_stream(
    sources: Sequence[str],
    accelerator: Accelerator,
    seed: int,
    shuffle_buffer_size: int = 1,
    image_processor=None,
    prefetch_examples: int = 0,
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
    return ResumableStream(images, "unlabeled", prefetch_examples=prefetch_examples)


def pseudo_labeled_stream(
    paths: Sequence[str],
    accelerator: Accelerator,
    seed: int,
    shuffle_buffer_size: int = 1,
    prefetch_examples: int = 0,
) -> ResumableStream:
    """The student samples of `--pseudo_labels` folders (`load_pseudo_labels`), each once per pass."""
    samples = shuffle_and_shard(
        load_pseudo_labels(list(paths)), seed, accelerator.process_index, accelerator.num_processes, shuffle_buffer_size
    )
    return ResumableStream(samples, "pseudo-labeled", prefetch_examples=prefetch_examples)
