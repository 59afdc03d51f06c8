"""Mixing labeled datasets by weight, and splitting a stream across processes."""

import math
import numbers

import datasets
from datasets.distributed import split_dataset_by_node

from .schema import LABELED_FEATURES


def mix_labeled_datasets(weighted_datasets, seed: int, stopping_strategy: str = "all_exhausted"):
    """Interleave `[(dataset, weight), ...]` so each sample comes from dataset i with
    probability weight_i / sum(weights) (`datasets.interleave_datasets`).

    All datasets must be of one kind (all `Dataset` or all `IterableDataset`) and have the
    labeled schema. With "all_exhausted" (default) the mix goes on until every dataset has
    been seen entirely at least once, restarting the ones exhausted earlier.
    """
    weighted_datasets = list(weighted_datasets)
    if not weighted_datasets:
        raise ValueError("weighted_datasets must hold at least one (dataset, weight) pair")
    for index, pair in enumerate(weighted_datasets):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"weighted_datasets[{index}] must be a (dataset, weight) pair, got {pair!r}")
        dataset, weight = pair
        if not isinstance(dataset, (datasets.Dataset, datasets.IterableDataset)):
            raise TypeError(f"weighted_datasets[{index}] holds a {type(dataset).__name__}, not a datasets Dataset/IterableDataset")
        if not (isinstance(weight, numbers.Real) and math.isfinite(weight) and weight > 0):
            raise ValueError(f"weighted_datasets[{index}] has weight {weight!r}; weights must be finite and > 0")
        if dataset.features != LABELED_FEATURES:
            raise ValueError(f"weighted_datasets[{index}] does not have the labeled schema: features {dataset.features}")
    if len({type(dataset) for dataset, _ in weighted_datasets}) > 1:
        raise TypeError("weighted_datasets mixes Dataset and IterableDataset; stream all or none of them")
    total_weight = sum(weight for _, weight in weighted_datasets)
    return datasets.interleave_datasets(
        [dataset for dataset, _ in weighted_datasets],
        probabilities=[weight / total_weight for _, weight in weighted_datasets],
        seed=seed,
        stopping_strategy=stopping_strategy,
    )


def shard_for_process(dataset, rank: int, world_size: int):
    """The part of `dataset` that process `rank` of `world_size` reads
    (`datasets.distributed.split_dataset_by_node`); together the processes read every sample once.

    A stream whose shard count is a multiple of world_size is split by shards; otherwise every
    process reads the whole stream and keeps one sample in world_size.
    """
    if not (isinstance(world_size, int) and world_size >= 1):
        raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
    if not (isinstance(rank, int) and 0 <= rank < world_size):
        raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)


def shuffle_and_shard(dataset: datasets.IterableDataset, seed: int, rank: int, world_size: int, shuffle_buffer_size: int = 1):
    """`dataset` in a `seed`ed order, process `rank`'s part of it (`shard_for_process`).

    The order permutes the shards (`shuffle(buffer_size=1)`), which datasets' `state_dict()` resumes exactly; a
    `shuffle_buffer_size` above 1 also mixes examples across shards, but a resumed run restarts the buffer empty.
    `set_epoch` gives each pass another permutation.
    """
    # One shard and no buffer leave nothing to shuffle; skipping it also skips the 5 s that `datasets` waits
    # at the end of every pass over shuffled parquet shards (an Arrow threading workaround).
    if dataset.n_shards > 1 or shuffle_buffer_size > 1:
        dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
    return shard_for_process(dataset, rank, world_size)
