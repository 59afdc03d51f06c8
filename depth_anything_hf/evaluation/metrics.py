"""Depth metrics and the evaluation protocols (docs/method.md section 5).

Protocols (the alignment applied before the metrics; a result must name the one it used):

- `"disparity"`: the authors' zero-shot protocol. Least-squares scale and shift of the predicted
  disparity onto the ground-truth disparity 1/depth over the valid pixels; metrics are computed
  between the aligned and the ground-truth disparity.
- `"midas"`: the same alignment, then the aligned disparity is clamped to >= 1/depth_cap,
  inverted, and the metrics are computed in depth space.
- `"metric"`: no alignment (metric models); the predicted depth is clamped to
  [min_depth, depth_cap].
- `"median"`: depth predictions known up to scale are multiplied by
  median(gt) / median(prediction), then clamped as in "metric".

Orientation rule (a depth map passed as disparity, or the reverse, must never be scored
silently): `prediction_type` is a required argument, and "metric"/"median" only accept depth.
The disparity protocols accept depth and invert it (it must then be positive). After this
conversion the prediction is compared with the ground truth in the protocol's space; if their
Spearman rank correlation over the evaluated pixels is below `ORIENTATION_CORRELATION_LIMIT`
(-0.5) a ValueError is raised. Depth is a decreasing function of disparity, so a map of the wrong
kind has rank correlation -1 with a perfect prediction and stays far below -0.5 for any useful
model, while a poor but honest prediction (correlation near 0) is scored as it is. Callers whose
`prediction_type` comes from the model's config, not from a person, pass
`check_orientation=False` (an untrained model can anti-correlate on single images).

Every metric is computed per image; datasets are summarised by averaging the per-image values
(`MetricsAverager`), never by pooling pixels. Images with fewer than `MIN_VALID_PIXELS` valid
pixels are skipped and counted.
"""

import math

import numpy as np
import torch

from .alignment import centered_moments, fit_scale_and_shift, median_scale
from .presets import Crop, resolve_crop

PROTOCOLS = ("disparity", "midas", "metric", "median")
PREDICTION_TYPES = ("disparity", "depth")
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog", "delta1", "delta2", "delta3")
# Metrics for which larger is better; the others are errors.
HIGHER_IS_BETTER = ("delta1", "delta2", "delta3")
MIN_VALID_PIXELS = 10
# Ground truth this many times beyond the dataset's depth cap is not in metres (millimetres are 1000 times).
UNIT_CHECK_FACTOR = 10
ORIENTATION_CORRELATION_LIMIT = -0.5


def _mean(values: torch.Tensor) -> torch.Tensor:
    """Mean accumulated in float64, so that e.g. a fraction of all pixels is exactly 1 on every device."""
    return values.sum(dtype=torch.float64) / values.numel()


