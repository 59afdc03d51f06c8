"""Markdown tables of evaluation results (printed by the runner, embedded in model cards)."""

from .metrics import HIGHER_IS_BETTER, METRIC_NAMES

METRIC_TITLES = {
    "abs_rel": "AbsRel",
    "sq_rel": "SqRel",
    "rmse": "RMSE",
    "rmse_log": "RMSE log",
    "log10": "log10",
    "silog": "SILog",
    "delta1": "δ1",
    "delta2": "δ2",
    "delta3": "δ3",
}

PROTOCOL_NOTES = {
    "disparity": "`disparity` = least-squares scale and shift of the predicted disparity onto the ground-truth "
    "disparity (1/depth) per image, metrics in disparity space (the Depth Anything authors' zero-shot protocol)",
    "midas": "`midas` = the same alignment, aligned disparity clamped to >= 1/depth_cap and inverted, metrics in "
    "depth space (the MiDaS protocol)",
    "metric": "`metric` = no alignment, predicted depth clamped to the dataset's depth range",
    "median": "`median` = depth scaled by median(ground truth) / median(prediction) per image",
}


def metric_title(name: str) -> str:
    """Column title with the direction of improvement, e.g. `AbsRel ↓`."""
    return f"{METRIC_TITLES[name]} {'↑' if name in HIGHER_IS_BETTER else '↓'}"


def results_table(evaluations: list[dict]) -> str:
    """A markdown table with one row per (dataset, protocol) evaluation.

    Args:
        evaluations: dicts with `title` (or `dataset`), `protocol`, `metrics` ({name: value}) and
            optionally `num_images` / `num_skipped` (as written to results.json).

    Only the metrics that at least one row has become columns, in `METRIC_NAMES` order; a row without a
    metric shows "—".
    """
    if not evaluations:
        raise ValueError("results_table needs at least one evaluation")
    columns = [name for name in METRIC_NAMES if any(name in row["metrics"] for row in evaluations)]
    with_counts = any(row.get("num_images") is not None for row in evaluations)
    header = ["Dataset", "Protocol"] + (["Images (skipped)"] if with_counts else []) + [metric_title(c) for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in evaluations:
        cells = [row.get("title", row.get("dataset")), f"`{row['protocol']}`"]
        if with_counts:
            cells.append(f"{row['num_images']} ({row['num_skipped']})" if row.get("num_images") is not None else "—")
        cells += [f"{row['metrics'][name]:.3f}" if name in row["metrics"] else "—" for name in columns]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def protocol_notes(evaluations: list[dict]) -> str:
    """One sentence per protocol used in `evaluations`, in `PROTOCOL_NOTES` order."""
    used = {row["protocol"] for row in evaluations}
    return "; ".join(note for protocol, note in PROTOCOL_NOTES.items() if protocol in used) + "."
