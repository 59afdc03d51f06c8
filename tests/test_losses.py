import functools
import math

import numpy as np
import pytest
import torch

from depth_anything_hf.losses import (
    affine_invariant_loss,
    affine_invariant_pixel_losses,
    cutmix_unlabeled_loss,
    depth_to_normalized_disparity,
    feature_alignment_loss,
    flat_maps,
    gradient_matching_loss,
    masked_median,
    normalize_affine_invariant,
    silog_loss,
)


def reference_normalize(values: np.ndarray) -> np.ndarray:
    """Eq. 1-2 on a 1-D array of valid values, with numpy's lower median."""
    shift = np.percentile(values, 50, method="lower")
    return (values - shift) / np.mean(np.abs(values - shift))


def random_maps(seed: int, shape=(3, 9, 11), valid_fraction=0.7):
    generator = torch.Generator().manual_seed(seed)
    prediction = torch.rand(shape, generator=generator, dtype=torch.float64).float() + 0.1
    target = torch.rand(shape, generator=generator, dtype=torch.float64).float()
    valid = torch.rand(shape, generator=generator) < valid_fraction
    return prediction, target, valid


# --- targets ---------------------------------------------------------------------------------------


def test_depth_to_normalized_disparity_by_hand():
    depth = torch.tensor([[[1.0, 2.0], [4.0, 0.0]], [[1.0, 5.0], [2.0, 3.0]]])
    valid = depth > 0
    sky = torch.tensor([[[False, False], [False, True]], [[False, False], [False, False]]])
    valid[1, 0, 1] = False  # an invalid, non-sky pixel
    disparity, supervised = depth_to_normalized_disparity(depth, valid, sky)
    # Sample 0: 1/d = 1, .5, .25 -> (x - .25) / .75; sky -> 0. Sample 1: 1/d = 1, .5, 1/3 over valid.
    expected = torch.tensor([[[1.0, 1 / 3], [0.0, 0.0]], [[1.0, 0.0], [0.25, 0.0]]])
    torch.testing.assert_close(disparity, expected)
    assert supervised.tolist() == [[[True, True], [True, True]], [[True, False], [True, True]]]


def test_depth_to_normalized_disparity_unit_invariant_and_keeps_layout():
    depth_m = torch.rand(2, 1, 5, 6) * 9 + 1
    disparity_m, _ = depth_to_normalized_disparity(depth_m)
    disparity_mm, _ = depth_to_normalized_disparity((depth_m * 1000).round().to(torch.int32))
    assert disparity_m.shape == (2, 1, 5, 6)
    torch.testing.assert_close(disparity_m, disparity_mm, atol=1e-3, rtol=0)
    assert disparity_m.amin((1, 2, 3)).tolist() == [0.0, 0.0]
    assert disparity_m.amax((1, 2, 3)).tolist() == [1.0, 1.0]


def test_depth_to_normalized_disparity_degenerate_maps():
    depth = torch.stack([torch.full((3, 3), 2.0), torch.zeros(3, 3)])
    disparity, supervised = depth_to_normalized_disparity(depth, depth > 0)
    assert disparity[0].eq(1).all() and disparity[1].eq(0).all()
    assert supervised[0].all() and not supervised[1].any()


# --- eq. 1-2 -----------------------------------------------------------------------------------------


def test_masked_median_matches_numpy_lower_median():
    values, _, mask = random_maps(0, shape=(6, 7, 5), valid_fraction=0.5)
    mask[0] = False
    mask[0, 2, 3] = True  # a single valid pixel
    mask[1] = False
    mask[1, 0, :4] = True  # an even count
    median = masked_median(values, mask)
    for sample in range(6):
        valid_values = values[sample][mask[sample]].numpy()
        assert median[sample].item() == np.percentile(valid_values, 50, method="lower")
    odd = [sample for sample in range(6) if mask[sample].sum() % 2 == 1]
    for sample in odd:
        assert median[sample].item() == pytest.approx(np.median(values[sample][mask[sample]].numpy()))


