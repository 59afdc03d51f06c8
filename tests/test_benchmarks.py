"""CI smoke: each benchmark script runs one tiny iteration end to end, so that none of them rots.

Timings are not checked (no test asserts speed); the rows must be complete and consistent, and where the
benchmark compares outputs, ours must equal transformers'.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState

from depth_anything_hf import DepthAnythingHFForDepthEstimation

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# The tiny model of conftest.tiny_config, with its stored position grid at the benchmark resolution (56 / 14 = 4)
# so that ours and transformers' interpolate nothing and agree exactly.
TINY = [
    "--config_overrides",
    json.dumps(
        {
            "hidden_size": 32,
            "num_hidden_layers": 4,
            "num_attention_heads": 2,
            "out_indices": [0, 1, 2, 3],
            "neck_hidden_sizes": [8, 16, 32, 32],
            "fusion_hidden_size": 16,
            "head_hidden_size": 8,
            "image_size": 56,
        }
    ),
    "--device",
    "cpu",
]


@pytest.fixture
def benchmark_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_inference_benchmark(benchmark_module):
    arguments = ["--resolution", "56", "--batch_sizes", "1", "--iterations", "1", "--warmup", "0"]
    rows = benchmark_module("inference").main(TINY + arguments + ["--peak_matmul_size", "32", "--profile"])
    assert [(row["dtype"], row["batch_size"]) for row in rows] == [("fp32", 1), ("bf16", 1)]
    for row in rows:
        assert row["ratio"] == pytest.approx(row["transformers_ms"] / row["ours_ms"])
        assert row["floor_ms"] > 0
        if row["dtype"] == "fp32":
            assert row["relative_difference"] <= 1e-4


def test_pipeline_benchmark(benchmark_module):
    arguments = ["--photo_size", "48", "64", "--dtypes", "fp32", "--iterations", "1", "--warmup", "0"]
    rows = benchmark_module("pipeline").main(TINY + arguments)
    assert [row["stage"] for row in rows] == ["end to end", "pre-processing", "model", "post-processing"]
    for row in rows:
        assert row["ratio"] == pytest.approx(row["transformers_ms"] / row["ours_ms"])


def test_training_benchmark(benchmark_module):
    arguments = ["--resolutions", "56", "--batch_size", "3", "--steps", "1", "--warmup_steps", "0"]
    results = benchmark_module("training").main(
        TINY + arguments + ["--labeling_batch_size", "2", "--photo_size", "48", "64"]
    )
    assert [row["resolution"] for row in results["student"]] == [56]
    assert all(rate > 0 for rate in results["student"][0].values())
    assert set(results["pseudo_labeling"]) == {"bare", "engine_forward", "engine_from_photos"}


def test_data_loading_benchmark(benchmark_module, synthetic_rgbd):
    arguments = ["--dataset", str(synthetic_rgbd), "--resolution", "56", "--batch_size", "2", "--steps", "1"]
    seconds = benchmark_module("data_loading").main(
        TINY + arguments + ["--warmup_steps", "0", "--rounds", "1", "--prefetch_examples", "2"]
    )
    assert list(seconds) == ["in memory", "read here", "prefetch 2"]
    assert all(value > 0 for value in seconds.values())


def test_data_engine_benchmark(benchmark_module, synthetic_rgbd, tiny_config, tmp_path):
    tiny_config(image_size=28).to_json_file(tmp_path / "tiny.json")
    arguments = ["--images", str(synthetic_rgbd), "--model_config", str(tmp_path / "tiny.json"), "--resolution", "28"]
    results = benchmark_module("data_engine").main(
        arguments + ["--num_images", "12", "--shard_size", "4", "--batch_size", "2", "--bare_iterations", "1"]
    )
    assert results["ratio"] == pytest.approx(results["engine_images_per_second"] / results["bare_images_per_second"])
    assert results["resident_mib_peak"] > 0  # sampled from the start; a 12-image run may end between samples


def test_metric_finetune_benchmark(benchmark_module, synthetic_rgbd, tiny_config, tmp_path):
    torch.manual_seed(0)
    DepthAnythingHFForDepthEstimation(tiny_config(image_size=28, version="v2")).save_pretrained(tmp_path / "relative")
    arguments = ["--init_from", str(tmp_path / "relative"), "--dataset", str(synthetic_rgbd), "--resolution", "28"]
    results = benchmark_module("metric_finetune").main(
        arguments
        + ["--steps", "3", "--warmup_steps", "0", "--rounds", "2", "--max_validation_images", "2"]
        + ["--work_dir", str(tmp_path / "runs"), "--mixed_precision", "bf16"]
    )
    assert list(results) == ["official", "official_sdpa", "ours", "official_bf16", "ours_bf16"]
    # No Accelerate state left behind: an in-process script after it would inherit its bf16 (seen in the data
    # engine's tests, which label with accelerate's configured precision by default).
    assert not AcceleratorState._shared_state
    assert all(result["step_seconds"] > 0 for result in results.values())
    for result in results.values():
        lowest, highest = result["range"]
        assert 0 < lowest <= highest <= 20.0  # the metric head: Sigmoid x max_depth
    # The two official loops differ only in how attention is computed: same weights, images and draws.
    for name, value in results["official"]["metrics"].items():
        assert results["official_sdpa"]["metrics"][name] == pytest.approx(value, rel=1e-3), name
