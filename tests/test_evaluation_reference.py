"""The evaluation protocols and metrics against a float64 numpy reference written from docs/method.md section 5, on
non-trivial ground truth: each protocol's space, the "midas" clamp at 1/depth_cap on a pixel where it acts,
median scaling on a skewed scene, and the delta thresholds at ratios exactly 1.25^k."""

import numpy as np
import pytest
import torch

from depth_anything_hf.evaluation import compute_metrics


def reference_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The metrics of docs/method.md section 5 (and their usual definitions) in float64."""
    prediction, target = prediction.astype(np.float64), target.astype(np.float64)
    log_error = np.log(prediction) - np.log(target)
    ratio = np.maximum(prediction / target, target / prediction)
    return {
        "abs_rel": np.mean(np.abs(prediction - target) / target),
        "sq_rel": np.mean((prediction - target) ** 2 / target),
        "rmse": np.sqrt(np.mean((prediction - target) ** 2)),
        "rmse_log": np.sqrt(np.mean(log_error**2)),
        "log10": np.mean(np.abs(np.log10(prediction) - np.log10(target))),
        "silog": 100 * np.sqrt(np.mean(log_error**2) - np.mean(log_error) ** 2),
        "delta1": np.mean(ratio < 1.25),
        "delta2": np.mean(ratio < 1.25**2),
        "delta3": np.mean(ratio < 1.25**3),
    }


def least_squares_alignment(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`scale * prediction + shift` minimising the squared error to `target` (numpy's lstsq)."""
    design = np.stack([prediction, np.ones_like(prediction)], axis=1).astype(np.float64)
    (scale, shift), *_ = np.linalg.lstsq(design, target.astype(np.float64), rcond=None)
    return scale * prediction + shift


def assert_metrics_match(measured: dict[str, float], expected: dict[str, float]) -> None:
    assert set(measured) == set(expected)
    for name, value in expected.items():
        assert measured[name] == pytest.approx(value, rel=2e-5, abs=1e-6), name


@pytest.fixture
def scene_with_a_far_outlier():
    """Ground truth in 1..9 m and a noisy disparity prediction whose last pixel the least-squares fit maps far
    below 1/depth_cap (the model put it "behind infinity"), so the "midas" clamp acts there."""
    generator = np.random.default_rng(0)
    depth = np.linspace(1.0, 9.0, 12 * 15).reshape(12, 15) * (1 + 0.05 * generator.standard_normal((12, 15)))
    prediction = (1.0 / depth) * (1 + 0.1 * generator.standard_normal(depth.shape))
    prediction[-1, -1] = -0.5
    return depth.astype(np.float32), prediction.astype(np.float32)


def test_disparity_protocol_scores_the_aligned_disparity_against_gt_disparity(scene_with_a_far_outlier):
    depth, prediction = scene_with_a_far_outlier
    aligned = least_squares_alignment(prediction.ravel(), 1.0 / depth.ravel())
    depth_cap = 10.0
    assert aligned.min() < 0 < 1.0 / depth_cap  # the clamp acts on the outlier
    expected = reference_metrics(np.maximum(aligned, 1.0 / depth_cap), 1.0 / depth.ravel())
    measured = compute_metrics(
        torch.from_numpy(prediction), torch.from_numpy(depth), prediction_type="disparity", protocol="disparity",
        depth_cap=depth_cap,
    )
    assert_metrics_match(measured, expected)


def test_midas_protocol_clamps_at_one_over_depth_cap_and_scores_depth(scene_with_a_far_outlier):
    depth, prediction = scene_with_a_far_outlier
    aligned = least_squares_alignment(prediction.ravel(), 1.0 / depth.ravel())
    depth_cap = 10.0
    assert aligned.min() < 0 < 1.0 / depth_cap  # the clamp acts on the outlier
    expected = reference_metrics(1.0 / np.maximum(aligned, 1.0 / depth_cap), depth.ravel())
    measured = compute_metrics(
        torch.from_numpy(prediction), torch.from_numpy(depth), prediction_type="disparity", protocol="midas",
        depth_cap=depth_cap,
    )
    assert_metrics_match(measured, expected)


def test_median_protocol_scales_by_the_ratio_of_medians_then_clamps():
    # A skewed scene (most pixels near, a few far) and a prediction that is not a multiple of the ground truth:
    # the ratio of medians and the ratio of means differ, and so do the scores. The scored pixels are an odd
    # count (one median, the middle value) and the scaled prediction leaves [min_depth, depth_cap] at both ends.
    depth = np.exp(np.linspace(0.0, 2.5, 63)).reshape(7, 9) ** 1.5
    prediction = 0.3 * depth**1.2
    min_depth, depth_cap = 1.2, 30.0
    scored = (depth > min_depth) & (depth < depth_cap)
    assert scored.sum() % 2 == 1
    scaled = prediction[scored] * np.median(depth[scored]) / np.median(prediction[scored])
    assert scaled.min() < min_depth and scaled.max() > depth_cap
    expected = reference_metrics(np.clip(scaled, min_depth, depth_cap), depth[scored])
    measured = compute_metrics(
        torch.from_numpy(prediction).float(), torch.from_numpy(depth).float(), prediction_type="depth",
        protocol="median", depth_cap=depth_cap, min_depth=min_depth,
    )
    assert_metrics_match(measured, expected)


def test_metric_errors_on_nontrivial_ground_truth_and_deltas_exactly_at_the_thresholds():
    # Ratios exactly 1.25, 1.25^2 and 1.25^3 (exact in binary) do not pass their own threshold: delta_k counts
    # max(p/g, g/p) < 1.25^k, strictly.
    target = np.array([4.0, 16.0, 64.0, 2.0, 3.0] * 2, dtype=np.float32)
    prediction = np.array([5.0, 25.0, 125.0, 2.0, 3.0] * 2, dtype=np.float32)
    measured = compute_metrics(
        torch.from_numpy(prediction)[None], torch.from_numpy(target)[None], prediction_type="depth", protocol="metric"
    )
    assert (measured["delta1"], measured["delta2"], measured["delta3"]) == (0.4, 0.6, 0.8)
    assert measured["sq_rel"] == pytest.approx((1 / 4 + 81 / 16 + 61**2 / 64) * 2 / 10, rel=1e-6)
    assert_metrics_match(measured, reference_metrics(prediction, target))
