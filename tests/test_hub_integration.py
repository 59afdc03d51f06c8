"""Auto classes, the depth-estimation pipeline, trust_remote_code without the package, and the convert CLI."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForDepthEstimation,
    DepthAnythingForDepthEstimation,
    pipeline,
)

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.cli import main as cli_main


@pytest.fixture
def checkpoint_dir(tmp_path, tiny_model):
    directory = tmp_path / "checkpoint"
    tiny_model.save_pretrained(directory)
    DepthAnythingHFImageProcessor(size=56).save_pretrained(directory)
    return directory


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(45, 60, 3), dtype=np.uint8))


def test_auto_classes_resolve_our_model(checkpoint_dir):
    assert isinstance(AutoConfig.from_pretrained(checkpoint_dir), DepthAnythingHFConfig)
    assert isinstance(AutoModel.from_pretrained(checkpoint_dir), DepthAnythingHFForDepthEstimation)
    assert isinstance(AutoModelForDepthEstimation.from_pretrained(checkpoint_dir), DepthAnythingHFForDepthEstimation)
    assert isinstance(AutoImageProcessor.from_pretrained(checkpoint_dir), DepthAnythingHFImageProcessor)
    config = json.loads((checkpoint_dir / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_depth_anything_hf.DepthAnythingHFConfig",
        "AutoModelForDepthEstimation": "modeling_depth_anything_hf.DepthAnythingHFForDepthEstimation",
    }
    assert (checkpoint_dir / "model.safetensors").exists()


def test_pipeline_runs_without_errors_or_unsupported_warnings(checkpoint_dir, tiny_model, photo, caplog, monkeypatch):
    prompts = []  # transformers asks on stdin before it runs remote code; with the package installed it must not
    monkeypatch.setattr("builtins.input", lambda *question: prompts.append(question) or "n")
    with caplog.at_level(logging.WARNING):
        depth_estimator = pipeline("depth-estimation", model=str(checkpoint_dir))
        result = depth_estimator(photo)
    messages = " ".join(record.getMessage() for record in caplog.records).lower()
    assert "not supported" not in messages and "error" not in messages
    assert prompts == []

    predicted = result["predicted_depth"]
    assert tuple(predicted.shape[-2:]) == (45, 60)
    assert result["depth"].size == (60, 45)
    # Independent path: processor by hand (lower_bound to 56x70), model, bilinear back with align_corners.
    processor = DepthAnythingHFImageProcessor(size=56)
    pixel_values = processor(images=photo, return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape) == (1, 3, 56, 70)
    with torch.no_grad():
        disparity = tiny_model(pixel_values).predicted_depth
    expected = torch.nn.functional.interpolate(disparity[:, None], (45, 60), mode="bilinear", align_corners=True)
    torch.testing.assert_close(predicted.reshape(45, 60), expected[0, 0], rtol=1e-5, atol=1e-5)


def test_trust_remote_code_without_the_package(checkpoint_dir, tiny_model, tmp_path):
    """A user who never installed depth_anything_hf loads the saved directory with transformers alone."""
    pixel_values = torch.randn(1, 3, 56, 70)
    torch.save(pixel_values, tmp_path / "pixel_values.pt")
    with torch.no_grad():
        torch.save(tiny_model(pixel_values).predicted_depth, tmp_path / "expected.pt")
    script = f"""
import sys
sys.modules["depth_anything_hf"] = None  # any import of the package now fails
import torch
from transformers import AutoImageProcessor, AutoModelForDepthEstimation
model = AutoModelForDepthEstimation.from_pretrained({str(checkpoint_dir)!r}, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained({str(checkpoint_dir)!r}, trust_remote_code=True)
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
assert type(processor).__name__ == "DepthAnythingHFImageProcessor"
with torch.no_grad():
    depth = model(torch.load({str(tmp_path / "pixel_values.pt")!r})).predicted_depth
torch.testing.assert_close(depth, torch.load({str(tmp_path / "expected.pt")!r}))
print("remote code ok")
"""
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "remote code ok" in completed.stdout


def test_convert_cli_to_transformers_and_back(checkpoint_dir, tiny_model, tmp_path):
    cli_main(["convert", str(checkpoint_dir), str(tmp_path / "hf"), "--to", "transformers"])
    plain = DepthAnythingForDepthEstimation.from_pretrained(tmp_path / "hf").eval()
    assert type(AutoImageProcessor.from_pretrained(tmp_path / "hf")).__name__.startswith("DPTImageProcessor")
    cli_main(["convert", str(tmp_path / "hf"), str(tmp_path / "ours")])
    ours = AutoModelForDepthEstimation.from_pretrained(tmp_path / "ours").eval()
    assert isinstance(ours, DepthAnythingHFForDepthEstimation)
    pixel_values = torch.randn(1, 3, 518, 518)  # the stored 37x37 grid: no pos-embed interpolation
    with torch.no_grad():
        expected = tiny_model(pixel_values).predicted_depth
        torch.testing.assert_close(plain(pixel_values).predicted_depth, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours(pixel_values).predicted_depth, expected)


def test_convert_cli_requires_the_version_of_an_official_checkpoint(tmp_path):
    torch.save({}, tmp_path / "weights.pth")
    with pytest.raises(SystemExit, match="--version v1\\|v2 is required"):
        cli_main(["convert", str(tmp_path / "weights.pth"), str(tmp_path / "out")])


def test_eval_cli_writes_results_for_the_middlebury_frame(checkpoint_dir, tmp_path):
    pytest.importorskip("skimage", reason="skimage is not installed (dev extra): the Middlebury frame")
    cli_main(["eval", str(checkpoint_dir), "--dataset", "middlebury=skimage", "--output_dir", str(tmp_path / "eval")])
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    text = json.dumps(results)
    assert "middlebury" in text and "disparity" in text and "abs_rel" in text
