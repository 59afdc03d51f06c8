"""The one labeled-sample schema that every RGB-D dataset format is decoded into.

A row:
- `image`: the RGB image (`datasets.Image`; the original file bytes when decoded from a file).
- `depth`: float32 [H, W], metres, or disparity where the dataset only has disparity;
  0 where not valid.
- `depth_kind`: "depth" or "disparity", saying which of the two `depth` holds.
- `valid_mask`: bool [H, W], True where `depth` is a measurement (finite, > 0 for depth,
  >= 0 for disparity).
- `sky_mask`: bool [H, W] where the dataset marks sky, else None.
- `fx`, `fy`, `cx`, `cy`: pinhole intrinsics in pixels of this image, None when unknown.
- `dataset`: the dataset's name; `id`: a stable id of the sample within it.

H and W are the size of the image as `to_rgb` returns it (EXIF orientation applied). The RGB and its maps are
never turned apart: depth and mask files carry no orientation of their own, so they are read on the stored pixel
grid of the image file, and `make_labeled_sample` turns them (and the intrinsics) upright with the image's EXIF
orientation, as `to_rgb`, the image processor and `datasets.Image` turn the image.
"""

import io
import math

import numpy as np
import torch
from datasets import Features, List, Value
from datasets import Image as ImageFeature
from PIL import Image

from ..image_processing_depth_anything_hf import DEFAULT_MAX_ASPECT_RATIO
from .images import to_rgb, upright_intrinsics, upright_pixel_indices, upright_transpose

DEPTH_KINDS = ("depth", "disparity")
INTRINSIC_NAMES = ("fx", "fy", "cx", "cy")

LABELED_FEATURES = Features(
    {
        "image": ImageFeature(),
        "depth": List(List(Value("float32"))),
        "depth_kind": Value("string"),
        "valid_mask": List(List(Value("bool"))),
        "sky_mask": List(List(Value("bool"))),
        "fx": Value("float64"),
        "fy": Value("float64"),
        "cx": Value("float64"),
        "cy": Value("float64"),
        "dataset": Value("string"),
        "id": Value("string"),
    }
)