def test_normalize_affine_invariant_by_hand():
    maps = torch.tensor([[[1.0, 2.0], [3.0, 10.0]], [[5.0, 5.0], [5.0, 1.0]]])
    mask = torch.tensor([[[True, True], [True, True]], [[True, True], [True, False]]])
    normalized, usable = normalize_affine_invariant(maps, mask)
    # Lower median 2, mean |x - 2| = 10 / 4; the second map is constant on its mask.
    torch.testing.assert_close(normalized[0], torch.tensor([[-0.4, 0.0], [0.4, 3.2]]))
    assert usable.tolist() == [True, False]
    assert normalized[1].eq(0).all()


def test_affine_invariant_loss_by_hand():
    prediction = torch.tensor([[[1.0, 2.0], [3.0, 10.0]], [[4.0, 0.0], [1.0, 7.0]]])
    target = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[5.0, 99.0], [1.0, 3.0]]])
    valid = torch.tensor([[[True, True], [True, True]], [[True, False], [True, True]]])
    # Sample 0: pred_hat (-.4, 0, .4, 3.2), gt_hat (-1, 0, 1, 2) -> mean |diff| = 2.4 / 4 = .6.
    # Sample 1 over (4, 1, 7) / (5, 1, 3): pred_hat (0, -1.5, 1.5), gt_hat (1.5, -1.5, 0) -> 1.0.
    loss = affine_invariant_loss(prediction, target, valid)
    assert loss.item() == pytest.approx(0.8)
    assert affine_invariant_loss(prediction[:, None], target[:, None], valid[:, None]).item() == pytest.approx(0.8)


def test_affine_invariant_loss_is_invariant_and_zero_at_perfect_prediction():
    prediction, target, valid = random_maps(1)
    loss = affine_invariant_loss(prediction, target, valid)
    assert loss > 0.1
    for scale, shift in ((3.0, -2.0), (0.01, 5.0), (250.0, 0.0)):
        torch.testing.assert_close(affine_invariant_loss(scale * prediction + shift, target, valid), loss)
        torch.testing.assert_close(affine_invariant_loss(prediction, scale * target + shift, valid), loss)
    assert affine_invariant_loss(4 * target + 1, target, valid).item() == pytest.approx(0.0, abs=1e-6)


def test_affine_invariant_loss_skips_unusable_samples():
    prediction, target, valid = random_maps(2)
    valid[1] = False
    valid[1, 0, 0] = True  # one pixel: no scale
    target[2] = 0.5  # constant target
    only_first = affine_invariant_loss(prediction[:1], target[:1], valid[:1])
    torch.testing.assert_close(affine_invariant_loss(prediction, target, valid), only_first)


def test_small_spread_predictions_get_the_loss_and_a_gradient():
    """A healthy prediction of small scale (spread 1e-7, below the old absolute cut-off of 1e-6) is normalised
    like any other: the loss is scale invariant down to there, and the gradient flows."""
    prediction, target, valid = random_maps(4)
    reference = affine_invariant_loss(prediction, target, valid)
    tiny = (prediction * 1e-7).requires_grad_(True)
    loss = affine_invariant_loss(tiny, target, valid)
    torch.testing.assert_close(loss, reference, rtol=1e-4, atol=0)
    (gradient,) = torch.autograd.grad(loss, tiny)
    assert torch.isfinite(gradient).all() and gradient[valid].abs().sum() > 0
    assert not flat_maps(tiny, valid).any()


