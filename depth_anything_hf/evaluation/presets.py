"""Evaluation settings per dataset: depth range, crop and on-disk format.

The depth ranges and crops are those of the evaluation code released with Depth Anything's
metric models (ZoeDepth's `DATASETS_CONFIG`: NYU 1e-3..10 m with the Eigen crop, KITTI 1e-3..80 m
with the Garg crop, ...) and, for the zero-shot sets that code does not cover (Sintel, ETH3D), the
72 m cap of the MiDaS zero-shot evaluation. A preset is the dataset's truth; the protocol
(alignment) is chosen separately, so one preset serves relative and metric models alike.
"""

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Crop:
    """An evaluation crop given as fractions of the image height and width.

    The bounds are `int(fraction * size)` (truncation, as the reference code computes the Garg
    crop) with a 1e-6 guard so that fractions such as 471/480 land on the intended pixel despite
    floating-point representation.
    """

    name: str
    top: float
    bottom: float
    left: float
    right: float

    def __post_init__(self):
        if not (0 <= self.top < self.bottom <= 1 and 0 <= self.left < self.right <= 1):
            raise ValueError(
                f"Crop {self.name!r} needs 0 <= top < bottom <= 1 and 0 <= left < right <= 1, got "
                f"top={self.top}, bottom={self.bottom}, left={self.left}, right={self.right}"
            )

    def pixel_bounds(self, height: int, width: int) -> tuple[int, int, int, int]:
        """`(row_start, row_stop, col_start, col_stop)` of the crop for an image of this size."""
        return tuple(
            math.floor(fraction * size + 1e-6)
            for fraction, size in ((self.top, height), (self.bottom, height), (self.left, width), (self.right, width))
        )

    def mask(self, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Boolean [height, width] mask that is True inside the crop."""
        row_start, row_stop, col_start, col_stop = self.pixel_bounds(height, width)
        crop_mask = torch.zeros(height, width, dtype=torch.bool, device=device)
        crop_mask[row_start:row_stop, col_start:col_stop] = True
        return crop_mask


# Eigen et al.'s NYU crop, rows 45:471 and columns 41:601 of the 480x640 frame (scaled to other sizes).
EIGEN_CROP = Crop("eigen", top=45 / 480, bottom=471 / 480, left=41 / 640, right=601 / 640)
# Garg et al.'s KITTI crop.
GARG_CROP = Crop("garg", top=0.40810811, bottom=0.99189189, left=0.03594771, right=0.96405229)
CROPS = {crop.name: crop for crop in (EIGEN_CROP, GARG_CROP)}


def resolve_crop(crop: "Crop | str | None") -> Crop | None:
    """A `Crop` from a crop, a crop name (`"eigen"`, `"garg"`) or None."""
    if crop is None or isinstance(crop, Crop):
        return crop
    if isinstance(crop, str) and crop in CROPS:
        return CROPS[crop]
    raise ValueError(f"crop must be None, a Crop or one of {sorted(CROPS)}, got {crop!r}")


@dataclass(frozen=True)
class DatasetPreset:
    """How one dataset is evaluated.

    Attributes:
        name: preset name used on the command line (`--dataset NAME=PATH`).
        title: the dataset's usual name, for tables and model cards.
        data_format: the `load_labeled_dataset` format that reads the dataset ("datasets": a copy
            already converted to the labeled schema, local files or a Hub name).
        min_depth: ground truth at or below this depth (metres) is ignored.
        max_depth: ground truth at or above this depth is ignored; also the depth cap of the
            "midas" protocol and the upper clamp of the "metric" protocol.
        crop: evaluation crop or None.
        description: split and provenance of the settings.
    """

    name: str
    title: str
    data_format: str
    min_depth: float
    max_depth: float
    crop: Crop | None
    description: str

    def to_dict(self) -> dict:
        settings = asdict(self)
        settings["crop"] = self.crop.name if self.crop is not None else None
        return settings


PRESETS = {
    preset.name: preset
    for preset in (
        DatasetPreset("nyu", "NYU Depth v2", "nyu_depth_v2", 1e-3, 10.0, EIGEN_CROP, "Eigen test split (654 images)"),
        DatasetPreset("kitti", "KITTI", "kitti", 1e-3, 80.0, GARG_CROP, "Eigen test split, annotated depth"),
        DatasetPreset("sintel", "Sintel", "sintel", 1e-3, 72.0, None, "MPI Sintel training set; MiDaS' 72 m cap"),
        DatasetPreset("ddad", "DDAD", "datasets", 1e-3, 80.0, GARG_CROP, "validation set, LiDAR ground truth"),
        DatasetPreset("eth3d", "ETH3D", "eth3d", 1e-3, 72.0, None, "high-res multi-view training set; MiDaS' 72 m cap"),
        DatasetPreset("diode_indoor", "DIODE Indoor", "diode", 1e-3, 10.0, EIGEN_CROP, "validation split, indoors"),
        DatasetPreset("diode_outdoor", "DIODE Outdoor", "diode", 1e-3, 80.0, GARG_CROP, "validation split, outdoor"),
        DatasetPreset("ibims", "iBims-1", "datasets", 1e-3, 10.0, EIGEN_CROP, "core set"),
        DatasetPreset("sunrgbd", "SUN RGB-D", "datasets", 1e-3, 8.0, EIGEN_CROP, "test set"),
        DatasetPreset("hypersim", "Hypersim", "hypersim", 1e-3, 80.0, EIGEN_CROP, "test split"),
        DatasetPreset("vkitti", "Virtual KITTI 2", "vkitti2", 1e-3, 80.0, GARG_CROP, "all scenes"),
        DatasetPreset("rgbd_folder", "RGB-D folder", "folder", 1e-3, 80.0, None, "this project's RGB-D folder format"),
        DatasetPreset(
            "middlebury", "Middlebury 2014", "middlebury", 1e-3, 10.0, None, "'Motorcycle' frame (PATH 'skimage')"
        ),
    )
}


def get_preset(name: str) -> DatasetPreset:
    """The preset called `name`; a ValueError lists the known names otherwise."""
    if name not in PRESETS:
        raise ValueError(f"Unknown dataset preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