def _stored_size_and_transpose(image) -> tuple[tuple[int, int], Image.Transpose | None]:
    """(height, width) of `image` (encoded bytes or a uint8 [H, W, 3] array) as stored, and the transpose that
    `to_rgb` applies for its EXIF orientation (None: stored upright)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image array must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
        return (image.shape[0], image.shape[1]), None
    if not isinstance(image, bytes):
        raise TypeError(f"image must be the bytes of an image file or a uint8 [H, W, 3] array, got {type(image).__name__}")
    with Image.open(io.BytesIO(image)) as encoded:
        # to_rgb decodes every pixel, so a truncated file fails here, while the dataset is built.
        to_rgb(encoded)
        width, height = encoded.size
        return (height, width), upright_transpose(encoded)


def _bool_map(name: str, mask, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != shape:
        raise ValueError(f"{name} must be a bool array of shape {shape} like depth, got {mask.dtype} {mask.shape}")
    return mask


def _intrinsic(name: str, value) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or (name in ("fx", "fy") and value <= 0):
        raise ValueError(f"intrinsic {name} must be finite{' and > 0' if name in ('fx', 'fy') else ''}, got {value}")
    return value


def make_labeled_sample(
    *,
    image,
    depth,
    depth_kind: str,
    valid_mask,
    dataset: str,
    sample_id: str,
    sky_mask=None,
    fx: float | None = None,
    fy: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
) -> dict:
    """Check one sample and return it as a row of `LABELED_FEATURES`.

    `image` is the bytes of an image file (kept as they are, no re-encoding) or a uint8
    [H, W, 3] RGB array. The image is decoded once here: a file that cannot be decoded, or a
    depth map whose shape is not the image's stored grid, raises ValueError/OSError (the format
    decoders skip such samples), as does an image more elongated than the processor's
    `DEFAULT_MAX_ASPECT_RATIO` (10:1). `depth`, the masks and the intrinsics are given on the image's
    stored grid and turned upright here with the image's EXIF orientation, as readers turn the
    image. `valid_mask` is narrowed to finite depth (> 0; disparity >= 0) and `depth` is set to 0
    outside it, so consumers never meet inf or NaN.
    """
    if depth_kind not in DEPTH_KINDS:
        raise ValueError(f"depth_kind must be one of {DEPTH_KINDS}, got {depth_kind!r}")
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth must be a 2-D float array, got {depth.dtype} {depth.shape}")
    image_shape, transpose = _stored_size_and_transpose(image)
    if depth.shape != image_shape:
        raise ValueError(
            f"depth of shape {depth.shape} does not match the image of size {image_shape} (H, W, as stored in the "
            "file, before its EXIF orientation)"
        )
    aspect_ratio = max(image_shape) / min(image_shape)
    if aspect_ratio > DEFAULT_MAX_ASPECT_RATIO:
        # The training geometry scales the short side to the resolution: one side would become that many times it.
        raise ValueError(
            f"the image of {image_shape[0]}x{image_shape[1]} pixels is more elongated ({aspect_ratio:.1f}:1) than "
            f"{DEFAULT_MAX_ASPECT_RATIO:g}:1, the bound of the image processor"
        )
    valid_mask = _bool_map("valid_mask", valid_mask, depth.shape)
    if sky_mask is not None:
        sky_mask = _bool_map("sky_mask", sky_mask, depth.shape)
    if transpose is not None:
        indices = upright_pixel_indices(*image_shape, transpose)
        depth, valid_mask = depth.reshape(-1)[indices], valid_mask.reshape(-1)[indices]
        sky_mask = None if sky_mask is None else sky_mask.reshape(-1)[indices]
        fx, fy, cx, cy = upright_intrinsics(*image_shape, transpose, fx, fy, cx, cy)
    with np.errstate(invalid="ignore"):
        measured = depth > 0 if depth_kind == "depth" else depth >= 0
    valid_mask = valid_mask & np.isfinite(depth) & measured
    depth = np.where(valid_mask, depth, 0).astype(np.float32, copy=False)
    return {
        "image": {"bytes": image, "path": None} if isinstance(image, bytes) else image,
        "depth": depth,
        "depth_kind": depth_kind,
        "valid_mask": valid_mask,
        "sky_mask": sky_mask,
        "fx": _intrinsic("fx", fx),
        "fy": _intrinsic("fy", fy),
        "cx": _intrinsic("cx", cx),
        "cy": _intrinsic("cy", cy),
        "dataset": dataset,
        "id": sample_id,
    }


def _image_tensor(image) -> torch.Tensor:
    """float32 [3, H, W] in [0, 1] from a PIL image, a uint8 [H, W, 3] array or an Image-feature dict."""
    if isinstance(image, dict):
        image = ImageFeature().decode_example(image)
    if isinstance(image, Image.Image):
        image = to_rgb(image)
    elif not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise TypeError(f"sample['image'] must be a PIL image or a uint8 [H, W, 3] array, got {type(image).__name__}")
    # In NumPy, which runs on the calling thread: torch's intra-op threads stall while the dataset's reader
    # threads hold the cores (3-10x slower per image in a training stream, measured). Same values as torch's division.
    channels_first = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
    return torch.from_numpy(np.divide(channels_first, np.float32(255.0), dtype=np.float32))


def sample_to_tensors(sample: dict) -> dict:
    """Turn one decoded labeled sample into tensors.

    Returns `image` float32 [3, H, W] RGB in [0, 1], `depth` float32 [H, W], `valid_mask` and
    `sky_mask` bool [H, W] (all False where the dataset marks no sky), `intrinsics` float32 [4]
    (fx, fy, cx, cy; NaN where unknown), and `depth_kind`, `dataset`, `id` unchanged; every
    field has a fixed type, so `torch.utils.data.default_collate` can batch them.
    """
    missing = [name for name in LABELED_FEATURES if name not in sample]
    if missing:
        raise ValueError(f"sample is missing the schema fields {missing}")
    image = _image_tensor(sample["image"])
    depth = torch.from_numpy(np.array(sample["depth"], dtype=np.float32))
    if depth.shape != image.shape[1:]:
        raise ValueError(f"sample {sample['id']!r}: depth {tuple(depth.shape)} does not match image {tuple(image.shape[1:])}")
    valid_mask = torch.from_numpy(np.array(sample["valid_mask"], dtype=bool))
    if sample["sky_mask"] is None:
        sky_mask = torch.zeros_like(valid_mask)
    else:
        sky_mask = torch.from_numpy(np.array(sample["sky_mask"], dtype=bool))
    intrinsics = torch.tensor(
        [math.nan if sample[name] is None else sample[name] for name in INTRINSIC_NAMES], dtype=torch.float32
    )
    return {
        "image": image,
        "depth": depth,
        "valid_mask": valid_mask,
        "sky_mask": sky_mask,
        "intrinsics": intrinsics,
        "depth_kind": sample["depth_kind"],
        "dataset": sample["dataset"],
        "id": sample["id"],
    }
