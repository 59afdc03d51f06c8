"""Training losses of Depth Anything (docs/method.md section 4).

This file imports only `torch`. It stays in the package and does not travel with the weights: the model
imports it only when `forward` is given labels.

Conventions shared by every loss here:

- Maps are `[B, H, W]` or `[B, 1, H, W]`; masks are boolean (or 0/1) tensors of the same shape.
- Losses are computed in float32 (inputs are upcast), so they are safe under bf16 autocast.
- A loss of finite inputs is finite. A sample that cannot be compared (fewer than two valid pixels, a
  map without any spread: see `flat_maps`, which the training scripts count and log) contributes nothing;
  when nothing can be compared the result is an exact zero that is still attached to the prediction's
  graph, so `backward()` works in every training step.
- A non-finite value on a counted pixel (a diverged prediction) makes the loss non-finite: it is never
  mistaken for an unusable map or a dropped pixel and scored 0, so the training loop can stop on it.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
# (prediction, target, valid_mask) -> (per-pixel losses [B, H, W], counted pixels [B, H, W]).
PixelLoss = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]

# Floor for the depth prediction inside the SiLog logarithm, so a zero prediction stays finite.
SILOG_PREDICTION_FLOOR = 1e-8
# Floor under the SiLog square root: the derivative of sqrt is infinite at 0 (perfect prediction).
SILOG_VARIANCE_FLOOR = 1e-12


def _as_maps(tensor: Tensor, name: str) -> Tensor:
    """Return `tensor` as `[B, H, W]`, accepting `[B, H, W]` or `[B, 1, H, W]`."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 4 and tensor.shape[1] == 1:
        return tensor[:, 0]
    if tensor.dim() != 3:
        raise ValueError(f"{name} must have shape [B, H, W] or [B, 1, H, W], got {tuple(tensor.shape)}")
    return tensor


def _as_mask(mask: Tensor | None, like: Tensor, name: str) -> Tensor:
    """Return `mask` as a boolean `[B, H, W]` map shaped like `like`; `None` means all valid."""
    if mask is None:
        return torch.ones_like(like, dtype=torch.bool)
    mask = _as_maps(mask, name)
    if mask.shape != like.shape:
        raise ValueError(f"{name} must have the shape of the maps {tuple(like.shape)}, got {tuple(mask.shape)}")
    return mask.bool()


def _check_same_shape(maps: Tensor, reference: Tensor, name: str, reference_name: str) -> None:
    if maps.shape != reference.shape:
        raise ValueError(
            f"{name} must have the shape of {reference_name} {tuple(reference.shape)}, got {tuple(maps.shape)}"
        )


