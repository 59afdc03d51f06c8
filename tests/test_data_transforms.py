import pytest
import torch
import torch.nn.functional as F

from depth_anything_hf.data.transforms import (
    PairedResizeCropFlip,
    StrongPerturbation,
    apply_cutmix,
    cutmix_partners,
    cutmix_with_partners,
    sample_cutmix_mask,
)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- strong perturbation ------------------------------------------------------------------------------


def test_strong_perturbation_keeps_range_shape_and_input():
    images = torch.rand(8, 3, 20, 24, generator=seeded(0))
    original = images.clone()
    perturbed = StrongPerturbation()(images, generator=seeded(1))
    assert perturbed.shape == images.shape
    assert perturbed.min() >= 0 and perturbed.max() <= 1
    assert torch.equal(images, original)
    changed = (perturbed - images).abs().flatten(1).amax(1) > 1e-3
    assert changed.sum() >= 6  # each sample is left alone only with probability .2 * .8 * .5


def test_strong_perturbation_reproduces_and_draws_per_sample():
    image = torch.rand(1, 3, 16, 16, generator=seeded(2))
    images = image.expand(4, -1, -1, -1)
    perturbation = StrongPerturbation(jitter_probability=1.0)
    first = perturbation(images, generator=seeded(3))
    assert torch.equal(first, perturbation(images, generator=seeded(3)))
    assert not torch.equal(first, perturbation(images, generator=seeded(4)))
    assert not torch.allclose(first[0], first[1])  # identical inputs, different draws


def test_strong_perturbation_probabilities_zero_is_identity():
    images = torch.rand(3, 3, 12, 12, generator=seeded(5))
    unchanged = StrongPerturbation(jitter_probability=0, grayscale_probability=0, blur_probability=0)(images)
    assert torch.equal(unchanged, images)


def test_strong_perturbation_grayscale_closed_form():
    images = torch.rand(2, 3, 8, 8, generator=seeded(6))
    gray = StrongPerturbation(jitter_probability=0, grayscale_probability=1, blur_probability=0)(images)
    luma = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    for channel in range(3):
        torch.testing.assert_close(gray[:, channel], luma, atol=1e-3, rtol=0)


def test_strong_perturbation_blur_smooths_but_keeps_constant_images():
    images = torch.rand(2, 3, 20, 20, generator=seeded(7))
    images[1] = 0.25
    # A seeded sigma of at least 1 pixel: drawn from the global RNG, a sigma near 0.1 left the variance equal to
    # four digits, and the test failed or passed with the tests run before it.
    blur = StrongPerturbation(jitter_probability=0, grayscale_probability=0, blur_probability=1, blur_sigma=(1.0, 2.0))
    blurred = blur(images, generator=seeded(8))
    assert blurred[0].var() < 0.5 * images[0].var()
    torch.testing.assert_close(blurred[1], images[1])


def test_strong_perturbation_rejects_bad_images():
    with pytest.raises(ValueError, match="images"):
        StrongPerturbation()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="hue"):
        StrongPerturbation(hue=0.7)


# --- CutMix -----------------------------------------------------------------------------------------


def box_of_ones(mask: torch.Tensor):
    """(top, bottom, left, right) of the ones if they form exactly one filled rectangle, else None."""
    rows = mask.any(1).nonzero().flatten()
    columns = mask.any(0).nonzero().flatten()
    top, bottom, left, right = rows.min().item(), rows.max().item() + 1, columns.min().item(), columns.max().item() + 1
    expected = torch.zeros_like(mask)
    expected[top:bottom, left:right] = True
    return (top, bottom, left, right) if torch.equal(mask, expected) else None


