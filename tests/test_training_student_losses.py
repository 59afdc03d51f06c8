"""`student_losses` on CutMix batches built by hand: three samples (with two, rolling the batch either way gives the
same partner), a known box per sample, and predictions that are exact only when each region is compared with
the right teacher map; the V2 gradient-matching term inside L_u (eq. 4-6); and the student's input perturbed
before it is mixed."""

import pytest
import torch

from depth_anything_hf.data.transforms import StrongPerturbation
from depth_anything_hf.losses import affine_invariant_loss, gradient_matching_loss
from depth_anything_hf.training.batches import DepthBatch
from depth_anything_hf.training.objectives import StudentLossSettings, perturb_and_mix, student_losses

HEIGHT, WIDTH = 16, 32


def pseudo_labeled_batch(targets: torch.Tensor) -> DepthBatch:
    count = targets.shape[0]
    return DepthBatch(torch.rand(count, 3, HEIGHT, WIDTH), targets, torch.ones(count, HEIGHT, WIDTH, dtype=torch.bool))


@pytest.fixture
def targets() -> torch.Tensor:
    """T(u_0), T(u_1), T(u_2): three different teacher maps."""
    return torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def boxes() -> torch.Tensor:
    """M: a different box of u_a per sample."""
    mix_mask = torch.zeros(3, HEIGHT, WIDTH)
    mix_mask[0, 2:9, 3:20] = 1
    mix_mask[1, 5:16, 0:11] = 1
    mix_mask[2, 0:6, 14:32] = 1
    return mix_mask


def unlabeled_loss(prediction, targets, mix_mask, **settings) -> torch.Tensor:
    return student_losses(
        prediction, None, pseudo_labeled_batch(targets), mix_mask, StudentLossSettings(**settings)
    )["unlabeled"]


def test_each_cutmix_region_is_compared_with_its_own_image_s_teacher(targets, boxes):
    # u_ab of sample i shows u_i in the box and u_{i-1} (the batch rolled by one, as perturb_and_mix pastes it)
    # elsewhere. A student that predicts each region's teacher map up to its own scale and shift has zero loss.
    inside = boxes.bool()
    previous = targets.roll(1, dims=0)
    exact = torch.where(inside, 2.0 * targets + 1.0, 0.5 * previous - 3.0)
    assert unlabeled_loss(exact, targets, boxes).item() == pytest.approx(0.0, abs=1e-6)

    # The case tells the partners apart: the next image, or u_a again, outside the box is far from exact.
    for wrong_partner in (targets.roll(-1, dims=0), targets):
        wrong = torch.where(inside, 2.0 * targets + 1.0, 0.5 * wrong_partner - 3.0)
        assert unlabeled_loss(wrong, targets, boxes).item() > 0.2


def test_unlabeled_loss_weights_regions_by_area(targets):
    # Region M is the left quarter: sample i's loss is 0.25 x the loss against T(u_i) on the quarter plus 0.75 x
    # the loss against T(u_{i-1}) on the rest, each region normalised on its own (the affine-invariant loss
    # restricted to a region is the loss of the cropped maps).
    prediction = torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    left_quarter = torch.zeros(3, HEIGHT, WIDTH)
    left_quarter[:, :, :8] = 1
    previous = targets.roll(1, dims=0)
    expected = torch.stack(
        [
            0.25 * affine_invariant_loss(prediction[i : i + 1, :, :8], targets[i : i + 1, :, :8])
            + 0.75 * affine_invariant_loss(prediction[i : i + 1, :, 8:], previous[i : i + 1, :, 8:])
            for i in range(3)
        ]
    ).mean()
    torch.testing.assert_close(unlabeled_loss(prediction, targets, left_quarter), expected)


def test_v2_gradient_matching_term_is_part_of_the_unlabeled_loss(targets):
    # The boundary at column 8 lies on the grid of every gradient-matching scale (strides 1, 2, 4, 8), so each
    # region's term is the term of its cropped maps.
    prediction = torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2))
    left_quarter = torch.zeros(3, HEIGHT, WIDTH)
    left_quarter[:, :, :8] = 1
    previous = targets.roll(1, dims=0)

    def region_loss(prediction, target):
        return affine_invariant_loss(prediction, target) + 2.0 * gradient_matching_loss(prediction, target)

    expected = torch.stack(
        [
            0.25 * region_loss(prediction[i : i + 1, :, :8], targets[i : i + 1, :, :8])
            + 0.75 * region_loss(prediction[i : i + 1, :, 8:], previous[i : i + 1, :, 8:])
            for i in range(3)
        ]
    ).mean()
    measured = unlabeled_loss(prediction, targets, left_quarter, gradient_matching_weight=2.0)
    torch.testing.assert_close(measured, expected)
    assert measured > unlabeled_loss(prediction, targets, left_quarter) + 0.1


def test_the_students_unlabeled_input_is_perturbed_then_mixed():
    # With grayscale as the only perturbation, u_ab is the ITU-R 601 luma of u_a in the box and of its partner
    # u_{i-1} elsewhere: no colour survives.
    clean = torch.rand(3, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3))
    grayscale_only = StrongPerturbation(jitter_probability=0.0, grayscale_probability=1.0, blur_probability=0.0)
    mixed, mix_mask = perturb_and_mix(clean, grayscale_only, 1.0, torch.Generator().manual_seed(4))
    luma = (0.299 * clean[:, 0] + 0.587 * clean[:, 1] + 0.114 * clean[:, 2])[:, None].expand(-1, 3, -1, -1)
    expected = torch.where(mix_mask[:, None] > 0.5, luma, luma.roll(1, dims=0))
    torch.testing.assert_close(mixed, expected, atol=1e-3, rtol=0)