def _mean_per_sample(pixel_losses: Tensor, counted: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of `pixel_losses` over the counted pixels of each sample -> (losses [B], usable [B])."""
    count = counted.flatten(1).sum(1)
    losses = pixel_losses.flatten(1).sum(1) / count.clamp_min(1)
    return losses, count > 0


def _mean_over_usable(losses: Tensor, usable: Tensor) -> Tensor:
    """Mean of per-sample `losses` over usable samples; an attached 0 if none is usable.

    Multiplying instead of indexing keeps the graph and avoids a device sync.
    """
    return (losses * usable).sum() / usable.sum().clamp_min(1)


def depth_to_normalized_disparity(
    depth: Tensor, valid_mask: Tensor | None = None, sky_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Turn ground-truth depth into the training target (docs/method.md section 4, "Targets").

    Disparity `1 / depth` on valid pixels, min-max normalised to [0, 1] over the valid pixels of each
    map (so the depth unit does not matter), sky set to 0 (infinitely far). Sky pixels count as
    supervision with target 0 even when their depth is invalid, as in the paper; other invalid
    pixels get 0 and are not supervised. A map whose valid disparity is constant becomes 1 there
    (nearer than sky); a map without valid pixels becomes all 0.

    Args:
        depth: `[B, H, W]` or `[B, 1, H, W]` depth, any positive unit, any real dtype (uint16 is fine).
        valid_mask: where `depth` is valid; `None` means every pixel. Non-positive or non-finite
            depth is always invalid.
        sky_mask: where the sky is; `None` means no sky.

    Returns:
        `(disparity, supervised_mask)`, both shaped like `depth`; `supervised_mask` is
        valid-and-not-sky or sky.
    """
    depth_maps = _as_maps(depth, "depth").float()
    valid = _as_mask(valid_mask, depth_maps, "valid_mask") & (depth_maps > 0) & depth_maps.isfinite()
    sky = _as_mask(sky_mask, depth_maps, "sky_mask") if sky_mask is not None else torch.zeros_like(valid)
    valid = valid & ~sky

    raw_disparity = torch.where(valid, depth_maps.reciprocal(), 0.0)
    minimum = torch.where(valid, raw_disparity, math.inf).amin((1, 2), keepdim=True)
    maximum = torch.where(valid, raw_disparity, -math.inf).amax((1, 2), keepdim=True)
    span = maximum - minimum
    has_span = span > 0
    normalized = torch.where(has_span, (raw_disparity - minimum) / torch.where(has_span, span, 1.0), 1.0)
    disparity = torch.where(valid, normalized, 0.0)
    return disparity.view_as(depth), (valid | sky).view(depth.shape)


def masked_median(values: Tensor, mask: Tensor) -> Tensor:
    """Median of each map over its own masked pixels -> `[B]`.

    Exact *lower* median (the `(n - 1) // 2`-th smallest of the `n` masked values, like
    `torch.median`): masked-out values are replaced by +inf and sorted to the end. A map without
    masked pixels gets 0. Differentiable (the gradient goes to the selected pixel).
    """
    flat_values = values.flatten(1)
    flat_mask = mask.flatten(1).bool()
    if flat_values.shape != flat_mask.shape:
        raise ValueError(f"mask must have the shape of values {tuple(values.shape)}, got {tuple(mask.shape)}")
    sorted_values = torch.where(flat_mask, flat_values, math.inf).sort(dim=1).values
    count = flat_mask.sum(1)
    lower_middle = ((count - 1).clamp_min(0) // 2).unsqueeze(1)
    median = sorted_values.gather(1, lower_middle).squeeze(1)
    return torch.where(count > 0, median, 0.0)


def normalize_affine_invariant(maps: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Scale-and-shift normalisation of eq. 1-2: `d_hat = (d - t(d)) / s(d)` per map.

    `t` is the lower median of the map over its own masked pixels (see `masked_median`), `s`
    the mean absolute deviation from `t` over the same pixels.

    Returns:
        `(normalized [B, H, W], usable [B])`: a map is usable when it has at least two masked pixels
        and `s > 0` (as MiDaS: any spread, however small, is normalised; `|d - t| <= n s` keeps `d_hat`
        finite); `normalized` is 0 outside the mask and on unusable maps. A map with a non-finite masked
        value is usable and normalises to non-finite values.
    """
    maps = _as_maps(maps, "maps").float()
    mask = _as_mask(mask, maps, "mask")
    shift = masked_median(maps, mask)[:, None, None]
    centered = maps - shift
    count = mask.flatten(1).sum(1)
    scale = torch.where(mask, centered.abs(), 0.0).flatten(1).sum(1) / count.clamp_min(1)
    # `~(scale <= 0)` rather than `scale > 0`: a NaN scale (a diverged map) must not pass for a flat one.
    usable = (count >= 2) & ~(scale <= 0)
    normalized = centered / torch.where(scale > 0, scale, 1.0)[:, None, None]
    return torch.where(mask & usable[:, None, None], normalized, 0.0), usable


def flat_maps(maps: Tensor, mask: Tensor | None = None) -> Tensor:
    """The maps that eq. 1-2 cannot normalise although they have pixels to compare -> bool `[B]`: at least
    two masked pixels, all of the same value (`s = 0`). The affine-invariant losses leave them out."""
    maps = _as_maps(maps, "maps").detach()
    mask = _as_mask(mask, maps, "mask")
    highest = torch.where(mask, maps, -math.inf).flatten(1).amax(1)
    lowest = torch.where(mask, maps, math.inf).flatten(1).amin(1)
    return (mask.flatten(1).sum(1) >= 2) & (highest == lowest)


def _drop_largest(pixel_losses: Tensor, counted: Tensor, fraction: float) -> Tensor:
    """Remove from `counted` the `floor(fraction * n)` counted pixels with the largest loss per sample.

    Non-finite losses are never dropped: they signal divergence, not an outlier of the target."""
    flat_losses = pixel_losses.detach().flatten(1)
    flat_counted = counted.flatten(1)
    drop_count = (flat_counted.sum(1) * fraction).floor().long()
    # Losses are >= 0, so -1 ranks the pixels that are not counted, and the non-finite ones, last.
    order = torch.where(flat_counted & flat_losses.isfinite(), flat_losses, -1.0).argsort(dim=1, descending=True)
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    return counted & (rank >= drop_count[:, None]).view_as(counted)


def affine_invariant_pixel_losses(
    prediction: Tensor,
    target: Tensor,
    valid_mask: Tensor | None = None,
    ignore_largest_fraction: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Per-pixel terms `|d_hat_pred - d_hat_gt|` of the affine-invariant loss (eq. 1-2).

    Prediction and target are normalised separately over the valid pixels of each sample. With
    `ignore_largest_fraction` (V2 uses 0.1 on pseudo-labeled images), the `floor(fraction * n)`
    counted pixels of each sample with the largest loss are no longer counted.

    Returns:
        `(pixel_losses [B, H, W], counted [B, H, W])`: `counted` marks the valid pixels of usable
        samples that were not dropped; `pixel_losses` is 0 elsewhere.
    """
    prediction_maps = _as_maps(prediction, "prediction")
    target_maps = _as_maps(target, "target")
    _check_same_shape(target_maps, prediction_maps, "target", "prediction")
    valid = _as_mask(valid_mask, prediction_maps, "valid_mask")
    if not 0.0 <= ignore_largest_fraction < 1.0:
        raise ValueError(f"ignore_largest_fraction must be in [0, 1), got {ignore_largest_fraction}")

    prediction_hat, prediction_usable = normalize_affine_invariant(prediction_maps, valid)
    target_hat, target_usable = normalize_affine_invariant(target_maps, valid)
    counted = valid & (prediction_usable & target_usable)[:, None, None]
    pixel_losses = torch.where(counted, (prediction_hat - target_hat).abs(), 0.0)
    if ignore_largest_fraction > 0:
        counted = _drop_largest(pixel_losses, counted, ignore_largest_fraction)
        pixel_losses = torch.where(counted, pixel_losses, 0.0)
    return pixel_losses, counted


def affine_invariant_loss(
    prediction: Tensor,
    target: Tensor,
    valid_mask: Tensor | None = None,
    ignore_largest_fraction: float = 0.0,
) -> Tensor:
    """Affine-invariant loss of eq. 1-2: `mean |d_hat_pred - d_hat_gt|` over valid pixels.

    Averaged over the counted pixels of each sample, then over usable samples (see
    `affine_invariant_pixel_losses`, which also returns the per-pixel terms).
    """
    pixel_losses, counted = affine_invariant_pixel_losses(prediction, target, valid_mask, ignore_largest_fraction)
    return _mean_over_usable(*_mean_per_sample(pixel_losses, counted))


def gradient_matching_per_sample(
    prediction: Tensor, target: Tensor, valid_mask: Tensor | None = None, scales: int = 4
) -> tuple[Tensor, Tensor]:
    """Multi-scale gradient-matching loss of V2 per sample -> `(losses [B], usable [B])` (docs/method.md section 4;
    MiDaS, Ranftl et al., eq. 11).

    On the residual `R = d_hat_pred - d_hat_gt` of the eq. 1-2 normalisation (the aligned maps of
    the scale-and-shift-invariant loss it accompanies): at scale `k = 0 .. scales-1` the residual and
    mask are subsampled with stride `2**k`; the sum of `|R(x+1) - R(x)|` and `|R(y+1) - R(y)|` over
    neighbour pairs whose pixels are both valid is divided by the number of valid pixels at that
    scale, and summed over scales. Samples that cannot be normalised get 0 and `usable` False.
    """
    prediction_maps = _as_maps(prediction, "prediction")
    target_maps = _as_maps(target, "target")
    _check_same_shape(target_maps, prediction_maps, "target", "prediction")
    valid = _as_mask(valid_mask, prediction_maps, "valid_mask")
    if not isinstance(scales, int) or scales < 1:
        raise ValueError(f"scales must be a positive int, got {scales!r}")

    prediction_hat, prediction_usable = normalize_affine_invariant(prediction_maps, valid)
    target_hat, target_usable = normalize_affine_invariant(target_maps, valid)
    residual = prediction_hat - target_hat

    losses = residual.new_zeros(residual.shape[0])
    for scale in range(scales):
        step = 2**scale
        scaled_residual = residual[:, ::step, ::step]
        scaled_valid = valid[:, ::step, ::step]
        pairs_x = scaled_valid[:, :, 1:] & scaled_valid[:, :, :-1]
        pairs_y = scaled_valid[:, 1:, :] & scaled_valid[:, :-1, :]
        gradient_x = torch.where(pairs_x, (scaled_residual[:, :, 1:] - scaled_residual[:, :, :-1]).abs(), 0.0)
        gradient_y = torch.where(pairs_y, (scaled_residual[:, 1:, :] - scaled_residual[:, :-1, :]).abs(), 0.0)
        gradient_sum = gradient_x.flatten(1).sum(1) + gradient_y.flatten(1).sum(1)
        losses = losses + gradient_sum / scaled_valid.flatten(1).sum(1).clamp_min(1)
    usable = prediction_usable & target_usable
    return torch.where(usable, losses, 0.0), usable


def gradient_matching_loss(
    prediction: Tensor, target: Tensor, valid_mask: Tensor | None = None, scales: int = 4
) -> Tensor:
    """Multi-scale gradient-matching loss of V2 (`gradient_matching_per_sample`), averaged over usable
    samples. V2 adds it with weight 2 to the affine-invariant loss."""
    return _mean_over_usable(*gradient_matching_per_sample(prediction, target, valid_mask, scales))


def _area_weighted_regions(
    per_sample_loss: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
    student_prediction: Tensor,
    teacher_prediction_a: Tensor,
    teacher_prediction_b: Tensor,
    mix_mask: Tensor,
    valid_mask: Tensor | None,
) -> Tensor:
    """Eq. 6 for any per-sample loss `(prediction, target, mask) -> (losses [B], usable [B])`: region M
    against `T(u_a)`, region 1-M against `T(u_b)`, each on its own pixels, weighted by area, then averaged
    over samples with at least one usable region."""
    student_maps = _as_maps(student_prediction, "student_prediction")
    teacher_maps_a = _as_maps(teacher_prediction_a, "teacher_prediction_a")
    teacher_maps_b = _as_maps(teacher_prediction_b, "teacher_prediction_b")
    mix = _as_maps(mix_mask, "mix_mask")
    _check_same_shape(teacher_maps_a, student_maps, "teacher_prediction_a", "student_prediction")
    _check_same_shape(teacher_maps_b, student_maps, "teacher_prediction_b", "student_prediction")
    _check_same_shape(mix, student_maps, "mix_mask", "student_prediction")
    mix = mix > 0.5
    valid = _as_mask(valid_mask, student_maps, "valid_mask")

    loss_a, usable_a = per_sample_loss(student_maps, teacher_maps_a, valid & mix)
    loss_b, usable_b = per_sample_loss(student_maps, teacher_maps_b, valid & ~mix)
    area_a = mix.flatten(1).float().mean(1)
    losses = area_a * loss_a + (1 - area_a) * loss_b
    return _mean_over_usable(losses, usable_a | usable_b)


def cutmix_unlabeled_loss(
    student_prediction: Tensor,
    teacher_prediction_a: Tensor,
    teacher_prediction_b: Tensor,
    mix_mask: Tensor,
    valid_mask: Tensor | None = None,
    pixel_loss: PixelLoss = affine_invariant_pixel_losses,
) -> Tensor:
    """Unlabeled loss of the student on a CutMix image `u_ab = u_a * M + u_b * (1 - M)` (eq. 4-6).

    `L_u = (sum M / HW) * rho(S(u_ab), T(u_a)) over M + (sum (1-M) / HW) * rho(S(u_ab), T(u_b)) over 1-M`,
    per sample, then averaged over samples with at least one usable region. `rho` is `pixel_loss`
    evaluated with each region as its own valid mask, so the affine-invariant normalisation happens
    inside each region. Where CutMix was not applied (`M` all ones) this is
    `rho(S(u_ab), T(u_a))`.

    Args:
        student_prediction: `S(u_ab)`.
        teacher_prediction_a: `T(u_a)`, the teacher on the clean image `u_a`.
        teacher_prediction_b: `T(u_b)`.
        mix_mask: `M`, 1 where `u_ab` shows `u_a` (see `data.transforms.sample_cutmix_mask`).
        valid_mask: pixels to supervise at all; `None` means every pixel.
        pixel_loss: `(prediction, target, valid_mask) -> (pixel_losses, counted)`, e.g.
            `affine_invariant_pixel_losses` or a `functools.partial` of it.
    """
    return _area_weighted_regions(
        lambda prediction, target, mask: _mean_per_sample(*pixel_loss(prediction, target, mask)),
        student_prediction,
        teacher_prediction_a,
        teacher_prediction_b,
        mix_mask,
        valid_mask,
    )


def cutmix_gradient_matching_loss(
    student_prediction: Tensor,
    teacher_prediction_a: Tensor,
    teacher_prediction_b: Tensor,
    mix_mask: Tensor,
    valid_mask: Tensor | None = None,
    scales: int = 4,
) -> Tensor:
    """The V2 gradient-matching term on CutMix images, area-weighted per region as L_u is (eq. 6):
    `(sum M / HW) * G(S(u_ab), T(u_a)) over M + (sum (1-M) / HW) * G(S(u_ab), T(u_b)) over 1-M`."""
    return _area_weighted_regions(
        lambda prediction, target, mask: gradient_matching_per_sample(prediction, target, mask, scales),
        student_prediction,
        teacher_prediction_a,
        teacher_prediction_b,
        mix_mask,
        valid_mask,
    )


def feature_alignment_loss(student_features: Tensor, frozen_features: Tensor, alpha: float = 0.85) -> Tensor:
    """Feature alignment loss of eq. 7 with the tolerance margin `alpha`.

    Per patch `cos_i = cos(f_i, f'_i)` between student and frozen DINOv2 features `[B, N, C]`;
    patches with `cos_i > alpha` are left out; `L_feat = 1 - mean of the kept cos_i` over all kept
    patches of the batch. The frozen features are detached. Without kept patches: an attached 0.
    """
    for features, name in ((student_features, "student_features"), (frozen_features, "frozen_features")):
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(features).__name__}")
        if features.dim() != 3:
            raise ValueError(f"{name} must have shape [B, N, C], got {tuple(features.shape)}")
    _check_same_shape(frozen_features, student_features, "frozen_features", "student_features")
    if not -1.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a cosine in [-1, 1], got {alpha}")

    cosine = F.cosine_similarity(student_features.float(), frozen_features.detach().float(), dim=-1)
    kept = cosine <= alpha
    return ((1 - cosine) * kept).sum() / kept.sum().clamp_min(1)


def silog_loss(
    prediction: Tensor,
    target: Tensor,
    valid_mask: Tensor | None = None,
    lambd: float = 0.5,
    min_depth: float = 1e-3,
    max_depth: float | None = None,
) -> Tensor:
    """Scale-invariant log loss for V2 metric fine-tuning (docs/method.md section 4, "Metric fine-tuning").

    `sqrt(mean(g^2) - lambd * mean(g)^2)` with `g = log target - log prediction` over the valid
    pixels of the whole batch whose target lies in `[min_depth, max_depth]` (`None`: no upper cap),
    as in the official V2 metric-depth code. Unlike that code it stays finite: the prediction is
    floored at `SILOG_PREDICTION_FLOOR` inside the log, the square root gets zero gradient at a
    perfect prediction, and no valid pixel gives an attached 0.
    """
    prediction_maps = _as_maps(prediction, "prediction").float()
    target_maps = _as_maps(target, "target").float()
    _check_same_shape(target_maps, prediction_maps, "target", "prediction")
    valid = _as_mask(valid_mask, prediction_maps, "valid_mask") & (target_maps >= min_depth) & target_maps.isfinite()
    if max_depth is not None:
        valid = valid & (target_maps <= max_depth)

    # The floor serves zero predictions; a non-finite one (divergence) becomes NaN instead of being floored.
    floored_prediction = torch.where(
        prediction_maps.isfinite(), prediction_maps.clamp_min(SILOG_PREDICTION_FLOOR), math.nan
    )
    log_ratio = torch.where(valid, target_maps.clamp_min(min_depth).log() - floored_prediction.log(), 0.0)
    count = valid.sum().clamp_min(1)
    variance = (log_ratio**2).sum() / count - lambd * (log_ratio.sum() / count) ** 2
    # `variance <= 0` rather than `> 0`: a NaN variance (a diverged prediction) must stay NaN.
    return torch.where(variance <= 0, 0.0, variance.clamp_min(SILOG_VARIANCE_FLOOR).sqrt())


def supervised_depth_loss(
    prediction: Tensor,
    labels: Tensor,
    valid_mask: Tensor | None,
    depth_estimation_type: str,
    max_depth: float | None = None,
) -> Tensor:
    """The loss of `forward(labels=...)` for a model's output kind.

    `"relative"`: `labels` are disparity (any affine transform of it) and the loss is the affine-invariant loss of
    eq. 1-2. `"metric"`: `labels` are depth in metres and the loss is `silog_loss` (V2 metric fine-tuning, lambda
    0.5) over the valid pixels with `min_depth <= labels <= max_depth` (`max_depth`: the model's cap, since a
    Sigmoid x max_depth head cannot reach deeper targets).
    """
    if depth_estimation_type == "relative":
        return affine_invariant_loss(prediction, labels, valid_mask)
    if depth_estimation_type == "metric":
        return silog_loss(prediction, labels, valid_mask, max_depth=max_depth)
    raise ValueError(f"depth_estimation_type must be 'relative' or 'metric', got {depth_estimation_type!r}")
