"""Depth estimation metrics for the `evaluate` library, backed by `depth_anything_hf.evaluation`.

Load it offline from its folder:

    import evaluate
    from depth_anything_hf.evaluation import EVALUATE_MODULE_PATH
    depth_metrics = evaluate.load(str(EVALUATE_MODULE_PATH))
    depth_metrics.compute(predictions=[disparity], references=[gt_depth],
                          prediction_type="disparity", protocol="disparity", dataset="nyu")
"""

import datasets
import evaluate
import torch

from depth_anything_hf.evaluation.metrics import MetricsAverager, compute_metrics
from depth_anything_hf.evaluation.presets import get_preset

_DESCRIPTION = """
Per-image depth metrics (abs_rel, sq_rel, rmse, rmse_log, log10, silog, delta1-3) averaged over
images, under an explicitly named protocol: "disparity" (least-squares scale and shift of the
predicted disparity onto 1/depth, metrics in disparity space: the Depth Anything authors'
zero-shot protocol), "midas" (same alignment, clamped at 1/depth_cap, inverted, metrics in depth
space), "metric" (no alignment) or "median" (median scaling of depth predictions). The same code
as `depth_anything_hf.evaluation.compute_metrics`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of [H, W] predictions (disparity for relative models, metres for metric ones).
    references: list of [H, W] ground-truth depth maps in metres (0, negative or non-finite = invalid).
    prediction_type: "disparity" or "depth" (required).
    protocol: "disparity", "midas", "metric" or "median" (required).
    valid_masks: optional list of [H, W] boolean masks (passed to `compute`, not `add_batch`).
    dataset: optional preset name ("nyu", "kitti", ...) supplying min_depth, depth_cap and crop.
    depth_cap, min_depth, crop: explicit settings; they override the preset's.
Returns:
    the per-image averaged metrics plus "num_images", "num_skipped" and "protocol".
Examples:
    >>> depth_metrics = evaluate.load("path/to/depth_metrics")
    >>> depth_metrics.compute(predictions=[[[1.0] * 4] * 4], references=[[[1.0] * 4] * 4],
    ...                       prediction_type="depth", protocol="metric")["abs_rel"]
    0.0
"""

_CITATION = """
@inproceedings{depthanything,
  title={Depth Anything: Unleashing the Power of Large-Scale Unlabeled Data},
  author={Yang, Lihe and Kang, Bingyi and Huang, Zilong and Xu, Xiaogang and Feng, Jiashi and Zhao, Hengshuang},
  booktitle={CVPR},
  year={2024}
}
"""

_DEPTH_MAP = datasets.List(datasets.List(datasets.Value("float32")))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DepthMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _DEPTH_MAP, "references": _DEPTH_MAP}),
            reference_urls=["https://arxiv.org/abs/2401.10891"],
        )

    def _compute(
        self,
        predictions,
        references,
        prediction_type=None,
        protocol=None,
        valid_masks=None,
        dataset=None,
        depth_cap=None,
        min_depth=None,
        crop=None,
    ):
        if dataset is not None:
            preset = get_preset(dataset)
            depth_cap = preset.max_depth if depth_cap is None else depth_cap
            min_depth = preset.min_depth if min_depth is None else min_depth
            crop = preset.crop if crop is None else crop
        if valid_masks is not None and len(valid_masks) != len(references):
            raise ValueError(f"valid_masks has {len(valid_masks)} entries for {len(references)} references")
        averager = MetricsAverager()
        for index, (prediction, reference) in enumerate(zip(predictions, references)):
            valid_mask = None if valid_masks is None else torch.as_tensor(valid_masks[index], dtype=torch.bool)
            averager.update(
                compute_metrics(
                    torch.as_tensor(prediction, dtype=torch.float32),
                    torch.as_tensor(reference, dtype=torch.float32),
                    valid_mask,
                    prediction_type=prediction_type,
                    protocol=protocol,
                    depth_cap=depth_cap,
                    min_depth=min_depth,
                    crop=crop,
                )
            )
        summary = averager.compute()
        return {**summary["metrics"], "num_images": summary["num_images"], "num_skipped": summary["num_skipped"], "protocol": protocol}
