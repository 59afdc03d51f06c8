"""The training objectives of both stages, assembled from `depth_anything_hf.losses` (docs/method.md section 4).

- `depth_loss`: the affine-invariant loss (eq. 1-2), plus the V2 gradient-matching term when weighted.
- `perturb_and_mix`: the student's unlabeled input, strong colour perturbation then CutMix (eq. 4).
- `student_losses`: L_l on labeled images, the area-weighted L_u on the CutMix images (eq. 4-6), L_feat
  (eq. 7) on unlabeled images only, and their mean.
- `teacher_flat_maps`, `student_flat_maps`: how many maps those losses left out for lack of any spread
  (`losses.flat_maps`), which the training scripts log.
"""

import functools
from dataclasses import dataclass

import torch

from ..data.transforms import StrongPerturbation, cutmix_partners, cutmix_with_partners, sample_cutmix_mask
from ..losses import (
    affine_invariant_loss,
    affine_invariant_pixel_losses,
    cutmix_gradient_matching_loss,
    cutmix_unlabeled_loss,
    feature_alignment_loss,
    flat_maps,
    gradient_matching_loss,
)
from .batches import DepthBatch


def depth_loss(
    predicted_disparity: torch.Tensor,
    target_disparity: torch.Tensor,
    supervised_mask: torch.Tensor,
    gradient_matching_weight: float = 0.0,
) -> torch.Tensor:
    """Eq. 1-2 on the supervised pixels, plus `gradient_matching_weight` x the V2 gradient-matching term."""
    loss = affine_invariant_loss(predicted_disparity, target_disparity, supervised_mask)
    if gradient_matching_weight:
        loss = loss + gradient_matching_weight * gradient_matching_loss(
            predicted_disparity, target_disparity, supervised_mask
        )
    return loss


def teacher_flat_maps(
    predicted_disparity: torch.Tensor, target_disparity: torch.Tensor, supervised_mask: torch.Tensor
) -> torch.Tensor:
    """The maps of a batch that eq. 1-2 leaves out because the prediction or the target has no spread."""
    return (flat_maps(predicted_disparity, supervised_mask) | flat_maps(target_disparity, supervised_mask)).sum()


def perturb_and_mix(
    clean_images: torch.Tensor,
    perturbation: StrongPerturbation,
    cutmix_probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's view of the unlabeled images u (RGB in [0, 1]): strong colour jitter and blur, then CutMix
    with probability `cutmix_probability` (eq. 4), pasting a box of u_a onto its partner u_b
    (`cutmix_partners`). Returns (the mixed images u_ab, the CutMix masks M [B, H, W], 1 where u_ab shows u_a)."""
    batch_size, _, height, width = clean_images.shape
    perturbed = perturbation(clean_images, generator=generator)
    mix_mask = sample_cutmix_mask(
        batch_size, height, width, cutmix_probability, generator=generator, device=clean_images.device
    )
    return cutmix_with_partners(perturbed, mix_mask), mix_mask


@dataclass(frozen=True)
class StudentLossSettings:
    """alpha: feature-alignment margin (eq. 7); gradient_matching_weight: V2 term on both depth losses;
    ignore_largest_fraction: V2's share of pixels with the largest loss left out on pseudo-labeled images."""

    alpha: float = 0.85
    gradient_matching_weight: float = 0.0
    ignore_largest_fraction: float = 0.0


def student_losses(
    predicted_disparity: torch.Tensor,
    labeled: DepthBatch | None,
    pseudo_labeled: DepthBatch,
    mix_mask: torch.Tensor,
    settings: StudentLossSettings,
    student_features: torch.Tensor | None = None,
    frozen_features: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The student's losses on one batch whose first `len(labeled)` predictions are the labeled images and the
    rest the CutMix images of `pseudo_labeled` (targets: the teacher on the clean images).

    Returns {"labeled": L_l (without labeled images: absent), "unlabeled": L_u (eq. 4-6), "feature_alignment":
    L_feat (eq. 7, on the unlabeled images; absent without features), "total": the mean of those present}.
    """
    num_labeled = 0 if labeled is None else len(labeled)
    losses = {}
    if labeled is not None:
        losses["labeled"] = depth_loss(
            predicted_disparity[:num_labeled],
            labeled.disparity,
            labeled.supervised_mask,
            settings.gradient_matching_weight,
        )
    student_prediction = predicted_disparity[num_labeled:]
    target_a = pseudo_labeled.disparity
    target_b = cutmix_partners(pseudo_labeled.disparity)
    losses["unlabeled"] = cutmix_unlabeled_loss(
        student_prediction,
        target_a,
        target_b,
        mix_mask,
        valid_mask=pseudo_labeled.supervised_mask,
        pixel_loss=functools.partial(
            affine_invariant_pixel_losses, ignore_largest_fraction=settings.ignore_largest_fraction
        ),
    )
    if settings.gradient_matching_weight:
        losses["unlabeled"] = losses["unlabeled"] + settings.gradient_matching_weight * cutmix_gradient_matching_loss(
            student_prediction, target_a, target_b, mix_mask, valid_mask=pseudo_labeled.supervised_mask
        )
    if frozen_features is not None:
        losses["feature_alignment"] = feature_alignment_loss(
            student_features[num_labeled:], frozen_features, settings.alpha
        )
    losses["total"] = torch.stack(list(losses.values())).mean()
    return losses


def student_flat_maps(
    predicted_disparity: torch.Tensor, labeled: DepthBatch | None, pseudo_labeled: DepthBatch, mix_mask: torch.Tensor
) -> torch.Tensor:
    """The maps that `student_losses`' depth terms leave out for lack of spread: labeled maps, and each CutMix
    region (M against T(u_a), 1-M against T(u_b)) of the unlabeled ones."""
    num_labeled = 0 if labeled is None else len(labeled)
    count = predicted_disparity.new_zeros((), dtype=torch.long)
    if labeled is not None:
        count = count + teacher_flat_maps(predicted_disparity[:num_labeled], labeled.disparity, labeled.supervised_mask)
    student_prediction = predicted_disparity[num_labeled:]
    mix = mix_mask > 0.5
    for target, region in ((pseudo_labeled.disparity, mix), (pseudo_labeled.disparity.roll(1, dims=0), ~mix)):
        count = count + teacher_flat_maps(student_prediction, target, pseudo_labeled.supervised_mask & region)
    return count