def depth_error_metrics(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The standard error metrics between two positive 1-D vectors (docs/method.md section 5).

    abs_rel = mean(|p - g| / g); sq_rel = mean((p - g)^2 / g); rmse = sqrt(mean((p - g)^2));
    rmse_log = sqrt(mean((ln p - ln g)^2)); log10 = mean(|log10 p - log10 g|);
    silog = 100 * sqrt(mean(e^2) - mean(e)^2) with e = ln p - ln g (the scale-invariant log error
    as reported by BTS/ZoeDepth); delta_k = fraction of pixels with max(p/g, g/p) < 1.25^k.
    Element-wise terms are float32; the means accumulate in float64.

    Returns:
        A dict of 0-d float64 tensors on the inputs' device, keyed by `METRIC_NAMES`.
    """
    difference = prediction - target
    log_error = torch.log(prediction) - torch.log(target)
    ratio = torch.maximum(prediction / target, target / prediction)
    mean_squared_log_error = _mean(log_error.square())
    silog_variance = (mean_squared_log_error - _mean(log_error).square()).clamp(min=0)
    return {
        "abs_rel": _mean(difference.abs() / target),
        "sq_rel": _mean(difference.square() / target),
        "rmse": _mean(difference.square()).sqrt(),
        "rmse_log": mean_squared_log_error.sqrt(),
        "log10": _mean(log_error.abs()) / math.log(10),
        "silog": 100 * silog_variance.sqrt(),
        "delta1": _mean(ratio < 1.25),
        "delta2": _mean(ratio < 1.25**2),
        "delta3": _mean(ratio < 1.25**3),
    }


def evaluation_mask(
    gt_depth: torch.Tensor,
    valid_mask: torch.Tensor | None,
    *,
    min_depth: float | None,
    depth_cap: float | None,
    crop: Crop | None,
) -> torch.Tensor:
    """Pixels that are scored: valid, finite, min_depth < gt < depth_cap, inside the crop."""
    mask = torch.isfinite(gt_depth) & (gt_depth > (min_depth if min_depth is not None else 0.0))
    if valid_mask is not None:
        mask &= valid_mask
    if depth_cap is not None:
        mask &= gt_depth < depth_cap
    if crop is not None:
        mask &= crop.mask(*gt_depth.shape, device=gt_depth.device)
    return mask


def _check_inputs(prediction, gt_depth, valid_mask, prediction_type, protocol, depth_cap, min_depth) -> None:
    for name, tensor in (("prediction", prediction), ("gt_depth", gt_depth)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.ndim != 2:
            raise TypeError(
                f"{name} must be a 2-D floating-point torch.Tensor or numpy array [H, W], got {_describe(tensor)}"
            )
    if prediction.shape != gt_depth.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and gt_depth {tuple(gt_depth.shape)} must have the same size; "
            "upsample the prediction to the ground-truth size first"
        )
    if valid_mask is not None and (
        not isinstance(valid_mask, torch.Tensor) or valid_mask.dtype != torch.bool or valid_mask.shape != gt_depth.shape
    ):
        raise TypeError(f"valid_mask must be None or a bool tensor of shape {tuple(gt_depth.shape)}, got {_describe(valid_mask)}")
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol in ("metric", "median") and prediction_type != "depth":
        raise ValueError(
            f"protocol {protocol!r} scores depth predictions, got prediction_type='disparity'; relative "
            "(disparity) models are evaluated with protocol 'disparity' or 'midas'"
        )
    if protocol == "midas" and depth_cap is None:
        raise ValueError("protocol 'midas' clamps the aligned disparity at 1/depth_cap: depth_cap is required")
    if depth_cap is not None and depth_cap <= 0:
        raise ValueError(f"depth_cap must be positive, got {depth_cap}")
    if min_depth is not None and min_depth < 0:
        raise ValueError(f"min_depth must be >= 0, got {min_depth}")
    if depth_cap is not None and min_depth is not None and min_depth >= depth_cap:
        raise ValueError(f"min_depth ({min_depth}) must be smaller than depth_cap ({depth_cap})")


def _as_tensors(prediction, gt_depth, valid_mask) -> tuple:
    """numpy arrays as torch tensors (ground truth is often loaded with numpy), on the prediction's device."""
    prediction, gt_depth, valid_mask = (
        torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
        for value in (prediction, gt_depth, valid_mask)
    )
    if isinstance(prediction, torch.Tensor):
        gt_depth, valid_mask = (
            value.to(prediction.device) if isinstance(value, torch.Tensor) else value for value in (gt_depth, valid_mask)
        )
    return prediction, gt_depth, valid_mask


def _check_depth_units(gt_depth: torch.Tensor, measured: torch.Tensor, depth_cap: float) -> None:
    """Raise when at least half of the measured ground truth lies beyond `UNIT_CHECK_FACTOR` x `depth_cap`: depth
    in millimetres or centimetres rather than metres, which the cap would otherwise silently leave out."""
    count = int(measured.sum())
    beyond = int((gt_depth[measured] >= UNIT_CHECK_FACTOR * depth_cap).sum())
    if count and 2 * beyond >= count:
        raise ValueError(
            f"ground truth beyond depth_cap: wrong units? {beyond} of {count} measured pixels are at or beyond "
            f"{UNIT_CHECK_FACTOR:g} x depth_cap = {UNIT_CHECK_FACTOR * depth_cap:g} m (median "
            f"{gt_depth[measured].median().item():g}); gt_depth must be in metres (millimetres: divide by 1000)"
        )


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based ranks of a 1-D tensor, tied values sharing their average rank (float32)."""
    _, group_of_value, group_sizes = torch.unique(values, return_inverse=True, return_counts=True)
    group_ends = group_sizes.cumsum(0)
    return (group_ends - (group_sizes + 1) / 2).float()[group_of_value]


def rank_correlation(values: torch.Tensor, targets: torch.Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors (0 when either is constant).

    Ties share their average rank: a prediction that is flat over part of the image must not
    inherit an order from the pixel positions.
    """
    _, _, var_values, var_targets, covariance = centered_moments(_average_ranks(values), _average_ranks(targets))
    if var_values <= 0 or var_targets <= 0:
        return 0.0
    return (covariance / (var_values * var_targets).sqrt()).item()


def _check_orientation(prediction: torch.Tensor, target: torch.Tensor, space: str, prediction_type: str) -> None:
    """Raise when the prediction anti-correlates with the ground truth (see the module docstring)."""
    correlation = rank_correlation(prediction, target)
    if correlation < ORIENTATION_CORRELATION_LIMIT:
        other = "depth" if prediction_type == "disparity" else "disparity"
        raise ValueError(
            f"The prediction (prediction_type={prediction_type!r}) anti-correlates with the ground-truth {space} "
            f"(Spearman rank correlation {correlation:.2f} < {ORIENTATION_CORRELATION_LIMIT}): it looks like "
            f"{other} was passed. Relative Depth Anything models output disparity (larger = nearer); metric "
            "models output depth in metres."
        )


def compute_metrics(
    prediction: torch.Tensor,
    gt_depth: torch.Tensor,
    valid_mask: torch.Tensor | None = None,
    *,
    prediction_type: str,
    protocol: str,
    depth_cap: float | None = None,
    min_depth: float | None = None,
    crop: Crop | str | None = None,
    check_orientation: bool = True,
) -> dict[str, float] | None:
    """Metrics of one image under a named protocol (see the module docstring).

    Args:
        prediction: [H, W] model output at the ground-truth resolution: disparity for relative
            models, metres for metric models. A torch tensor or a numpy array, as are the next two.
        gt_depth: [H, W] ground-truth depth in metres (non-positive or non-finite = invalid).
        valid_mask: optional [H, W] bool mask of usable ground truth.
        prediction_type: `"disparity"` or `"depth"`; what `prediction` holds (required).
        protocol: `"disparity"`, `"midas"`, `"metric"` or `"median"`.
        depth_cap: ground truth at or beyond it is ignored; the disparity clamp 1/depth_cap of
            "midas" (required there) and "disparity", and the upper clamp of "metric"/"median".
        min_depth: ground truth at or below it is ignored; the lower clamp of "metric"/"median".
        crop: a `Crop`, `"eigen"`, `"garg"` or None.
        check_orientation: reject anti-correlated predictions (module docstring). Callers that take
            `prediction_type` from the model's own config rather than from a user, such as the
            evaluation runner, turn it off: an undertrained model may anti-correlate on some images and
            must still be scored.

    Returns:
        `{metric name: value}` (`METRIC_NAMES`), or None when fewer than `MIN_VALID_PIXELS` pixels
        are valid (the image is skipped; `MetricsAverager` counts it).

    Raises:
        TypeError / ValueError on malformed input, a protocol that does not fit the prediction type,
        a non-finite prediction on a scored pixel, an anti-correlated (wrongly oriented) prediction, or
        ground truth of which half or more lies beyond 10 x depth_cap (not in metres).
    """
    prediction, gt_depth, valid_mask = _as_tensors(prediction, gt_depth, valid_mask)
    _check_inputs(prediction, gt_depth, valid_mask, prediction_type, protocol, depth_cap, min_depth)
    crop = resolve_crop(crop)
    mask = evaluation_mask(gt_depth, valid_mask, min_depth=min_depth, depth_cap=depth_cap, crop=crop)
    if depth_cap is not None:
        measured = evaluation_mask(gt_depth, valid_mask, min_depth=min_depth, depth_cap=None, crop=crop)
        _check_depth_units(gt_depth, measured, depth_cap)
    if int(mask.sum()) < MIN_VALID_PIXELS:
        return None
    predicted = prediction[mask].float()
    target_depth = gt_depth[mask].float()
    if not torch.isfinite(predicted).all():
        raise ValueError("prediction has NaN or infinite values on valid ground-truth pixels")
    tiny = torch.finfo(torch.float32).tiny

    if protocol in ("disparity", "midas"):
        if prediction_type == "depth":
            if (predicted <= 0).any():
                raise ValueError("a depth prediction must be positive on valid pixels to be inverted to disparity")
            predicted = 1.0 / predicted
        target_disparity = 1.0 / target_depth
        if check_orientation:
            _check_orientation(predicted, target_disparity, "disparity", prediction_type)
        scale, shift = fit_scale_and_shift(predicted, target_disparity)
        # Aligned disparity can reach zero or below where the fit extrapolates; the clamp keeps it a
        # valid (far) disparity so that such pixels count as errors instead of breaking the ratios.
        min_disparity = 1.0 / depth_cap if depth_cap is not None else tiny
        aligned = (scale.float() * predicted + shift.float()).clamp(min=min_disparity)
        scored = depth_error_metrics(aligned, target_disparity) if protocol == "disparity" else (
            depth_error_metrics(1.0 / aligned, target_depth)
        )
    else:
        if check_orientation:
            _check_orientation(predicted, target_depth, "depth", prediction_type)
        if protocol == "median":
            predicted = predicted * median_scale(predicted, target_depth).float()
        lower = min_depth if min_depth else tiny
        upper = depth_cap if depth_cap is not None else math.inf
        scored = depth_error_metrics(predicted.clamp(lower, upper), target_depth)

    values = torch.stack([scored[name] for name in METRIC_NAMES]).tolist()
    return dict(zip(METRIC_NAMES, values))


class MetricsAverager:
    """Averages per-image metrics over a dataset and counts skipped images."""

    def __init__(self):
        self._sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self.num_images = 0
        self.num_skipped = 0
        self.num_undecodable = 0

    def update(self, image_metrics: dict[str, float] | None) -> None:
        """Add one image's `compute_metrics` result (None = skipped image)."""
        if image_metrics is None:
            self.num_skipped += 1
            return
        for name in METRIC_NAMES:
            self._sums[name] += image_metrics[name]
        self.num_images += 1

    @classmethod
    def combined(cls, averagers) -> "MetricsAverager":
        """One averager over the images of all `averagers` (e.g. gathered from several processes)."""
        total = cls()
        for averager in averagers:
            for name in METRIC_NAMES:
                total._sums[name] += averager._sums[name]
            total.num_images += averager.num_images
            total.num_skipped += averager.num_skipped
            total.num_undecodable += averager.num_undecodable
        return total

    def compute(self) -> dict:
        """`{"metrics": per-image means, "num_images": images averaged, "num_skipped": images not averaged,
        "num_undecodable": those of them whose files failed to decode}`. `num_undecodable` is set by the caller,
        which reads the files."""
        skipped = f"{self.num_skipped} without {MIN_VALID_PIXELS} valid pixels, {self.num_undecodable} not decodable"
        if self.num_images == 0:
            raise ValueError(f"No image could be scored ({skipped})")
        return {
            "metrics": {name: total / self.num_images for name, total in self._sums.items()},
            "num_images": self.num_images,
            "num_skipped": self.num_skipped + self.num_undecodable,
            "num_undecodable": self.num_undecodable,
        }