def test_cutmix_masks_are_single_boxes_with_expected_rate_and_area():
    height, width = 48, 64
    masks = sample_cutmix_mask(2000, height, width, generator=seeded(8))
    assert masks.shape == (2000, height, width) and masks.dtype == torch.float32
    assert torch.equal(masks, masks.round()) and masks.min() == 0 and masks.max() == 1
    mixed = masks.flatten(1).amin(1) == 0
    assert 0.46 < mixed.float().mean() < 0.54
    for mask in masks[mixed]:
        box = box_of_ones(mask.bool())
        assert box is not None
        top, bottom, left, right = box
        box_height, box_width = bottom - top, right - left
        # Flooring each side can shave a little off the 2% lower bound.
        assert 0.015 * height * width <= box_height * box_width <= 0.4 * height * width
        assert 0.3 * 0.7 < box_height / box_width < (1 / 0.3) * 1.3


def test_cutmix_masks_reproduce_and_honour_probability():
    first = sample_cutmix_mask(16, 20, 20, generator=seeded(9))
    assert torch.equal(first, sample_cutmix_mask(16, 20, 20, generator=seeded(9)))
    assert not torch.equal(first, sample_cutmix_mask(16, 20, 20, generator=seeded(10)))
    assert sample_cutmix_mask(8, 10, 10, probability=0.0, generator=seeded(0)).eq(1).all()
    assert (sample_cutmix_mask(64, 10, 10, probability=1.0, generator=seeded(0)).flatten(1).amin(1) == 0).all()


def test_apply_cutmix_follows_eq_4():
    images_a = torch.rand(2, 3, 6, 6, generator=seeded(11))
    images_b = torch.rand(2, 3, 6, 6, generator=seeded(12))
    mask = torch.zeros(2, 6, 6)
    mask[0, 1:4, 2:5] = 1
    mask[1] = 1
    mixed = apply_cutmix(images_a, images_b, mask)
    torch.testing.assert_close(mixed, images_a * mask[:, None] + images_b * (1 - mask[:, None]))
    with pytest.raises(ValueError, match="mask"):
        apply_cutmix(images_a, images_b, mask[:, :5])


def test_cutmix_pairs_each_sample_with_the_one_before_it_for_images_and_targets():
    # Sample i is filled with the value i: its partner is sample i - 1, and sample 0's partner is the last one.
    maps = torch.arange(3.0)[:, None, None].expand(3, 4, 4).clone()
    assert cutmix_partners(maps)[:, 0, 0].tolist() == [2.0, 0.0, 1.0]
    mask = torch.zeros(3, 4, 4)
    mask[:, 1:3, 0:2] = 1  # the pasted box of every sample
    mask[2] = 1  # no CutMix on the last sample
    mixed_maps = cutmix_with_partners(maps, mask)
    assert mixed_maps[:, 1, 0].tolist() == [0.0, 1.0, 2.0]  # inside the box: the sample itself
    assert mixed_maps[:, 0, 3].tolist() == [2.0, 0.0, 2.0]  # outside: its partner, unless no CutMix
    mixed_images = cutmix_with_partners(maps[:, None].expand(3, 3, 4, 4), mask)
    assert torch.equal(mixed_images, mixed_maps[:, None].expand(3, 3, 4, 4))


# --- paired geometry ------------------------------------------------------------------------------------


def test_paired_geometry_crops_resolution_and_keeps_layouts():
    transform = PairedResizeCropFlip(28)
    image = torch.rand(2, 3, 45, 70)
    depth = torch.randint(0, 5000, (2, 45, 70)).to(torch.uint16)
    valid = torch.rand(2, 1, 45, 70) > 0.3
    sample = transform(image, depth, valid, None, generator=seeded(13))
    assert sample.image.shape == (2, 3, 28, 28) and sample.depth.shape == (2, 28, 28)
    assert sample.valid_mask.shape == (2, 1, 28, 28) and sample.valid_mask.dtype == torch.bool
    assert sample.depth.dtype == torch.uint16 and sample.sky_mask is None
    single = transform(image[0], depth[0], valid[0], generator=seeded(13))
    assert single.image.shape == (3, 28, 28) and single.depth.shape == (28, 28)
    assert single.valid_mask.shape == (1, 28, 28)


