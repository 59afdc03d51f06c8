"""The `evaluate`-library module loads offline from its folder and computes what compute_metrics computes."""

import json
import os
import subprocess
import sys

import pytest
import torch

from depth_anything_hf.evaluation import EVALUATE_MODULE_PATH, MetricsAverager, compute_metrics, get_preset

# Runs in a fresh interpreter so that the offline switches and the module cache location are in force
# from the first import of `evaluate`.
_LOAD_AND_COMPUTE = """
import json, sys
import evaluate, torch
module_path, cache_dir = sys.argv[1], sys.argv[2]
generator = torch.Generator().manual_seed(0)
depths = [torch.rand(40, 50, generator=generator) * 8 + 1 for _ in range(3)]
predictions = [3.0 / depth + 0.2 * torch.rand(40, 50, generator=generator) for depth in depths]
valid_masks = [depth < 7 for depth in depths]
depth_metrics = evaluate.load(module_path, cache_dir=cache_dir)
result = depth_metrics.compute(
    predictions=[p.numpy() for p in predictions], references=[d.numpy() for d in depths],
    valid_masks=[m.numpy() for m in valid_masks], prediction_type="disparity", protocol="midas", dataset="nyu",
)
print(json.dumps(result))
"""


def test_evaluate_load_from_the_folder_offline_matches_compute_metrics(tmp_path):
    environment = dict(
        os.environ,
        HF_EVALUATE_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_MODULES_CACHE=str(tmp_path / "modules"),
        HF_HOME=str(tmp_path / "hf_home"),
    )
    completed = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_COMPUTE, str(EVALUATE_MODULE_PATH), str(tmp_path / "cache")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    generator = torch.Generator().manual_seed(0)
    depths = [torch.rand(40, 50, generator=generator) * 8 + 1 for _ in range(3)]
    predictions = [3.0 / depth + 0.2 * torch.rand(40, 50, generator=generator) for depth in depths]
    nyu = get_preset("nyu")
    averager = MetricsAverager()
    for prediction, depth in zip(predictions, depths):
        averager.update(
            compute_metrics(
                prediction, depth, depth < 7, prediction_type="disparity", protocol="midas",
                depth_cap=nyu.max_depth, min_depth=nyu.min_depth, crop=nyu.crop,
            )
        )
    expected = averager.compute()
    assert result["protocol"] == "midas"
    assert (result["num_images"], result["num_skipped"]) == (3, 0)
    for name, value in expected["metrics"].items():
        assert result[name] == pytest.approx(value, rel=1e-6), name
    assert 0 < result["abs_rel"] < 0.5
