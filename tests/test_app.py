"""The demo page (`app.py`): its handler called directly, and the page in headless Chromium."""

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.prediction import colorize, load_png16

pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'depth_anything_hf[demo]'")
pytest.importorskip("matplotlib", reason="the demo needs matplotlib: pip install 'depth_anything_hf[demo]'")

REPO = Path(__file__).resolve().parents[1]


def _load_app():
    spec = importlib.util.spec_from_file_location("depth_anything_demo_app", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_config):
    directory = tmp_path_factory.mktemp("demo_model")
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(directory)
    DepthAnythingHFImageProcessor(size=140).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo_photo") / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 84, 3), dtype=np.uint8)).save(path)
    return path


def test_handler_returns_the_slider_pair_and_the_downloads(checkpoint, photo):
    app = _load_app()
    demo = app.DepthDemo(str(checkpoint), device="cpu")
    image = np.asarray(Image.open(photo))
    (shown, coloured), files, status = demo.estimate(image, 60, "", " ")
    assert shown.shape == coloured.shape == (60, 84, 3)
    npy = next(path for path in files if path.endswith(".npy"))
    prediction = np.load(npy)
    np.testing.assert_array_equal(coloured, colorize(prediction, "disparity"))
    png16 = next(path for path in files if path.endswith("_16bit.png"))
    dequantised, metadata = load_png16(png16)
    assert metadata["quantity"] == "disparity"
    assert np.abs(dequantised - prediction).max() <= (prediction.max() - prediction.min()) / 65535
    # A relative model gets no point cloud without a disparity-to-depth conversion, and says so.
    assert not any(path.endswith(".ply") for path in files) and "DISPARITY" in status
    _, files, _ = demo.estimate(image, 60, "0.5", "0.1")
    ply = next(path for path in files if path.endswith("_points.ply"))
    assert f"element vertex {prediction.size}" in Path(ply).read_bytes()[:1000].decode("ascii", "replace")
    _, files, status = demo.estimate(image, 60, "0", "0")
    assert not any(path.endswith(".ply") for path in files) and "must be > 0" in status


def test_page_in_headless_chromium_shows_a_depth_image(checkpoint, photo):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install playwright")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = _load_app()
    demo = app.build_demo(str(checkpoint), device="cpu")
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(demo.local_url)
            page.locator("#input-image input[type=file]").set_input_files(str(photo))
            page.locator("#input-image img").first.wait_for(timeout=60_000)
            page.locator("#estimate").click()
            slider_images = page.locator("#depth-slider img")
            slider_images.nth(1).wait_for(timeout=120_000)
            sizes = slider_images.evaluate_all("images => images.map(image => [image.naturalWidth, image.naturalHeight])")
            assert sizes.count([84, 60]) >= 2, sizes  # the photo and its depth map, at the photo's size
            assert "disparity" in page.locator("#status").inner_text()
            browser.close()
    finally:
        demo.close()