def test_flat_maps_are_the_maps_without_any_spread():
    maps = torch.tensor([[[2.0, 2.0], [2.0, 9.0]], [[3.0, 3.0], [3.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    mask = torch.tensor([[[True, True], [True, False]], [[True, True], [True, True]], [[True, False], [False, False]]])
    # Map 0 is constant on its mask, map 1 everywhere; map 2 has one pixel: nothing to compare, not "flat".
    assert flat_maps(maps, mask).tolist() == [True, True, False]
    assert flat_maps(maps).tolist() == [False, True, False]
    _, usable = normalize_affine_invariant(maps, mask)
    assert usable.tolist() == [False, False, False]


@pytest.mark.parametrize("case", ["all_invalid", "constant", "single_pixel", "constant_prediction"])
def test_losses_stay_finite_with_gradients_on_degenerate_maps(case):
    prediction, target, valid = random_maps(3, shape=(2, 6, 6))
    if case == "all_invalid":
        valid[:] = False
    elif case == "constant":
        target[:] = 0.3
    elif case == "single_pixel":
        valid[:] = False
        valid[:, 2, 2] = True
    else:
        prediction[:] = 0.0
    prediction.requires_grad_(True)
    mix = torch.zeros(2, 6, 6)
    mix[:, :3] = 1
    for loss in (
        affine_invariant_loss(prediction, target, valid, ignore_largest_fraction=0.1),
        gradient_matching_loss(prediction, target, valid),
        cutmix_unlabeled_loss(prediction, target, target.flip(-1), mix, valid),
    ):
        assert loss.item() == 0.0 and loss.requires_grad
        (gradient,) = torch.autograd.grad(loss, prediction)
        assert torch.isfinite(gradient).all()


@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_prediction_on_a_valid_pixel_gives_a_non_finite_loss(bad_value):
    # A diverged model must not pass for an unusable map (scored 0) or for an outlier pixel (dropped).
    prediction, target, valid = random_maps(5, shape=(2, 6, 6), valid_fraction=1.0)
    prediction[0, 2, 3] = bad_value
    mix = torch.zeros(2, 6, 6)
    mix[:, :3] = 1
    for loss in (
        affine_invariant_loss(prediction, target, valid),
        affine_invariant_loss(prediction, target, valid, ignore_largest_fraction=0.5),
        gradient_matching_loss(prediction, target, valid),
        cutmix_unlabeled_loss(prediction, target, target.flip(-1), mix, valid),
        cutmix_unlabeled_loss(
            prediction, target, target.flip(-1), mix, valid,
            pixel_loss=functools.partial(affine_invariant_pixel_losses, ignore_largest_fraction=0.5),
        ),
        silog_loss(prediction, target + 1, valid),
    ):
        assert not torch.isfinite(loss)
    # Outside the valid pixels a non-finite prediction is not scored at all.
    valid[0, 2, 3] = False
    expected = affine_invariant_loss(prediction.nan_to_num(0.0), target, valid)
    torch.testing.assert_close(affine_invariant_loss(prediction, target, valid), expected)


def test_ignore_largest_fraction_drops_exactly_the_largest_pixels():
    prediction, target, valid = random_maps(4, shape=(3, 8, 8))
    full_losses, full_counted = affine_invariant_pixel_losses(prediction, target, valid)
    trimmed_losses, trimmed_counted = affine_invariant_pixel_losses(prediction, target, valid, 0.1)
    for sample in range(3):
        valid_losses = full_losses[sample][valid[sample]].numpy()
        drop_count = int(len(valid_losses) * 0.1)
        threshold = np.sort(valid_losses)[::-1][drop_count - 1]
        expected_kept = valid[sample] & (full_losses[sample] < threshold)
        assert drop_count > 0 and torch.equal(trimmed_counted[sample], expected_kept)
    # The normalisation still uses every valid pixel: kept terms are unchanged.
    torch.testing.assert_close(trimmed_losses, torch.where(trimmed_counted, full_losses, 0.0))
    expected_loss = np.mean(
        [full_losses[sample][trimmed_counted[sample]].mean().item() for sample in range(3)]
    )
    trimmed = affine_invariant_loss(prediction, target, valid, ignore_largest_fraction=0.1)
    assert trimmed.item() == pytest.approx(expected_loss, rel=1e-5)
    assert torch.equal(affine_invariant_pixel_losses(prediction, target, valid, 0.0)[1], full_counted)


def test_ignore_largest_fraction_removes_an_outlier_by_hand():
    target = torch.arange(10.0).reshape(1, 2, 5)
    prediction = target.clone()
    prediction[0, 1, 4] = 100.0  # ten pixels, one outlier: 10% drops just it
    _, counted = affine_invariant_pixel_losses(prediction, target, ignore_largest_fraction=0.1)
    expected = torch.ones(1, 2, 5, dtype=torch.bool)
    expected[0, 1, 4] = False
    assert torch.equal(counted, expected)


# --- V2 gradient matching ------------------------------------------------------------------------------


def reference_gradient_matching(prediction, target, valid, scales):
    per_sample = []
    for sample in range(prediction.shape[0]):
        mask = valid[sample].numpy()
        residual = np.zeros(mask.shape)
        residual[mask] = reference_normalize(prediction[sample].numpy()[mask].astype(np.float64)) - reference_normalize(
            target[sample].numpy()[mask].astype(np.float64)
        )
        total = 0.0
        for scale in range(scales):
            step = 2**scale
            sub_residual, sub_mask = residual[::step, ::step], mask[::step, ::step]
            gradient_sum = 0.0
            for row in range(sub_mask.shape[0]):
                for column in range(sub_mask.shape[1]):
                    if not sub_mask[row, column]:
                        continue
                    if column + 1 < sub_mask.shape[1] and sub_mask[row, column + 1]:
                        gradient_sum += abs(sub_residual[row, column + 1] - sub_residual[row, column])
                    if row + 1 < sub_mask.shape[0] and sub_mask[row + 1, column]:
                        gradient_sum += abs(sub_residual[row + 1, column] - sub_residual[row, column])
            total += gradient_sum / max(sub_mask.sum(), 1)
        per_sample.append(total)
    return float(np.mean(per_sample))


@pytest.mark.parametrize("scales", [1, 4])
def test_gradient_matching_matches_loop_reference(scales):
    prediction, target, valid = random_maps(5, shape=(3, 13, 10))
    expected = reference_gradient_matching(prediction, target, valid, scales)
    assert gradient_matching_loss(prediction, target, valid, scales).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_matching_by_hand_and_invariance():
    # One row, all valid: pred_hat = (-.4, 0, .4, 3.2) (see above), target (0, 1, 2, 3) -> gt_hat
    # (-1, 0, 1, 2) after lower median 1 and mean |x - 1| = 1; residual (.6, 0, -.6, 1.2); x-gradients
    # .6 + .6 + 1.8 = 3 over 4 pixels; scale 2 sees pixels 0, 2: |-.6 - .6| = 1.2 over 2 pixels.
    prediction = torch.tensor([[[1.0, 2.0, 3.0, 10.0]]])
    target = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    assert gradient_matching_loss(prediction, target, scales=1).item() == pytest.approx(0.75)
    assert gradient_matching_loss(prediction, target, scales=2).item() == pytest.approx(0.75 + 0.6)
    random_prediction, random_target, valid = random_maps(6)
    loss = gradient_matching_loss(random_prediction, random_target, valid)
    torch.testing.assert_close(gradient_matching_loss(5 * random_prediction - 1, random_target, valid), loss)
    assert gradient_matching_loss(2 * random_target + 3, random_target, valid).item() == pytest.approx(0, abs=1e-5)


# --- eq. 4-6 CutMix --------------------------------------------------------------------------------------


def reference_cutmix_loss(student, teacher_a, teacher_b, mix, valid):
    per_sample = []
    for sample in range(student.shape[0]):
        total, any_usable = 0.0, False
        for region, teacher in ((mix[sample] > 0.5, teacher_a), (mix[sample] <= 0.5, teacher_b)):
            pixels = (region & valid[sample]).numpy()
            if pixels.sum() < 2:
                continue
            student_values = student[sample].numpy()[pixels].astype(np.float64)
            teacher_values = teacher[sample].numpy()[pixels].astype(np.float64)
            region_loss = np.mean(np.abs(reference_normalize(student_values) - reference_normalize(teacher_values)))
            total += region.numpy().mean() * region_loss
            any_usable = True
        if any_usable:
            per_sample.append(total)
    return float(np.mean(per_sample))


def test_cutmix_loss_matches_reference():
    student, teacher_a, valid = random_maps(7, shape=(4, 12, 12), valid_fraction=0.8)
    teacher_b = torch.rand(4, 12, 12, generator=torch.Generator().manual_seed(8))
    mix = torch.ones(4, 12, 12)
    mix[0] = 0
    mix[0, 2:7, 3:11] = 1
    mix[1] = 0
    mix[1, 0:12, 0:2] = 1
    mix[2] = 0
    mix[2, 5, 5] = 1  # a one-pixel region cannot be normalised
    expected = reference_cutmix_loss(student, teacher_a, teacher_b, mix, valid)
    assert cutmix_unlabeled_loss(student, teacher_a, teacher_b, mix, valid).item() == pytest.approx(expected, rel=1e-5)


def test_cutmix_loss_without_cutmix_is_the_plain_loss_against_teacher_a():
    student, teacher_a, valid = random_maps(9)
    teacher_b = torch.rand(3, 9, 11)
    plain = affine_invariant_loss(student, teacher_a, valid)
    torch.testing.assert_close(cutmix_unlabeled_loss(student, teacher_a, teacher_b, torch.ones(3, 9, 11), valid), plain)


def test_cutmix_loss_normalises_each_region_on_its_own():
    # Each region of the student is an affine copy of its teacher with its own scale and shift.
    teacher_a, teacher_b = torch.rand(2, 10, 10), torch.rand(2, 10, 10)
    mix = torch.zeros(2, 10, 10)
    mix[:, 2:6, 1:8] = 1
    student = torch.where(mix > 0, 3 * teacher_a + 1, 0.5 * teacher_b - 2)
    assert cutmix_unlabeled_loss(student, teacher_a, teacher_b, mix).item() == pytest.approx(0, abs=1e-5)
    assert affine_invariant_loss(student, teacher_a) > 0.1


# --- eq. 7 feature alignment -------------------------------------------------------------------------------


def test_feature_alignment_by_hand():
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], requires_grad=True)
    frozen = torch.tensor([[[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    # cos = 1, 0, 1/sqrt(2); alpha .85 leaves out the first patch.
    loss = feature_alignment_loss(student, frozen, alpha=0.85)
    assert loss.item() == pytest.approx(1 - (0 + 1 / math.sqrt(2)) / 2)
    loss.backward()
    assert frozen.grad is None and torch.isfinite(student.grad).all()
    every_patch = feature_alignment_loss(student, frozen, alpha=1.0)
    assert every_patch.item() == pytest.approx(1 - (1 + 0 + 1 / math.sqrt(2)) / 3)


def test_feature_alignment_without_kept_patches_is_attached_zero():
    student = torch.randn(2, 4, 8, requires_grad=True)
    loss = feature_alignment_loss(student, student.detach() * 2, alpha=0.85)
    assert loss.item() == 0.0
    (gradient,) = torch.autograd.grad(loss, student)
    assert torch.isfinite(gradient).all()


# --- SiLog -------------------------------------------------------------------------------------------------


def test_silog_by_hand():
    prediction = torch.tensor([[[1.0, math.e]], [[2.0, 50.0]]])
    target = torch.tensor([[[math.e, math.e]], [[2.0, 100.0]]])
    # Over the batch: g = (1, 0, 0) after the 100 m pixel is cut by max_depth.
    expected = math.sqrt(1 / 3 - 0.5 * (1 / 3) ** 2)
    assert silog_loss(prediction, target, max_depth=80).item() == pytest.approx(expected, rel=1e-6)
    valid = torch.tensor([[[True, True]], [[False, False]]])
    assert silog_loss(prediction, target, valid).item() == pytest.approx(math.sqrt(0.5 - 0.5 * 0.25), rel=1e-6)
    scaled = silog_loss(prediction * 3, target, valid, lambd=1.0)
    assert scaled.item() == pytest.approx(silog_loss(prediction, target, valid, lambd=1.0).item(), rel=1e-5)


def test_silog_is_finite_at_perfect_and_empty_cases():
    target = torch.rand(2, 5, 5) * 10 + 1
    for prediction, valid in ((target.clone(), None), (torch.rand(2, 5, 5), torch.zeros(2, 5, 5, dtype=torch.bool))):
        prediction.requires_grad_(True)
        loss = silog_loss(prediction, target, valid)
        assert loss.item() == pytest.approx(0, abs=1e-5)
        (gradient,) = torch.autograd.grad(loss, prediction)
        assert torch.isfinite(gradient).all()


# --- input checking ---------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    maps = torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="target"):
        affine_invariant_loss(maps, torch.rand(2, 4, 5))
    with pytest.raises(ValueError, match="prediction"):
        affine_invariant_loss(torch.rand(4, 4), torch.rand(4, 4))
    with pytest.raises(TypeError, match="prediction"):
        affine_invariant_loss(maps.numpy(), maps)
    with pytest.raises(ValueError, match="ignore_largest_fraction"):
        affine_invariant_loss(maps, maps, ignore_largest_fraction=1.0)
    with pytest.raises(ValueError, match="mix_mask"):
        cutmix_unlabeled_loss(maps, maps, maps, torch.ones(2, 4, 3))
    with pytest.raises(ValueError, match="frozen_features"):
        feature_alignment_loss(torch.rand(1, 3, 4), torch.rand(1, 3, 5))
