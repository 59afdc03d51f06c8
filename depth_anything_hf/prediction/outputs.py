"""What `depth-anything predict` writes: colour and grayscale maps, side-by-side views, 16-bit PNGs, PLY clouds.

Every output names its quantity: relative models predict DISPARITY (affine-invariant: larger = nearer, with an
unknown scale and shift; not metres), metric models DEPTH in metres. File names carry `_disparity` or
`_depth_m`, PNGs carry it in their text chunks, PLY files in a header comment.
"""

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

OUTPUT_KINDS = ("colormap", "grayscale", "side_by_side", "png16", "npy", "ply")
COLORMAP = "Spectral_r"  # as the official run.py / run_video.py / app.py
# Width of the white margin between the image and its depth map in side-by-side views (as the official code).
SIDE_BY_SIDE_MARGIN = 50
_QUANTITIES = {
    "relative": {
        "quantity": "disparity",
        "unit": "relative: affine-invariant, larger = nearer, unknown scale and shift; not metres",
        "file_tag": "disparity",
    },
    "metric": {"quantity": "depth", "unit": "metre", "file_tag": "depth_m"},
}
_SIXTEEN_BIT_MAX = 65535


def quantity_of(depth_estimation_type: str) -> dict:
    """`{"quantity", "unit", "file_tag"}` of a model's `config.depth_estimation_type`."""
    if depth_estimation_type not in _QUANTITIES:
        raise ValueError(f"depth_estimation_type must be one of {tuple(_QUANTITIES)}, got {depth_estimation_type!r}")
    return dict(_QUANTITIES[depth_estimation_type])


def nearness(prediction: np.ndarray, quantity: str, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """`prediction` mapped linearly to [0, 1] with 1 = nearest: disparity as is, depth reversed. `value_range`
    (min, max) defaults to the map's own; a video passes its clip-wide range."""
    low, high = value_range if value_range is not None else (float(prediction.min()), float(prediction.max()))
    scaled = (prediction - low) / (high - low) if high > low else np.zeros_like(prediction)
    scaled = np.clip(scaled, 0.0, 1.0)
    return scaled if quantity == "disparity" else 1.0 - scaled


def colorize(prediction: np.ndarray, quantity: str, value_range=None) -> np.ndarray:
    """uint8 [H, W, 3] colour map (matplotlib's Spectral_r: red = near, blue = far), as the official scripts."""
    try:
        from matplotlib import colormaps
    except ImportError as error:
        raise ImportError("colour maps need matplotlib: pip install 'depth_anything_hf[predict]'") from error

    levels = (nearness(prediction, quantity, value_range) * 255).astype(np.uint8)
    return (colormaps[COLORMAP](levels)[..., :3] * 255).astype(np.uint8)


def grayscale(prediction: np.ndarray, quantity: str, value_range=None) -> np.ndarray:
    """uint8 [H, W, 3] gray map, white = near."""
    levels = (nearness(prediction, quantity, value_range) * 255).astype(np.uint8)
    return np.repeat(levels[..., None], 3, axis=-1)


def side_by_side(image: np.ndarray, depth_view: np.ndarray) -> np.ndarray:
    """The input image and its depth view next to each other, with a white margin."""
    margin = np.full((image.shape[0], SIDE_BY_SIDE_MARGIN, 3), 255, dtype=np.uint8)
    return np.concatenate([image, margin, depth_view], axis=1)


def _text_chunks(metadata: dict) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_text(key, str(value))
    return info


def save_png(path: str | os.PathLike, view: np.ndarray, metadata: dict) -> None:
    """An 8-bit view with `metadata` (quantity, unit, source) in its PNG text chunks."""
    Image.fromarray(view).save(path, format="PNG", pnginfo=_text_chunks(metadata))


def save_png16(path: str | os.PathLike, prediction: np.ndarray, metadata: dict) -> dict:
    """`prediction` quantised to 16 bits over its own [min, max]; writes the PNG (with `min`, `max` and the
    quantity in its text chunks) and a sidecar `.json` holding the same, and returns that metadata.

    `load_png16` inverts it: value = min + pixel / 65535 * (max - min), within (max - min) / 65535 / 2.
    """
    low, high = float(prediction.min()), float(prediction.max())
    scale = (high - low) / _SIXTEEN_BIT_MAX
    quantised = np.round((prediction - low) / scale) if scale > 0 else np.zeros_like(prediction)
    metadata = {
        **metadata,
        "min": repr(low),
        "max": repr(high),
        "dequantize": "value = min + pixel / 65535 * (max - min)",
    }
    Image.fromarray(quantised.astype(np.uint16)).save(path, format="PNG", pnginfo=_text_chunks(metadata))
    sidecar = {**metadata, "min": low, "max": high}
    Path(path).with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return sidecar


def load_png16(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """The float32 values of a PNG written by `save_png16`, dequantised with the min/max of its text chunks,
    and its metadata."""
    with Image.open(path) as image:
        metadata = dict(image.text)
        if "min" not in metadata or "max" not in metadata:
            raise ValueError(f"{path} has no min/max text chunks: it was not written by depth-anything predict")
        pixels = np.asarray(image).astype(np.float64)
    low, high = float(metadata["min"]), float(metadata["max"])
    return (low + pixels / _SIXTEEN_BIT_MAX * (high - low)).astype(np.float32), metadata


def write_ply(path: str | os.PathLike, points: np.ndarray, colors: np.ndarray, comments: list[str] = ()) -> None:
    """A binary little-endian PLY of `points` float [N, 3] (metres) coloured by `colors` uint8 [N, 3]."""
    vertices = np.empty(
        len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    for axis, name in enumerate("xyz"):
        vertices[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = colors[:, channel]
    header = ["ply", "format binary_little_endian 1.0"]
    header += [f"comment {comment}" for comment in comments]
    header += [f"element vertex {len(points)}"]
    header += [f"property float {name}" for name in "xyz"]
    header += [f"property uchar {name}" for name in ("red", "green", "blue")]
    header += ["end_header"]
    with open(path, "wb") as file:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        file.write(vertices.tobytes())
