"""Weighted mixing of labeled datasets and splitting streams across processes."""

import collections

import datasets
import numpy as np
import pytest

from depth_anything_hf.data.mixing import mix_labeled_datasets, shard_for_process
from depth_anything_hf.data.schema import LABELED_FEATURES, make_labeled_sample

_PIXEL = np.zeros((1, 1, 3), dtype=np.uint8)


def _tiny_samples(sample_ids: list[str], name: str):
    for sample_id in sample_ids:
        yield make_labeled_sample(
            image=_PIXEL, depth=np.ones((1, 1), dtype=np.float32), depth_kind="depth",
            valid_mask=np.ones((1, 1), dtype=bool), dataset=name, sample_id=sample_id,
        )


def _labeled(name: str, count: int, streaming: bool = True):
    gen_kwargs = {"sample_ids": [f"{name}/{index}" for index in range(count)], "name": name}
    if streaming:
        return datasets.IterableDataset.from_generator(_tiny_samples, features=LABELED_FEATURES, gen_kwargs=gen_kwargs)
    return datasets.Dataset.from_list(list(_tiny_samples(**gen_kwargs)), features=LABELED_FEATURES)


def test_weights_set_the_proportions():
    mixed = mix_labeled_datasets([(_labeled("a", 600), 3.0), (_labeled("b", 600), 1.0)], seed=0)
    first = [sample["dataset"] for _, sample in zip(range(400), mixed)]
    # Binomial(400, 0.75): mean 300, standard deviation 8.7; allow 4 standard deviations.
    assert abs(first.count("a") - 300) < 35


def test_all_exhausted_sees_every_sample_of_every_dataset():
    mixed = mix_labeled_datasets([(_labeled("a", 5, streaming=False), 1), (_labeled("b", 20, streaming=False), 1)], seed=1)
    seen = {sample["id"] for sample in mixed}
    assert seen == {f"a/{i}" for i in range(5)} | {f"b/{i}" for i in range(20)}


def test_mixing_refuses_bad_inputs():
    with pytest.raises(ValueError, match="weight"):
        mix_labeled_datasets([(_labeled("a", 2), 0.0)], seed=0)
    with pytest.raises(TypeError, match="stream all or none"):
        mix_labeled_datasets([(_labeled("a", 2), 1), (_labeled("b", 2, streaming=False), 1)], seed=0)
    with pytest.raises(ValueError, match="labeled schema"):
        mix_labeled_datasets([(datasets.Dataset.from_dict({"id": ["x"]}), 1)], seed=0)
    with pytest.raises(ValueError, match="at least one"):
        mix_labeled_datasets([], seed=0)


@pytest.mark.parametrize(("count", "streaming"), [(7, True), (8, True), (7, False)])
def test_two_processes_cover_every_id_once(count, streaming):
    dataset = _labeled("a", count, streaming=streaming)
    ids_per_rank = [[sample["id"] for sample in shard_for_process(dataset, rank, 2)] for rank in range(2)]
    assert all(ids_per_rank)
    counts = collections.Counter(ids_per_rank[0] + ids_per_rank[1])
    assert counts == collections.Counter(f"a/{index}" for index in range(count))


def test_shard_for_process_checks_rank_and_world_size():
    with pytest.raises(ValueError, match="rank"):
        shard_for_process(_labeled("a", 2), 2, 2)
    with pytest.raises(ValueError, match="world_size"):
        shard_for_process(_labeled("a", 2), 0, 0)
