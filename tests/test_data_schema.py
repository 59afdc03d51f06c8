"""The labeled schema: checking samples, round trips through `datasets`, tensors."""

import io
import math

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from depth_anything_hf.data.schema import LABELED_FEATURES, make_labeled_sample, sample_to_tensors


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _sample(depth, image=None, **overrides) -> dict:
    depth = np.asarray(depth, dtype=np.float32)
    image = np.full((*depth.shape, 3), 51, dtype=np.uint8) if image is None else image
    arguments = dict(
        image=image, depth=depth, depth_kind="depth", valid_mask=np.ones(depth.shape, dtype=bool),
        dataset="unit", sample_id="a", fx=100.0, fy=101.0, cx=None, cy=None,
    )
    arguments.update(overrides)
    return make_labeled_sample(**arguments)


def test_invalid_depth_values_are_masked_and_zeroed():
    sample = _sample([[1.0, np.inf, np.nan], [-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(sample["valid_mask"], [[True, False, False], [False, False, True]])
    np.testing.assert_array_equal(sample["depth"], [[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    assert sample["depth"].dtype == np.float32


def test_zero_disparity_stays_valid_but_zero_depth_does_not():
    disparity = _sample([[0.0, 2.0]], depth_kind="disparity")
    np.testing.assert_array_equal(disparity["valid_mask"], [[True, True]])
    depth = _sample([[0.0, 2.0]])
    np.testing.assert_array_equal(depth["valid_mask"], [[False, True]])


def _exif_png(pixels: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_turns_depth_masks_and_intrinsics_with_the_image(orientation):
    """A 4x6 stored grid, red in the top-left stored pixel, depth 1 m there and 2 m elsewhere: whatever the
    orientation, the red pixel and the 1 m pixel stay together, and so does the principal point (given at the
    stored pixel x=1, y=0, where the sky mask marks one pixel)."""
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)
    depth = np.full((4, 6), 2.0, np.float32)
    depth[0, 0] = 1.0
    sky_mask = np.zeros((4, 6), bool)
    sky_mask[0, 1] = True
    sample = _sample(depth, image=_exif_png(pixels, orientation), sky_mask=sky_mask, fx=100.0, fy=101.0, cx=1.0, cy=0.0)
    tensors = sample_to_tensors(sample)
    red = (tensors["image"][0] == 1.0).nonzero().tolist()
    assert red == (tensors["depth"] == 1.0).nonzero().tolist() and len(red) == 1
    assert tensors["depth"].shape == tensors["image"].shape[1:] == ((4, 6) if orientation == 3 else (6, 4))
    (sky_y, sky_x), = tensors["sky_mask"].nonzero().tolist()
    fx, fy, cx, cy = tensors["intrinsics"].tolist()
    assert (cx, cy) == (sky_x, sky_y)
    assert (fx, fy) == ((100.0, 101.0) if orientation == 3 else (101.0, 100.0))


def test_bad_samples_raise_naming_the_problem():
    with pytest.raises(ValueError, match="does not match the image"):
        _sample(np.ones((2, 3)), image=_png(np.zeros((3, 2, 3), dtype=np.uint8)))
    with pytest.raises(ValueError, match="depth_kind"):
        _sample(np.ones((2, 2)), depth_kind="inverse")
    with pytest.raises(ValueError, match="valid_mask"):
        _sample(np.ones((2, 2)), valid_mask=np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D float"):
        _sample(np.ones((2, 2, 1)))
    with pytest.raises(ValueError, match="fx"):
        _sample(np.ones((2, 2)), fx=-1.0)
    with pytest.raises(TypeError, match="image"):
        _sample(np.ones((2, 2)), image="path.png")
    # The training geometry scales the short side to 518: a 1x40 strip would become 518 x 20,720 pixels.
    with pytest.raises(ValueError, match=r"1x40 pixels is more elongated \(40.0:1\) than 10:1"):
        _sample(np.ones((1, 40)))
    assert _sample(np.ones((1, 10)))["depth"].shape == (1, 10)


def test_encoded_image_bytes_are_kept_unchanged():
    encoded = _png(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    sample = _sample(np.ones((2, 2)), image=encoded)
    assert sample["image"] == {"bytes": encoded, "path": None}


def test_round_trip_through_a_dataset_and_into_tensors():
    image = np.array([[[255, 0, 51], [0, 102, 255]]], dtype=np.uint8)
    sky = np.array([[False, True]])
    rows = [
        _sample([[1.5, 2.5]], image=image, sky_mask=sky),
        _sample([[4.0, np.nan]], image=_png(image), sample_id="b"),
    ]
    dataset = datasets.Dataset.from_list(rows, features=LABELED_FEATURES)
    with_sky, without_sky = (sample_to_tensors(row) for row in dataset)
    torch.testing.assert_close(with_sky["image"][:, 0, 1], torch.tensor([0.0, 0.4, 1.0]))
    assert with_sky["image"].shape == (3, 1, 2) and with_sky["image"].dtype == torch.float32
    torch.testing.assert_close(with_sky["depth"], torch.tensor([[1.5, 2.5]]))
    assert with_sky["sky_mask"].tolist() == [[False, True]]
    assert without_sky["sky_mask"].tolist() == [[False, False]]
    assert without_sky["valid_mask"].tolist() == [[True, False]] and without_sky["depth"][0, 1] == 0
    assert with_sky["intrinsics"][:2].tolist() == [100.0, 101.0] and all(math.isnan(v) for v in with_sky["intrinsics"][2:].tolist())
    batch = torch.utils.data.default_collate([with_sky, without_sky])
    assert batch["depth"].shape == (2, 1, 2) and batch["id"] == ["a", "b"]


def test_sample_to_tensors_image_is_every_8_bit_value_over_255_channels_first():
    """All 256 values in each channel, at a different pixel per channel: [3, H, W] float32 equal to torch's
    float division by 255, in C order (the geometry and the model expect contiguous images)."""
    pixels = np.stack([np.roll(np.arange(256, dtype=np.uint8), shift) for shift in (0, 85, 170)], axis=-1)
    pixels = pixels.reshape(16, 16, 3)
    image = sample_to_tensors(_sample(np.ones((16, 16)), image=_png(pixels)))["image"]
    assert image.dtype == torch.float32 and image.is_contiguous()
    assert torch.equal(image, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)


def test_sample_to_tensors_accepts_the_rows_make_labeled_sample_returns():
    encoded_row = _sample([[1.0, 2.0]], image=_png(np.full((1, 2, 3), 255, dtype=np.uint8)))
    assert torch.equal(sample_to_tensors(encoded_row)["image"], torch.ones(3, 1, 2))
    with pytest.raises(ValueError, match="missing"):
        sample_to_tensors({"image": None})
