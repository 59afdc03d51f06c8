"""Point clouds from depth maps: pinhole intrinsics, back-projection, and the conversion a relative model needs.

Camera frame as OpenCV's: x right, y down, z forward (the depth), pixel centres at integer coordinates
(u = column, v = row). A relative model's output is disparity up to an unknown scale and shift, so it becomes
depth only through an explicit conversion, `1 / depth = scale * disparity + shift`: given by the user, or
fitted by least squares to sparse metric points (the zero-shot alignment of docs/method.md section 5).
"""

import csv
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..evaluation.alignment import fit_scale_and_shift


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of the image the depth map has (the original resolution)."""

    fx: float
    fy: float
    cx: float
    cy: float


def intrinsics_from_fov(width: int, height: int, horizontal_fov_degrees: float) -> Intrinsics:
    """Square pixels, principal point at the image centre, and the horizontal field of view spanning the image's
    full width: fx = fy = (width / 2) / tan(hfov / 2) (90 degrees over 200 px gives 100), cx = (width - 1) / 2."""
    if not 0 < horizontal_fov_degrees < 180:
        raise ValueError(f"the horizontal field of view must lie in (0, 180) degrees, got {horizontal_fov_degrees}")
    focal = (width / 2) / math.tan(math.radians(horizontal_fov_degrees) / 2)
    return Intrinsics(fx=focal, fy=focal, cx=(width - 1) / 2, cy=(height - 1) / 2)


def unproject(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """[H, W, 3] camera-frame points (x, y, z) of a depth map [H, W] (z = depth)."""
    rows, columns = np.indices(depth.shape, dtype=np.float64)
    x = (columns - intrinsics.cx) / intrinsics.fx * depth
    y = (rows - intrinsics.cy) / intrinsics.fy * depth
    return np.stack([x, y, depth.astype(np.float64)], axis=-1)


def project(points: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (u, v) of camera-frame points [..., 3]: the inverse of `unproject`."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return intrinsics.fx * x / z + intrinsics.cx, intrinsics.fy * y / z + intrinsics.cy


def disparity_to_depth(disparity: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Depth = 1 / (scale * disparity + shift); NaN where that inverse depth is not positive (at or beyond
    infinity, e.g. sky), so that such pixels drop out of the point cloud instead of landing behind the camera."""
    inverse_depth = scale * disparity.astype(np.float64) + shift
    depth = np.full(disparity.shape, np.nan)
    np.divide(1.0, inverse_depth, out=depth, where=inverse_depth > 0)
    return depth


def read_alignment_points(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Sparse metric points per image from a CSV with the header `image,x,y,depth` (image: the file name; x, y:
    pixel column and row in the original image; depth: metres). Returns {file name: float [N, 3]}."""
    points: dict[str, list] = {}
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames is None or not {"image", "x", "y", "depth"} <= set(reader.fieldnames):
            raise ValueError(f"{path} must be a CSV with the columns image,x,y,depth; got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                values = [float(row["x"]), float(row["y"]), float(row["depth"])]
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path} line {line}: x, y and depth must be numbers, got {row}") from error
            if not values[2] > 0:
                raise ValueError(f"{path} line {line}: depth must be positive metres, got {row['depth']}")
            points.setdefault(row["image"], []).append(values)
    return {image: np.asarray(rows, dtype=np.float64) for image, rows in points.items()}


def fit_disparity_to_points(disparity: np.ndarray, points: np.ndarray) -> tuple[float, float]:
    """(scale, shift) with `scale * disparity + shift` closest (least squares) to 1 / depth at the given
    points [N, 3] of (x, y, depth in metres), sampled at the nearest pixel. Needs two points or more that do
    not share one disparity value."""
    height, width = disparity.shape
    columns = np.rint(points[:, 0]).astype(np.int64)
    rows = np.rint(points[:, 1]).astype(np.int64)
    outside = (columns < 0) | (columns >= width) | (rows < 0) | (rows >= height)
    if outside.any():
        raise ValueError(f"alignment points {points[outside, :2].tolist()} lie outside the {width}x{height} image")
    sampled = torch.from_numpy(disparity[rows, columns].astype(np.float64))
    if len(points) < 2 or torch.unique(sampled).numel() < 2:
        raise ValueError(
            f"fitting a scale and shift needs at least 2 points at different predicted disparities, got {len(points)}"
        )
    scale, shift = fit_scale_and_shift(sampled, torch.from_numpy(1.0 / points[:, 2]))
    return float(scale), float(shift)
