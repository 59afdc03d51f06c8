"""Evaluation of depth models: alignment protocols, metrics, dataset presets and the runner.

`compute_metrics` scores one image under a named protocol; `MetricsAverager` averages images;
`PRESETS` hold the per-dataset depth ranges and crops; `runner.evaluate_model` runs a checkpoint over
datasets and writes `results.json`. `EVALUATE_MODULE_PATH` is the folder to pass to
`evaluate.load` for the same computation as an `evaluate` metric.
"""

from pathlib import Path

from .alignment import fit_scale_and_shift, median_scale
from .metrics import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    MIN_VALID_PIXELS,
    PREDICTION_TYPES,
    PROTOCOLS,
    MetricsAverager,
    compute_metrics,
    depth_error_metrics,
    rank_correlation,
)
from .presets import EIGEN_CROP, GARG_CROP, PRESETS, Crop, DatasetPreset, get_preset

EVALUATE_MODULE_PATH = Path(__file__).parent / "depth_metrics"

__all__ = [
    "EIGEN_CROP",
    "EVALUATE_MODULE_PATH",
    "GARG_CROP",
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "MIN_VALID_PIXELS",
    "PREDICTION_TYPES",
    "PRESETS",
    "PROTOCOLS",
    "Crop",
    "DatasetPreset",
    "MetricsAverager",
    "compute_metrics",
    "depth_error_metrics",
    "fit_scale_and_shift",
    "get_preset",
    "median_scale",
    "rank_correlation",
]
