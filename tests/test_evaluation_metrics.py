"""Alignment, metrics, protocols and presets of depth_anything_hf.evaluation against closed forms."""

import math

import pytest
import torch

from depth_anything_hf.evaluation import (
    EIGEN_CROP,
    GARG_CROP,
    METRIC_NAMES,
    MetricsAverager,
    compute_metrics,
    depth_error_metrics,
    fit_scale_and_shift,
    get_preset,
    rank_correlation,
)


def _scene_depth(height=48, width=64, seed=0) -> torch.Tensor:
    """A positive depth map in 1..9 m with structure (a slanted floor plus a box), like a real scene."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 1, height)[:, None].expand(height, width)
    depth = 9.0 - 7.0 * rows + 0.3 * torch.rand(height, width, generator=generator)
    depth[10:20, 20:40] = 2.5
    return depth


def test_fit_recovers_an_exactly_known_scale_and_shift():
    generator = torch.Generator().manual_seed(1)
    prediction = torch.rand(5000, generator=generator) * 40 + 3
    target = 0.0173 * prediction - 0.021
    scale, shift = fit_scale_and_shift(prediction, target)
    assert scale.item() == pytest.approx(0.0173, rel=1e-6)
    assert shift.item() == pytest.approx(-0.021, rel=1e-5, abs=1e-8)


def test_fit_matches_float64_least_squares_on_noisy_data():
    generator = torch.Generator().manual_seed(2)
    prediction = torch.rand(2000, generator=generator)
    target = 3.0 * prediction + 0.5 + 0.1 * torch.randn(2000, generator=generator)
    design = torch.stack([prediction.double(), torch.ones(2000, dtype=torch.float64)], dim=1)
    reference = torch.linalg.lstsq(design, target.double()[:, None]).solution.flatten()
    scale, shift = fit_scale_and_shift(prediction, target)
    assert scale.item() == pytest.approx(reference[0].item(), rel=1e-7)
    assert shift.item() == pytest.approx(reference[1].item(), rel=1e-7)


def test_fit_of_a_constant_prediction_is_the_target_mean():
    target = torch.tensor([1.0, 2.0, 6.0])
    scale, shift = fit_scale_and_shift(torch.full((3,), 0.7), target)
    assert scale.item() == 0.0
    assert shift.item() == pytest.approx(3.0)


def test_each_metric_against_hand_computed_values():
    prediction = torch.tensor([1.0, 1.3, 1.8, 2.0])
    target = torch.ones(4)
    log_errors = [0.0, math.log(1.3), math.log(1.8), math.log(2.0)]
    mean_log, mean_sq_log = sum(log_errors) / 4, sum(e * e for e in log_errors) / 4
    expected = {
        "abs_rel": (0 + 0.3 + 0.8 + 1.0) / 4,
        "sq_rel": (0 + 0.09 + 0.64 + 1.0) / 4,
        "rmse": math.sqrt((0 + 0.09 + 0.64 + 1.0) / 4),
        "rmse_log": math.sqrt(mean_sq_log),
        "log10": sum(abs(e) for e in log_errors) / 4 / math.log(10),
        "silog": 100 * math.sqrt(mean_sq_log - mean_log**2),
        "delta1": 0.25,  # ratios 1, 1.3, 1.8, 2 against 1.25, 1.5625, 1.953125
        "delta2": 0.5,
        "delta3": 0.75,
    }
    metrics = depth_error_metrics(prediction, target)
    assert set(metrics) == set(METRIC_NAMES)
    for name, value in expected.items():
        assert metrics[name].item() == pytest.approx(value, rel=1e-5), name


@pytest.mark.parametrize("protocol", ["disparity", "midas"])
def test_perfect_disparity_scores_perfectly_under_both_protocols(protocol):
    depth = _scene_depth()
    metrics = compute_metrics(1.0 / depth, depth, prediction_type="disparity", protocol=protocol, depth_cap=10.0)
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["delta1"] == 1.0


@pytest.mark.parametrize("protocol", ["disparity", "midas"])
def test_affine_transform_of_disparity_scores_perfectly(protocol):
    depth = _scene_depth()
    prediction = 37.0 / depth + 4.2  # what a relative model outputs: disparity up to scale and shift
    metrics = compute_metrics(prediction, depth, prediction_type="disparity", protocol=protocol, depth_cap=10.0)
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["rmse"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["delta1"] == 1.0


def test_disparity_and_midas_protocols_measure_different_spaces():
    depth = _scene_depth()
    noise = 1 + 0.2 * torch.sin(torch.arange(depth.numel(), dtype=torch.float32)).reshape(depth.shape)
    prediction = noise / depth
    in_disparity = compute_metrics(prediction, depth, prediction_type="disparity", protocol="disparity", depth_cap=10.0)
    in_depth = compute_metrics(prediction, depth, prediction_type="disparity", protocol="midas", depth_cap=10.0)
    # Same alignment; abs_rel is relative to 1/g in one and to g in the other.
    assert in_disparity["abs_rel"] != pytest.approx(in_depth["abs_rel"], rel=1e-3)


@pytest.mark.parametrize("protocol", ["disparity", "midas"])
def test_depth_given_as_disparity_is_rejected(protocol):
    depth = _scene_depth()
    with pytest.raises(ValueError, match="looks like depth was passed"):
        compute_metrics(depth * 3.0, depth, prediction_type="disparity", protocol=protocol, depth_cap=10.0)


@pytest.mark.parametrize("protocol", ["metric", "median"])
def test_disparity_given_as_depth_is_rejected(protocol):
    depth = _scene_depth()
    with pytest.raises(ValueError, match="looks like disparity was passed"):
        compute_metrics(1.0 / depth, depth, prediction_type="depth", protocol=protocol, depth_cap=10.0)


def test_depth_prediction_under_a_disparity_protocol_is_inverted():
    depth = _scene_depth()
    metrics = compute_metrics(2.0 * depth, depth, prediction_type="depth", protocol="disparity", depth_cap=10.0)
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["delta1"] == 1.0


def test_prediction_type_is_required_and_must_fit_the_protocol():
    depth = _scene_depth()
    with pytest.raises(TypeError, match="prediction_type"):
        compute_metrics(1.0 / depth, depth, protocol="disparity")
    with pytest.raises(ValueError, match="relative"):
        compute_metrics(1.0 / depth, depth, prediction_type="disparity", protocol="metric")
    with pytest.raises(ValueError, match="prediction_type"):
        compute_metrics(1.0 / depth, depth, prediction_type="inverse_depth", protocol="disparity")
    with pytest.raises(ValueError, match="protocol"):
        compute_metrics(1.0 / depth, depth, prediction_type="disparity", protocol="least_squares")


def test_flat_prediction_is_scored_not_flagged():
    # A flat map shares one rank: it must not inherit an order from the pixel positions (depth here
    # falls with the row), which would look like anti-correlation.
    depth = _scene_depth()
    prediction = torch.zeros_like(depth)
    prediction[0, :3] = 1.0
    metrics = compute_metrics(prediction, depth, prediction_type="disparity", protocol="disparity", depth_cap=10.0)
    assert 0 < metrics["abs_rel"] < 1
    assert rank_correlation(torch.zeros(50), torch.arange(50.0)) == 0.0


def test_metric_protocol_clamps_to_the_depth_range():
    depth = torch.full((4, 5), 10.0)
    prediction = torch.full((4, 5), 10.0)
    prediction[0, 0] = 100.0  # clamped to 80 -> relative error 7
    prediction[0, 1] = -1.0  # clamped to min_depth 0.5 -> relative error 0.95
    metrics = compute_metrics(prediction, depth, prediction_type="depth", protocol="metric", depth_cap=80.0, min_depth=0.5)
    assert metrics["abs_rel"] == pytest.approx((7.0 + 0.95) / 20, rel=1e-6)
    assert metrics["delta1"] == pytest.approx(18 / 20)


def test_median_scaling_recovers_a_global_scale():
    depth = _scene_depth()
    metrics = compute_metrics(0.31 * depth, depth, prediction_type="depth", protocol="median", depth_cap=10.0)
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    metrics = compute_metrics(0.31 * depth, depth, prediction_type="depth", protocol="metric", depth_cap=10.0)
    assert metrics["abs_rel"] == pytest.approx(0.69, rel=1e-5)


def test_ground_truth_outside_the_range_and_invalid_pixels_are_ignored():
    depth = _scene_depth()
    prediction = 1.0 / depth
    depth_with_far = depth.clone()
    depth_with_far[:5] = 120.0  # beyond the 80 m cap
    depth_with_far[5, :] = 0.0  # no measurement
    prediction_with_junk = prediction.clone()
    prediction_with_junk[:6] = 5.0
    valid = torch.ones_like(depth, dtype=torch.bool)
    valid[6] = False
    prediction_with_junk[6] = 7.0
    metrics = compute_metrics(
        prediction_with_junk, depth_with_far, valid, prediction_type="disparity", protocol="disparity", depth_cap=80.0
    )
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)


def test_crops_match_the_reference_pixel_bounds():
    assert EIGEN_CROP.pixel_bounds(480, 640) == (45, 471, 41, 601)
    height, width = 375, 1242
    reference = (
        int(0.40810811 * height), int(0.99189189 * height), int(0.03594771 * width), int(0.96405229 * width)
    )
    assert GARG_CROP.pixel_bounds(height, width) == reference
    mask = GARG_CROP.mask(height, width)
    assert mask.sum().item() == (reference[1] - reference[0]) * (reference[3] - reference[2])
    assert mask[reference[0], reference[2]] and not mask[reference[0] - 1, reference[2]]


def test_crop_excludes_pixels_from_scoring():
    depth = torch.full((480, 640), 3.0) + torch.linspace(0, 1, 640)
    prediction = 1.0 / depth
    prediction[:45] = 50.0  # outside the Eigen crop
    cropped = compute_metrics(prediction, depth, prediction_type="disparity", protocol="disparity", crop="eigen")
    uncropped = compute_metrics(prediction, depth, prediction_type="disparity", protocol="disparity")
    assert cropped["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert uncropped["abs_rel"] > 0.05


def test_presets_carry_the_standard_settings():
    nyu, kitti = get_preset("nyu"), get_preset("kitti")
    assert (nyu.min_depth, nyu.max_depth, nyu.crop) == (1e-3, 10.0, EIGEN_CROP)
    assert (kitti.min_depth, kitti.max_depth, kitti.crop) == (1e-3, 80.0, GARG_CROP)
    with pytest.raises(ValueError, match="known presets"):
        get_preset("nyu2")


def test_too_few_valid_pixels_skip_the_image_and_are_counted():
    depth = _scene_depth()
    valid = torch.zeros_like(depth, dtype=torch.bool)
    valid[0, :9] = True
    assert compute_metrics(1.0 / depth, depth, valid, prediction_type="disparity", protocol="disparity") is None
    valid[0, 9] = True
    assert compute_metrics(1.0 / depth, depth, valid, prediction_type="disparity", protocol="disparity") is not None


def test_dataset_average_is_over_images_not_pixels():
    small_depth, large_depth = torch.full((2, 5), 2.0), torch.full((100, 100), 2.0)
    averager = MetricsAverager()
    averager.update(compute_metrics(2.0 * small_depth, small_depth, prediction_type="depth", protocol="metric"))
    averager.update(compute_metrics(large_depth, large_depth, prediction_type="depth", protocol="metric"))
    averager.update(None)
    summary = averager.compute()
    assert summary["metrics"]["abs_rel"] == pytest.approx(0.5)  # pooled pixels would give 10 / 10010
    assert (summary["num_images"], summary["num_skipped"]) == (2, 1)


def test_numpy_and_torch_inputs_give_the_same_metrics():
    depth = _scene_depth()
    prediction = 2.0 / depth + 0.1 * torch.rand(depth.shape, generator=torch.Generator().manual_seed(3))
    valid = depth < 8
    settings = dict(prediction_type="disparity", protocol="midas", depth_cap=10.0)
    expected = compute_metrics(prediction, depth, valid, **settings)
    assert expected["abs_rel"] > 0.01
    for arrays in (
        (prediction.numpy(), depth.numpy(), valid.numpy()),
        (prediction, depth.numpy(), valid.numpy()),
        (prediction.numpy(), depth, None),
    ):
        reference = expected if arrays[2] is not None else compute_metrics(prediction, depth, **settings)
        assert compute_metrics(*arrays, **settings) == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize(("millimetre_rows", "crop"), [(48, "eigen"), (24, None)])
def test_ground_truth_in_millimetres_is_an_error_not_a_skip(millimetre_rows, crop):
    # The whole frame, or half of it, in millimetres under NYU's 10 m cap: once all skipped, once scored on the
    # other half as a perfect prediction.
    depth = _scene_depth()
    depth[:millimetre_rows] *= 1000
    with pytest.raises(ValueError, match="ground truth beyond depth_cap: wrong units"):
        compute_metrics(
            1.0 / depth, depth, prediction_type="disparity", protocol="disparity", depth_cap=10.0, min_depth=1e-3,
            crop=crop,
        )  # fmt: skip
    # Far ground truth in metres (a window, the sky) beyond the cap is left out, not mistaken for millimetres.
    depth = _scene_depth()
    depth[:16] = 1e4
    metrics = compute_metrics(
        1.0 / depth, depth, prediction_type="disparity", protocol="disparity", depth_cap=10.0, crop=crop
    )
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)


def test_malformed_inputs_raise_clear_errors():
    depth = _scene_depth()
    with pytest.raises(ValueError, match="same size"):
        compute_metrics(torch.ones(10, 10), depth, prediction_type="disparity", protocol="disparity")
    with pytest.raises(TypeError, match="prediction must be a 2-D"):
        compute_metrics(depth.tolist(), depth, prediction_type="depth", protocol="metric")
    with pytest.raises(TypeError, match="gt_depth must be a 2-D floating-point"):
        compute_metrics(depth, (depth * 1000).numpy().astype("uint16"), prediction_type="depth", protocol="metric")
    with pytest.raises(ValueError, match="depth_cap is required"):
        compute_metrics(1.0 / depth, depth, prediction_type="disparity", protocol="midas")
    with pytest.raises(TypeError, match="valid_mask"):
        compute_metrics(1.0 / depth, depth, (depth > 2).float(), prediction_type="disparity", protocol="disparity")
    bad = 1.0 / depth
    bad[3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(bad, depth, prediction_type="disparity", protocol="disparity")
