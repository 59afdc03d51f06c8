"""The distributions the strong perturbation and CutMix draw from, over thousands of draws, against closed forms:
the CutMix box's area fraction ~ U(0.02, 0.4), its height/width ratio ~ U(0.3, 1/0.3), its position uniform over
the places where it fits (so every edge is touched as often as its opposite), and the hue shift ~ U(-0.25, 0.25)
turns measured with `colorsys`."""

import colorsys

import numpy as np
import pytest
import torch

from depth_anything_hf.data.transforms import StrongPerturbation, sample_cutmix_mask

HEIGHT, WIDTH, DRAWS = 48, 64, 4000


@pytest.fixture(scope="module")
def boxes() -> dict[str, np.ndarray]:
    """top, left, height and width of the box of `DRAWS` CutMix masks (CutMix applied to every sample)."""
    masks = sample_cutmix_mask(DRAWS, HEIGHT, WIDTH, probability=1.0, generator=torch.Generator().manual_seed(0))
    rows, columns = masks.amax(2).numpy(), masks.amax(1).numpy()
    return {
        "top": rows.argmax(1), "height": rows.sum(1), "left": columns.argmax(1), "width": columns.sum(1)
    }  # fmt: skip


def test_cutmix_box_area_fraction_is_uniform_on_0_02_to_0_4(boxes):
    area = boxes["height"] * boxes["width"] / (HEIGHT * WIDTH)
    # Each side is floored to whole pixels, which takes a little off U(0.02, 0.4) (mean 0.21).
    assert 0.19 < area.mean() < 0.21
    assert area.max() <= 0.4
    for low, high in ((0.02, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4)):
        # U(0.02, 0.4) puts (high - low) / 0.38 of the draws in each band (the flooring moves a few down a band).
        share = ((area >= low * 0.93) & (area < high * 0.93)).mean()
        assert share == pytest.approx((high - low) / 0.38, abs=0.04), (low, high)


def test_cutmix_box_aspect_ratio_is_uniform_on_0_3_to_1_over_0_3(boxes):
    # Boxes under 10% of the image fit at every ratio of the range, so their ratio is U(0.3, 3.33) (up to flooring).
    small = boxes["height"] * boxes["width"] < 0.1 * HEIGHT * WIDTH
    ratio = boxes["height"][small] / boxes["width"][small]
    assert small.sum() > 500
    assert (ratio > 1).mean() == pytest.approx((1 / 0.3 - 1) / (1 / 0.3 - 0.3), abs=0.05)
    assert np.median(ratio) == pytest.approx((0.3 + 1 / 0.3) / 2, rel=0.1)
    assert ratio.min() < 0.4 and ratio.max() > 2.9


def test_cutmix_box_position_is_uniform_so_opposite_edges_are_touched_equally(boxes):
    for start, size, extent in (("left", "width", WIDTH), ("top", "height", HEIGHT)):
        positions = extent - boxes[size] + 1  # the places a box of this size fits
        # Uniform over them: each box touches the near edge, and the far one, with probability 1 / positions.
        expected = (1 / positions).sum()
        touches_near = (boxes[start] == 0).sum()
        touches_far = (boxes[start] + boxes[size] == extent).sum()
        for observed in (touches_near, touches_far):
            assert abs(observed - expected) < 4 * np.sqrt(expected), (start, observed, expected)
        # The box centre falls as often in either half of the image.
        centre = boxes[start] + boxes[size] / 2
        assert np.mean(centre < extent / 2) == pytest.approx(np.mean(centre > extent / 2), abs=0.04)


def hue_shifts(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel hue change in turns in [-0.5, 0.5), from `colorsys`; also checks saturation and value are kept."""
    shifts = []
    for rgb_before, rgb_after in zip(before, after):
        hue_before, saturation_before, value_before = colorsys.rgb_to_hsv(*rgb_before)
        hue_after, saturation_after, value_after = colorsys.rgb_to_hsv(*rgb_after)
        assert (saturation_after, value_after) == pytest.approx((saturation_before, value_before), abs=2e-3)
        shifts.append((hue_after - hue_before + 0.5) % 1.0 - 0.5)
    return np.array(shifts)


def test_hue_jitter_rotates_hue_by_up_to_a_quarter_turn():
    colours = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.7, 0.3], [0.2, 0.3, 0.8], [0.6, 0.5, 0.1]])
    samples = 200
    # Four 4x4 patches of saturated colours, the same image in every sample.
    image = colours.T.reshape(3, 2, 1, 2, 1).expand(3, 2, 4, 2, 4).reshape(3, 8, 8)
    images = image[None].expand(samples, -1, -1, -1).contiguous()
    hue_only = StrongPerturbation(
        jitter_probability=1.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.25,
        grayscale_probability=0.0, blur_probability=0.0, blur_sigma=(0.1, 0.1),
    )  # fmt: skip
    perturbed = hue_only(images, generator=torch.Generator().manual_seed(0))

    def pixels(maps: torch.Tensor) -> np.ndarray:
        return maps[:, ::4, ::4].permute(1, 2, 0).reshape(-1, 3).double().numpy()  # one pixel per patch

    shift_per_sample = []
    for sample in range(samples):
        shifts = hue_shifts(pixels(images[sample]), pixels(perturbed[sample]))
        assert np.ptp(shifts) < 2e-3, shifts  # one rotation for the whole image
        shift_per_sample.append(shifts.mean())
    shift_per_sample = np.array(shift_per_sample)
    # U(-0.25, 0.25) turns: mean |shift| 0.125, extremes near +-0.25, both signs equally often.
    assert np.abs(shift_per_sample).max() <= 0.25 + 2e-3
    assert np.abs(shift_per_sample).mean() == pytest.approx(0.125, abs=0.015)
    assert shift_per_sample.min() < -0.22 and shift_per_sample.max() > 0.22
    assert (shift_per_sample > 0).mean() == pytest.approx(0.5, abs=0.1)
