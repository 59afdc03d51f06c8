"""Skip samples that cannot be decoded, so that a long job never dies on one bad file.

Every skip is counted (per dataset name, in this process) and logged as a warning that names
the sample, so bad files are visible without stopping the stream.
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

_skipped_per_dataset: collections.Counter = collections.Counter()


def log_skipped_sample(dataset_name: str, sample_id: str, error: BaseException) -> None:
    """Count one skipped sample of `dataset_name` and log a warning naming it and why."""
    _skipped_per_dataset[dataset_name] += 1
    logger.warning(
        f"Skipped sample {sample_id!r} of dataset {dataset_name!r} "
        f"({_skipped_per_dataset[dataset_name]} skipped so far in this process): "
        f"{type(error).__name__}: {error}"
    )


def skipped_sample_counts() -> dict[str, int]:
    """How many samples were skipped so far in this process, per dataset name."""
    return dict(_skipped_per_dataset)


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
