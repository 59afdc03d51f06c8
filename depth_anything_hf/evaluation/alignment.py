"""Per-image alignment of a prediction onto the ground truth (docs/method.md section 5).

Relative models predict disparity up to an unknown scale and shift, so before any error can be
measured the prediction is mapped onto the ground truth by the least-squares affine fit over the
valid pixels. The fit solves 2x2 normal equations; their sums are accumulated in float64 from
float32 maps, so no full-size float64 copy is made and the result does not depend on the device.
"""

import torch


def centered_moments(values: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Means, variances and covariance of two equally long 1-D vectors, as float64 scalars.

    The vectors are centred before the products are formed: the uncentred form
    `sum(x^2) - n * mean(x)^2` loses every digit when the spread is small compared with the mean.

    Returns:
        `(mean_values, mean_targets, var_values, var_targets, covariance)` (population moments).
    """
    count = values.numel()
    mean_values = values.sum(dtype=torch.float64) / count
    mean_targets = targets.sum(dtype=torch.float64) / count
    centered_values = values - mean_values.to(values.dtype)
    centered_targets = targets - mean_targets.to(targets.dtype)
    var_values = (centered_values * centered_values).sum(dtype=torch.float64) / count
    var_targets = (centered_targets * centered_targets).sum(dtype=torch.float64) / count
    covariance = (centered_values * centered_targets).sum(dtype=torch.float64) / count
    return mean_values, mean_targets, var_values, var_targets, covariance


def fit_scale_and_shift(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares `scale, shift` minimising `sum((scale * prediction + shift - target)^2)`.

    This is the zero-shot alignment of docs/method.md section 5 (the prediction is the predicted
    disparity, the target the ground-truth disparity 1/depth, both restricted to valid pixels).
    A constant prediction has no unique fit; the minimum-norm solution `scale = 0,
    shift = mean(target)` is returned then, so such a prediction scores as a flat map.

    Args:
        prediction: 1-D tensor of predicted values on the valid pixels.
        target: 1-D tensor of the same length.

    Returns:
        `(scale, shift)` as float64 scalar tensors on the input's device.
    """
    mean_prediction, mean_target, var_prediction, _, covariance = centered_moments(prediction, target)
    if var_prediction <= 0:
        return torch.zeros_like(mean_target), mean_target
    scale = covariance / var_prediction
    return scale, mean_target - scale * mean_prediction


def median_scale(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale `median(target) / median(prediction)` for scale-ambiguous depth predictions.

    Args:
        prediction: 1-D tensor of positive predicted depths on the valid pixels.
        target: 1-D tensor of ground-truth depths of the same length.
    """
    return target.median().double() / prediction.median().double()
