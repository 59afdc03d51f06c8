"""Pre-processing writes each image once into the batch, with the official arithmetic (docs/method.md section 3)."""

import numpy as np
import torch

from depth_anything_hf import DepthAnythingHFImageProcessor

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_normalize_writes_into_the_given_slot():
    processor = DepthAnythingHFImageProcessor()
    images = torch.rand(2, 3, 5, 7)
    expected = (images.double().numpy() - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    batch = torch.full_like(images, float("nan"))
    for image, slot in zip(images, batch):
        assert processor.normalize(image, MEAN, STD, out=slot).data_ptr() == slot.data_ptr()
    np.testing.assert_allclose(batch.numpy(), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(processor.normalize(images, MEAN, STD).numpy(), expected, rtol=0, atol=1e-6)


def test_integer_images_become_unit_floats():
    processor = DepthAnythingHFImageProcessor(do_resize=False, do_normalize=False)
    generator = np.random.default_rng(0)
    for dtype, full_scale in ((np.uint8, 255), (np.uint16, 65535)):
        pixels = generator.integers(0, full_scale + 1, size=(4, 6, 3), dtype=dtype)
        pixel_values = processor(pixels)["pixel_values"]
        assert pixel_values.dtype == torch.float32
        expected = (pixels.astype(np.float32) / np.float32(full_scale)).transpose(2, 0, 1)[None]
        np.testing.assert_array_equal(pixel_values.numpy(), expected)


def test_batch_of_normalised_images_matches_the_formula_per_image():
    processor = DepthAnythingHFImageProcessor(size={"height": 28, "width": 42}, keep_aspect_ratio=False)
    generator = np.random.default_rng(1)
    images = [generator.integers(0, 256, size=(20, 30, 3), dtype=np.uint8) for _ in range(3)]
    pixel_values = processor(images)["pixel_values"]
    unnormalized = DepthAnythingHFImageProcessor(
        size={"height": 28, "width": 42}, keep_aspect_ratio=False, do_normalize=False
    )(images)["pixel_values"].double()
    expected = (unnormalized - torch.tensor(MEAN, dtype=torch.float64)[:, None, None]) / torch.tensor(
        STD, dtype=torch.float64
    )[:, None, None]
    assert pixel_values.shape == (3, 3, 28, 42)
    torch.testing.assert_close(pixel_values.double(), expected, rtol=0, atol=1e-6)
