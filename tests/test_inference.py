"""Inference entry points: transformers' `pipeline("depth-estimation")` and `depth-anything predict`."""

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.cli import main as cli_main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_config) -> Path:
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    directory = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(directory)
    DepthAnythingHFImageProcessor(size=56).save_pretrained(directory)
    return directory


def ramp(height: int, width: int) -> np.ndarray:
    """A diagonal ramp over [0, 1] with a bright square: structure that every bit depth keeps."""
    values = np.add.outer(np.linspace(0, 0.6, height), np.linspace(0, 0.4, width))
    values[height // 4 : height // 2, width // 4 : width // 2] = 0.95
    return values


def sixteen_bit_png(path: Path) -> Path:
    # Values above 255 everywhere but the corner: an 8-bit conversion clips them all to white.
    PIL.Image.fromarray(np.round(ramp(30, 44) * 65535).astype(np.uint16)).save(path)
    return path


def float_tiff(path: Path) -> Path:
    # Values in (0, 1): an 8-bit conversion truncates them all to 0.
    PIL.Image.fromarray(ramp(30, 44).astype(np.float32), mode="F").save(path)
    return path


def processor_path_prediction(checkpoint: Path, image) -> torch.Tensor:
    """The processor -> model -> post-processing result, as the README's second snippet computes it."""
    processor = DepthAnythingHFImageProcessor.from_pretrained(checkpoint)
    model = DepthAnythingHFForDepthEstimation.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        outputs = model(**processor(image, return_tensors="pt"))
    return processor.post_process_depth_estimation(outputs, target_sizes=[(30, 44)])[0]["predicted_depth"]


@pytest.mark.parametrize("make_image", [sixteen_bit_png, float_tiff], ids=["I;16", "F"])
def test_pipeline_gives_the_processor_result_for_sixteen_bit_and_float_images(checkpoint, tmp_path, make_image):
    path = make_image(tmp_path / ("image.png" if make_image is sixteen_bit_png else "image.tif"))
    expected = processor_path_prediction(checkpoint, str(path))
    # The processor read the full bit depth: an 8-bit RGB copy of the file gives another prediction.
    eight_bit = processor_path_prediction(checkpoint, PIL.Image.open(path).convert("RGB"))
    # Relative to the spread: disparity is affine-invariant, and a fresh head adds a constant bias.
    assert (expected - eight_bit).abs().max() > 0.05 * (expected.max() - expected.min())

    estimator = pipeline("depth-estimation", model=str(checkpoint))
    for image in (str(path), PIL.Image.open(path), path.read_bytes()):
        result = estimator(image)
        torch.testing.assert_close(result["predicted_depth"], expected, rtol=1e-5, atol=1e-6)
        assert result["depth"].size == (44, 30)


def test_predict_writes_the_processor_result_of_a_sixteen_bit_image(checkpoint, tmp_path):
    path = sixteen_bit_png(tmp_path / "image.png")
    cli_main(["predict", str(checkpoint), str(path), "--outputs", "npy", "--output_dir", str(tmp_path / "out")])
    expected = processor_path_prediction(checkpoint, str(path))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "image_disparity.npy"), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_predict_names_an_unknown_model_type_instead_of_asking_to_run_code(checkpoint, tmp_path):
    misnamed = shutil.copytree(checkpoint, tmp_path / "misnamed")
    config = json.loads((misnamed / "config.json").read_text())
    config["model_type"] = "depth_anything_hff"
    (misnamed / "config.json").write_text(json.dumps(config))
    image = sixteen_bit_png(tmp_path / "image.png")
    with pytest.raises(SystemExit, match=r"model_type 'depth_anything_hff', which neither transformers nor"):
        cli_main(["predict", str(misnamed), str(image), "--output_dir", str(tmp_path / "out")])
