"""Skip samples that cannot be decoded, so that a long job never dies on one bad file.

Every skipped sample is counted once (per dataset name, in this process: a stream read pass after pass meets
the same bad file in every pass) and its first skip is logged as a warning that names it, so bad files are
visible without stopping the stream. `skipped_samples_summary` is the total that a run reports at its end.
"""

import collections
import struct
import tarfile
from collections.abc import Callable, Iterable, Iterator

from datasets.utils import logging
from PIL import Image

logger = logging.get_logger(__name__)

# What a bad file raises: unreadable or truncated files (OSError, EOFError, struct.error),
# corrupt or mismatched content (ValueError, SyntaxError from Pillow's parsers), a missing
# array in an HDF5 file (KeyError), damaged tar shards, absurdly large images.
UNDECODABLE_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    SyntaxError,
    KeyError,
    struct.error,
    tarfile.TarError,
    Image.DecompressionBombError,
)

_skipped_ids_per_dataset: collections.defaultdict[str, set[str]] = collections.defaultdict(set)


def log_skipped_sample(dataset_name: str, sample_id: str, error: BaseException) -> None:
    """Count a skipped sample of `dataset_name` and, the first time it is skipped, log a warning naming it and why."""
    skipped_ids = _skipped_ids_per_dataset[dataset_name]
    if sample_id in skipped_ids:
        return
    skipped_ids.add(sample_id)
    logger.warning(
        f"Skipped sample {sample_id!r} of dataset {dataset_name!r} "
        f"({len(skipped_ids)} distinct samples skipped so far in this process): "
        f"{type(error).__name__}: {error}"
    )


def skipped_sample_ids() -> dict[str, set[str]]:
    """The ids of the samples skipped so far in this process, per dataset name."""
    return {name: set(ids) for name, ids in _skipped_ids_per_dataset.items()}


def skipped_sample_counts() -> dict[str, int]:
    """How many distinct samples were skipped so far in this process, per dataset name."""
    return {name: len(ids) for name, ids in _skipped_ids_per_dataset.items()}


def skipped_samples_summary(skipped_ids: dict[str, set[str]] | dict[str, list[str]]) -> str:
    """One line for the end of a run: the distinct samples skipped in total and per dataset."""
    counts = {name: len(ids) for name, ids in sorted(skipped_ids.items()) if ids}
    if not counts:
        return "No sample was skipped."
    per_dataset = ", ".join(f"{name!r}: {count}" for name, count in counts.items())
    return (
        f"Skipped {sum(counts.values())} samples that could not be read or used ({per_dataset}); the first skip "
        "of each was logged as a warning naming it."
    )


def decodable_samples(
    records: Iterable[dict], decode: Callable[[dict], dict], dataset_name: str
) -> Iterator[dict]:
    """Yield `decode(record)` for each record (a dict with an "id"), skipping those that fail.

    This is the generator given to `datasets.Dataset.from_generator` /
    `IterableDataset.from_generator`: `records` is a list in `gen_kwargs`, so `datasets`
    shards it across processes and DataLoader workers.
    """
    for record in records:
        try:
            sample = decode(record)
        except UNDECODABLE_ERRORS as error:
            log_skipped_sample(dataset_name, record["id"], error)
            continue
        yield sample
