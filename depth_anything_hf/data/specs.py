"""The one grammar of `--dataset`, in the training scripts and in `depth-anything eval`:
`[KIND=]NAME_OR_PATH[:WEIGHT]`.

KIND says how the dataset is read: a labeled format (`LABELED_FORMATS`) for training, detected when left out;
an evaluation preset (`depth_anything_hf.evaluation.PRESETS`, which names the format, depth range and crop)
for evaluation, where it is required. WEIGHT is the dataset's share of a training mix (default 1).
"""

import argparse
import math
from dataclasses import dataclass

GRAMMAR = "[KIND=]NAME_OR_PATH[:WEIGHT]"


@dataclass(frozen=True)
class DatasetSpec:
    """One `--dataset` value: `path` (a folder, file or Hub name), `weight` (> 0) and `kind` (None: detect)."""

    path: str
    weight: float = 1.0
    kind: str | None = None

    def __str__(self) -> str:
        return f"{self.kind + '=' if self.kind else ''}{self.path}:{self.weight:g}"


def parse_dataset_spec(value: str) -> DatasetSpec:
    """Parse `[KIND=]NAME_OR_PATH[:WEIGHT]`, e.g. `data/nyu:2`, `kitti=/data/kitti:0.5` or `user/dataset`.

    KIND is a Python identifier (`nyu_depth_v2`, `rgbd_folder`), so an `=` inside a path is no prefix; a
    colon followed by something that is not a number belongs to the name (`C:/data`).
    """
    if not isinstance(value, str) or not value:
        raise argparse.ArgumentTypeError(f"expected {GRAMMAR}, got {value!r}")
    kind, separator, rest = value.partition("=")
    if not separator or not kind.isidentifier():
        kind, rest = None, value
    path, weight = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        try:
            weight = float(tail)
        except ValueError:
            pass  # a colon that is part of the name, not a weight
        else:
            path = head
    if not path or not math.isfinite(weight) or weight <= 0:
        raise argparse.ArgumentTypeError(f"expected {GRAMMAR} with a finite weight > 0, got {value!r}")
    return DatasetSpec(path=path, weight=weight, kind=kind)
