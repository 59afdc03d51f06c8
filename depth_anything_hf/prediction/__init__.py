"""`depth-anything predict`: depth maps, 16-bit PNGs, raw arrays and point clouds of images, folders and videos."""

from .inputs import expand_inputs
from .outputs import OUTPUT_KINDS, colorize, load_png16, quantity_of, save_png16, write_ply
from .pointcloud import (
    Intrinsics,
    disparity_to_depth,
    fit_disparity_to_points,
    intrinsics_from_fov,
    project,
    unproject,
)
from .runner import predict_inputs

__all__ = [
    "OUTPUT_KINDS",
    "Intrinsics",
    "colorize",
    "disparity_to_depth",
    "expand_inputs",
    "fit_disparity_to_points",
    "intrinsics_from_fov",
    "load_png16",
    "predict_inputs",
    "project",
    "quantity_of",
    "save_png16",
    "unproject",
    "write_ply",
]