def test_paired_geometry_samples_depth_nearest_only():
    depth = torch.rand(2, 45, 70, generator=seeded(14)) * 10
    sample = PairedResizeCropFlip(28)(torch.rand(2, 3, 45, 70), depth, generator=seeded(15))
    for index in range(2):
        assert torch.isin(sample.depth[index], depth[index]).all()


def test_paired_geometry_resize_matches_interpolate_when_nothing_is_cropped():
    image = torch.rand(1, 3, 40, 40, generator=seeded(16))
    depth = torch.rand(1, 1, 40, 40, generator=seeded(17))
    sample = PairedResizeCropFlip(28, flip_probability=0.0)(image, depth)
    expected_image = F.interpolate(image, size=(28, 28), mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(sample.image, expected_image)
    assert torch.equal(sample.depth, F.interpolate(depth, size=(28, 28), mode="nearest-exact"))


def test_paired_geometry_flip_by_hand():
    depth = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    image = torch.stack([depth / 10, depth / 20, depth / 30])
    valid = depth > 4
    sky = depth < 3
    sample = PairedResizeCropFlip(3, flip_probability=1.0)(image, depth, valid, sky)
    flipped = torch.tensor([[3.0, 2.0, 1.0], [6.0, 5.0, 4.0], [9.0, 8.0, 7.0]])
    assert torch.equal(sample.depth, flipped)
    torch.testing.assert_close(sample.image, torch.stack([flipped / 10, flipped / 20, flipped / 30]))
    assert torch.equal(sample.valid_mask, flipped > 4) and torch.equal(sample.sky_mask, flipped < 3)


def test_paired_geometry_applies_one_crop_and_flip_to_all_maps_per_sample():
    # Short side already at the resolution: the image is only cropped, so it can encode the depth.
    depth = torch.arange(4 * 16 * 40, dtype=torch.float32).reshape(4, 16, 40)
    image = (depth / depth.max())[:, None].expand(-1, 3, -1, -1)
    transform = PairedResizeCropFlip(16)
    sample = transform(image, depth, depth % 3 == 0, depth % 5 == 0, generator=seeded(18))
    torch.testing.assert_close(sample.image[:, 0], sample.depth / depth.max())
    assert torch.equal(sample.valid_mask, sample.depth % 3 == 0) and torch.equal(sample.sky_mask, sample.depth % 5 == 0)
    left_columns = sample.depth[:, 0, 0] % 40
    step = sample.depth[:, 0, 1] - sample.depth[:, 0, 0]
    assert step.abs().eq(1).all()  # each row is a contiguous run, flipped or not
    assert len(set(left_columns.tolist())) > 1 or len(set(step.tolist())) > 1
    assert torch.equal(transform(image, depth, generator=seeded(18)).depth, sample.depth)


def test_paired_geometry_gives_a_batch_the_crops_and_flips_of_its_samples_one_by_one():
    image = torch.rand(3, 3, 40, 60, generator=seeded(19))
    depth_units = torch.randint(0, 5000, (3, 40, 60), generator=seeded(20))
    depth, valid = depth_units.to(torch.uint16), depth_units > 1000
    transform = PairedResizeCropFlip(28)
    batch = transform(image, depth, valid, generator=seeded(21))
    one_by_one = seeded(21)
    samples = [transform(image[index], depth[index], valid[index], generator=one_by_one) for index in range(3)]
    assert torch.equal(batch.image, torch.stack([sample.image for sample in samples]))
    assert torch.equal(batch.depth, torch.stack([sample.depth for sample in samples]))
    assert torch.equal(batch.valid_mask, torch.stack([sample.valid_mask for sample in samples]))
    assert len({tuple(sample.depth[0, :2].tolist()) for sample in samples}) > 1  # the samples drew different crops


def test_paired_geometry_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="depth"):
        PairedResizeCropFlip(8)(torch.rand(3, 10, 10), torch.rand(10, 11))
    with pytest.raises(ValueError, match="resolution"):
        PairedResizeCropFlip(0)
