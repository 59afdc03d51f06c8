"""One decoder per on-disk RGB-D dataset format, all producing `LABELED_FEATURES` rows.

`load_labeled_dataset(path, format=...)` lists a directory's samples (cheap, no decoding) as
records, then builds a `datasets.IterableDataset` (streaming) or `datasets.Dataset` with
`from_generator`, decoding each record with the format's decoder. The records are a list in
`gen_kwargs`, so `datasets` shards them across processes, DataLoader workers and nodes; a
record that fails to decode is skipped with a counted warning (see `skipping.py`).

Depth conventions per format (all converted to metres, invalid pixels masked):
- folder (this project's): `metadata.jsonl` + 16-bit PNG in `depth_unit` (millimetres), 0 invalid, or sky
  where the dataset says so (`"zero_depth_is_sky": true` in its rows, or `zero_depth_is_sky=True`).
- nyu_depth_v2: 16-bit PNG in mm, 0 invalid (`rgb_N.jpg` + `sync_depth_N.png`), or the
  labeled `.mat` (HDF5: `images` [N, 3, W, H] uint8, `depths` [N, W, H] float32 metres).
- kitti: 16-bit PNG / 256 metres, 0 invalid.
- diode: `*_depth.npy` [H, W, 1] metres + `*_depth_mask.npy`.
- sintel: `.dpt` (float 202021.25 tag, int32 width, height, float32 data) metres.
- eth3d: raw little-endian float32 [H, W] (4032 x 6048 by default), inf or 0 invalid.
- middlebury: PFM disparity + `calib.txt`, Z = baseline * f / (d + doffs), inf invalid.
- hypersim: HDF5 ray distance (metres from the camera centre) converted to planar depth.
- vkitti2: 16-bit PNG in cm, valid up to 80 m, 65535 (655.35 m) is sky.
- datasets: a dataset already in the schema (Hub name or local data files), via `load_dataset`.
"""

import functools
import json
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

from . import schema
from .caching import files_fingerprint
from .schema import INTRINSIC_NAMES, LABELED_FEATURES, make_labeled_sample
from .skipping import decodable_samples
from .sources import load_named_dataset

# NYU Depth V2 RGB camera (camera_params.m of the NYU toolbox), for 640x480 frames.
NYU_INTRINSICS = {"fx": 518.85790117450188, "fy": 519.46961112127485, "cx": 325.58244941119034, "cy": 253.73616633400465}
SINTEL_TAG = 202021.25
ETH3D_HEIGHT, ETH3D_WIDTH = 4032, 6048
# Hypersim renders 1024x768 with a 60 degree horizontal field of view: f = 512 / tan(30 deg).
HYPERSIM_FOCAL_LENGTH, HYPERSIM_WIDTH = 886.81, 1024
VKITTI2_MAX_DEPTH = 80.0
VKITTI2_SKY_CENTIMETRES = 65535
# scikit-image's Middlebury 2014 "Motorcycle", downsampled 4x (its docstring gives the calibration).
MOTORCYCLE_CALIBRATION = {"focal_length": 994.978, "baseline": 0.193001, "doffs": 31.086, "cx": 311.193, "cy": 254.877}

_DEPTH_UNITS_PER_METRE = {"millimeter": 1000, "centimeter": 100, "meter": 1}


# ----------------------------------------------------------------------------------------
# File readers and unit conversions
# ----------------------------------------------------------------------------------------


def read_uint16_png(path) -> np.ndarray:
    """The raw values of a 16-bit grayscale PNG as uint16 [H, W]."""
    with Image.open(path) as png:
        if png.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"{path}: expected a 16-bit grayscale PNG, got Pillow mode {png.mode!r}")
        values = np.asarray(png)
    if values.min() < 0 or values.max() > 65535:
        raise ValueError(f"{path}: values outside the 16-bit range")
    return values.astype(np.uint16)


def uint16_depth_in_metres(depth_units: np.ndarray, units_per_metre: int) -> np.ndarray:
    """float32 metres of uint16 depth stored in units of 1 / `units_per_metre` m (1000: millimetres, 256: KITTI).

    Divided in float32, at a fraction of the cost of float64: for a whole number of units per metre, each of the
    65536 values rounds to the same float32 as the float64 quotient does (checked for 1000, 100 and 1; exact for
    256)."""
    return np.divide(depth_units, np.float32(units_per_metre), dtype=np.float32)


def read_pfm(path) -> np.ndarray:
    """A PFM image as float32, top row first: [H, W] for "Pf", [H, W, 3] for "PF"."""
    with open(path, "rb") as pfm:
        header = pfm.readline().strip()
        if header not in (b"Pf", b"PF"):
            raise ValueError(f"{path}: not a PFM file (header {header[:8]!r})")
        channels = 3 if header == b"PF" else 1
        width, height = (int(size) for size in pfm.readline().split())
        scale = float(pfm.readline())
        # A negative scale means little-endian samples.
        samples = np.frombuffer(pfm.read(), dtype="<f4" if scale < 0 else ">f4")
    if samples.size != width * height * channels:
        raise ValueError(f"{path}: {samples.size} samples for a {width}x{height}x{channels} PFM")
    # PFM stores rows bottom to top.
    image = samples.reshape(height, width, channels)[::-1].astype(np.float32)
    return image[..., 0] if channels == 1 else image


def read_sintel_depth(path) -> np.ndarray:
    """A Sintel `.dpt` depth map: float32 tag 202021.25, int32 width, int32 height, float32 data."""
    content = Path(path).read_bytes()
    tag, width, height = struct.unpack("<fii", content[:12])
    if tag != SINTEL_TAG:
        raise ValueError(f"{path}: not a Sintel .dpt file (tag {tag})")
    depth = np.frombuffer(content, dtype="<f4", offset=12)
    if width <= 0 or height <= 0 or depth.size != width * height:
        raise ValueError(f"{path}: {depth.size} values for a {width}x{height} depth map")
    return depth.reshape(height, width).astype(np.float32)


def read_sintel_intrinsics(path) -> dict:
    """fx, fy, cx, cy from a Sintel `.cam` file (tag, 3x3 float64 intrinsics, 3x4 extrinsics)."""
    content = Path(path).read_bytes()
    tag = struct.unpack("<f", content[:4])[0]
    if tag != SINTEL_TAG:
        raise ValueError(f"{path}: not a Sintel .cam file (tag {tag})")
    intrinsics = np.frombuffer(content, dtype="<f8", count=9, offset=4).reshape(3, 3)
    return {"fx": intrinsics[0, 0], "fy": intrinsics[1, 1], "cx": intrinsics[0, 2], "cy": intrinsics[1, 2]}


def read_eth3d_depth(path, height: int = ETH3D_HEIGHT, width: int = ETH3D_WIDTH) -> np.ndarray:
    """An ETH3D ground-truth depth file: raw little-endian float32, `height` x `width`, metres."""
    depth = np.fromfile(path, dtype="<f4")
    if depth.size != height * width:
        raise ValueError(f"{path}: {depth.size} values, expected {height}x{width}")
    return depth.reshape(height, width).astype(np.float32)


def read_middlebury_calibration(path) -> dict:
    """focal_length, cx, cy (pixels), doffs (pixels) and baseline (metres) from a Middlebury `calib.txt`."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            entries[key.strip()] = value.strip()
    cam0 = [float(number) for number in re.split(r"[\s;]+", entries["cam0"].strip("[]")) if number]
    if len(cam0) != 9:
        raise ValueError(f"{path}: cam0 must be a 3x3 matrix, got {entries['cam0']!r}")
    return {
        "focal_length": cam0[0],
        "cx": cam0[2],
        "cy": cam0[5],
        "doffs": float(entries["doffs"]),
        "baseline": float(entries["baseline"]) / 1000.0,  # calib.txt gives millimetres
    }


def middlebury_disparity_to_depth(disparity: np.ndarray, focal_length: float, baseline: float, doffs: float) -> np.ndarray:
    """Depth Z = baseline * f / (d + doffs), in the unit of `baseline`.

    doffs is the x-difference of the two principal points; an infinite (unknown) disparity
    gives 0, which the schema marks invalid.
    """
    with np.errstate(divide="ignore"):
        return (baseline * focal_length / (np.asarray(disparity, dtype=np.float64) + doffs)).astype(np.float32)


def hypersim_distance_to_planar_depth(distance: np.ndarray, focal_length: float) -> np.ndarray:
    """Planar depth from Hypersim's ray distance: dist * f / sqrt(f^2 + (u - cx)^2 + (v - cy)^2).

    (u, v) are pixel centres, (cx, cy) = ((W - 1) / 2, (H - 1) / 2) the image centre.
    """
    height, width = distance.shape
    u = np.arange(width) - (width - 1) / 2.0
    v = np.arange(height) - (height - 1) / 2.0
    ray_length = np.sqrt(focal_length**2 + u[None, :] ** 2 + v[:, None] ** 2)
    return (distance * focal_length / ray_length).astype(np.float32)


def _require_h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError("Reading HDF5 files (NYU .mat, Hypersim) needs h5py: pip install h5py") from error
    return h5py


# ----------------------------------------------------------------------------------------
# Per-format sample listing and decoding. A record is a plain dict: "id", "dataset", file
# paths under keys ending in "_path", and the format's options.
# ----------------------------------------------------------------------------------------


def _relative_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _file_intrinsics(reader: Callable, path: str) -> dict:
    """Intrinsics from an optional calibration file: {} when there is none."""
    return reader(path) if os.path.isfile(path) else {}


def _metadata_rows(metadata_path: Path):
    """(line number, row) of each non-blank line of a metadata.jsonl; a ValueError naming the file and line for a
    line that is not a JSON object."""
    for line_number, line in enumerate(metadata_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{metadata_path}:{line_number}: not valid JSON ({error}): {line[:80]!r}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{metadata_path}:{line_number}: expected a JSON object per line, got {line[:80]!r}")
        yield line_number, row


def _find_folder(root: Path, zero_depth_is_sky: bool | None = None) -> list[dict]:
    metadata_path = root / "metadata.jsonl"
    if not metadata_path.is_file():
        raise ValueError(f"{root} has no metadata.jsonl (the project folder format)")
    records = []
    for line_number, row in _metadata_rows(metadata_path):
        if "file_name" not in row or "depth_file_name" not in row:
            raise ValueError(f"{metadata_path}:{line_number}: needs 'file_name' and 'depth_file_name'")
        unit = row.get("depth_unit", "millimeter")
        if unit not in _DEPTH_UNITS_PER_METRE:
            raise ValueError(
                f"{metadata_path}:{line_number}: depth_unit must be one of {list(_DEPTH_UNITS_PER_METRE)}, got {unit!r}"
            )
        if row.get("depth_type", "planar_z") != "planar_z":
            raise ValueError(f"{metadata_path}:{line_number}: only depth_type 'planar_z' is supported, got {row['depth_type']!r}")
        sky = row.get("zero_depth_is_sky", False) if zero_depth_is_sky is None else zero_depth_is_sky
        if type(sky) is not bool:  # 0 and 1 are not true or false here
            raise ValueError(f"{metadata_path}:{line_number}: zero_depth_is_sky must be true or false, got {sky!r}")
        records.append(
            {
                "id": row["file_name"],
                "image_path": str(root / row["file_name"]),
                "depth_path": str(root / row["depth_file_name"]),
                "units_per_metre": _DEPTH_UNITS_PER_METRE[unit],
                "zero_depth_is_sky": sky,
                **{name: row.get(name) for name in INTRINSIC_NAMES},
            }
        )
    return records


def _decode_folder(record: dict) -> dict:
    depth_units = read_uint16_png(record["depth_path"])
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(),
        depth=uint16_depth_in_metres(depth_units, record["units_per_metre"]),
        depth_kind="depth",
        valid_mask=depth_units > 0,
        # Rendered data leaves the environment (sky) at 0; the target sets it to disparity 0 (docs/method.md section 4).
        sky_mask=depth_units == 0 if record["zero_depth_is_sky"] else None,
        dataset=record["dataset"],
        sample_id=record["id"],
        **{name: record[name] for name in INTRINSIC_NAMES},
    )


def _find_nyu(root: Path) -> list[dict]:
    if root.is_file():
        with _require_h5py().File(root, "r") as mat:
            num_samples = mat["images"].shape[0]
        return [{"id": f"{root.name}/{index:05d}", "mat_path": str(root), "index": index} for index in range(num_samples)]
    records = []
    for depth_path in root.rglob("sync_depth_*.png"):
        image_path = depth_path.with_name(depth_path.name.replace("sync_depth_", "rgb_")).with_suffix(".jpg")
        records.append({"id": _relative_id(image_path, root), "image_path": str(image_path), "depth_path": str(depth_path)})
    return records


def _decode_nyu(record: dict) -> dict:
    if "mat_path" in record:
        with _require_h5py().File(record["mat_path"], "r") as mat:
            # MATLAB writes column-major: h5py sees images as [N, 3, W, H], depths as [N, W, H].
            image = np.ascontiguousarray(mat["images"][record["index"]].transpose(2, 1, 0))
            depth = mat["depths"][record["index"]].T
        valid_mask = depth > 0
    else:
        depth_millimetres = read_uint16_png(record["depth_path"])
        image = Path(record["image_path"]).read_bytes()
        depth = uint16_depth_in_metres(depth_millimetres, 1000)
        valid_mask = depth_millimetres > 0
    # The intrinsics hold for NYU's full 640x480 frames only, not for cropped copies.
    intrinsics = NYU_INTRINSICS if depth.shape == (480, 640) else {}
    return make_labeled_sample(
        image=image, depth=depth, depth_kind="depth", valid_mask=valid_mask,
        dataset=record["dataset"], sample_id=record["id"], **intrinsics,
    )


def _find_kitti(root: Path, raw_root=None) -> list[dict]:
    """KITTI depth: the `depth_selection` layout (image/, groundtruth_depth/, intrinsics/) and
    the annotated layout (<drive>/proj_depth/groundtruth/image_0X/) with RGB from the raw
    data under `raw_root` (<date>/<drive>/image_0X/data/), which defaults to `root`."""
    records = []
    for depth_path in root.rglob("groundtruth_depth/*.png"):
        image_name = depth_path.name.replace("_groundtruth_depth_", "_image_", 1)
        image_path = depth_path.parent.parent / "image" / image_name
        records.append(
            {
                "id": _relative_id(image_path, root),
                "image_path": str(image_path),
                "depth_path": str(depth_path),
                "intrinsics_path": str(depth_path.parent.parent / "intrinsics" / Path(image_name).with_suffix(".txt")),
            }
        )
    raw_root = Path(raw_root) if raw_root is not None else root
    for depth_path in root.rglob("proj_depth/groundtruth/image_0[23]/*.png"):
        camera, drive = depth_path.parent.name, depth_path.parents[3].name
        date = drive[:10]
        image_path = raw_root / date / drive / camera / "data" / depth_path.name
        records.append(
            {
                "id": f"{date}/{drive}/{camera}/{depth_path.name}",
                "image_path": str(image_path),
                "depth_path": str(depth_path),
                "calibration_path": str(raw_root / date / "calib_cam_to_cam.txt"),
                "camera": camera,
            }
        )
    return records


def _read_kitti_intrinsics_matrix(path) -> dict:
    k = [float(number) for number in Path(path).read_text().split()]
    return {"fx": k[0], "fy": k[4], "cx": k[2], "cy": k[5]}


def _read_kitti_rectified_intrinsics(path, camera: str) -> dict:
    """fx, fy, cx, cy of P_rect_0X (the rectified projection) in KITTI's calib_cam_to_cam.txt."""
    key = f"P_rect_{camera[-2:]}:"
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            p = [float(number) for number in line[len(key):].split()]
            return {"fx": p[0], "fy": p[5], "cx": p[2], "cy": p[6]}
    raise ValueError(f"{path}: no {key} line")


def _decode_kitti(record: dict) -> dict:
    depth_raw = read_uint16_png(record["depth_path"])
    if "calibration_path" in record:
        intrinsics = _file_intrinsics(
            functools.partial(_read_kitti_rectified_intrinsics, camera=record["camera"]), record["calibration_path"]
        )
    else:
        intrinsics = _file_intrinsics(_read_kitti_intrinsics_matrix, record["intrinsics_path"])
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(), depth=uint16_depth_in_metres(depth_raw, 256), depth_kind="depth",
        valid_mask=depth_raw > 0, dataset=record["dataset"], sample_id=record["id"], **intrinsics,
    )


def _find_diode(root: Path) -> list[dict]:
    records = []
    for depth_path in root.rglob("*_depth.npy"):
        stem = depth_path.name[: -len("_depth.npy")]
        image_path = depth_path.with_name(stem + ".png")
        records.append(
            {
                "id": _relative_id(image_path, root),
                "image_path": str(image_path),
                "depth_path": str(depth_path),
                "mask_path": str(depth_path.with_name(stem + "_depth_mask.npy")),
            }
        )
    return records


def _decode_diode(record: dict) -> dict:
    depth = np.load(record["depth_path"], allow_pickle=False)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    mask = np.load(record["mask_path"], allow_pickle=False)
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(), depth=depth, depth_kind="depth", valid_mask=mask > 0,
        dataset=record["dataset"], sample_id=record["id"],
    )


def _find_sintel(root: Path, pass_name: str = "final") -> list[dict]:
    """MPI Sintel: <split>/depth/<scene>/frame_N.dpt with <split>/<pass_name>/<scene>/frame_N.png."""
    records = []
    for depth_path in root.rglob("depth/*/*.dpt"):
        scene, split_dir = depth_path.parent.name, depth_path.parents[2]
        image_path = split_dir / pass_name / scene / (depth_path.stem + ".png")
        records.append(
            {
                "id": _relative_id(image_path, root),
                "image_path": str(image_path),
                "depth_path": str(depth_path),
                "camera_path": str(split_dir / "camdata_left" / scene / (depth_path.stem + ".cam")),
            }
        )
    return records


def _decode_sintel(record: dict) -> dict:
    depth = read_sintel_depth(record["depth_path"])
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(), depth=depth, depth_kind="depth",
        valid_mask=np.ones(depth.shape, dtype=bool), dataset=record["dataset"], sample_id=record["id"],
        **_file_intrinsics(read_sintel_intrinsics, record["camera_path"]),
    )


def _find_eth3d(root: Path, height: int = ETH3D_HEIGHT, width: int = ETH3D_WIDTH) -> list[dict]:
    """ETH3D: <scene>/ground_truth_depth/<camera>/<name> (raw float32) with <scene>/images/<camera>/<name>."""
    records = []
    for depth_directory in root.rglob("ground_truth_depth"):
        for depth_path in depth_directory.rglob("*"):
            if depth_path.is_file():
                image_path = depth_directory.parent / "images" / depth_path.relative_to(depth_directory)
                records.append(
                    {
                        "id": _relative_id(image_path, root),
                        "image_path": str(image_path),
                        "depth_path": str(depth_path),
                        "height": height,
                        "width": width,
                    }
                )
    return records


def _decode_eth3d(record: dict) -> dict:
    depth = read_eth3d_depth(record["depth_path"], record["height"], record["width"])
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(), depth=depth, depth_kind="depth",
        valid_mask=np.ones(depth.shape, dtype=bool), dataset=record["dataset"], sample_id=record["id"],
    )


def _find_middlebury(root: Path) -> list[dict]:
    """Middlebury 2014: <scene>/im0.png, disp0.pfm (or disp0GT.pfm) and calib.txt."""
    records = []
    for calibration_path in root.rglob("calib.txt"):
        scene = calibration_path.parent
        disparity_path = scene / "disp0.pfm"
        if not disparity_path.is_file():
            disparity_path = scene / "disp0GT.pfm"
        records.append(
            {
                "id": _relative_id(scene / "im0.png", root),
                "image_path": str(scene / "im0.png"),
                "disparity_path": str(disparity_path),
                "calibration_path": str(calibration_path),
            }
        )
    return records


def _middlebury_sample(image, disparity: np.ndarray, calibration: dict, dataset: str, sample_id: str) -> dict:
    depth = middlebury_disparity_to_depth(disparity, calibration["focal_length"], calibration["baseline"], calibration["doffs"])
    return make_labeled_sample(
        image=image, depth=depth, depth_kind="depth", valid_mask=np.isfinite(disparity),
        dataset=dataset, sample_id=sample_id, fx=calibration["focal_length"], fy=calibration["focal_length"],
        cx=calibration["cx"], cy=calibration["cy"],
    )


def _decode_middlebury(record: dict) -> dict:
    return _middlebury_sample(
        Path(record["image_path"]).read_bytes(), read_pfm(record["disparity_path"]),
        read_middlebury_calibration(record["calibration_path"]), record["dataset"], record["id"],
    )


def middlebury_motorcycle_sample() -> dict:
    """scikit-image's Middlebury 2014 "Motorcycle" (741x500) as one `LABELED_FEATURES` row, depth in metres.

    Uses f = 994.978 px, baseline = 0.193001 m, doffs = 31.086 px; pixels without ground
    truth (infinite disparity) are invalid.
    """
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError("middlebury_motorcycle_sample needs scikit-image: pip install scikit-image") from error
    left_image, _, disparity = data.stereo_motorcycle()
    return _middlebury_sample(left_image, disparity, MOTORCYCLE_CALIBRATION, "middlebury", "skimage/motorcycle")


def _find_hypersim(root: Path, focal_length: float | None = None) -> list[dict]:
    """Hypersim: images/scene_cam_XX_geometry_hdf5/frame.N.depth_meters.hdf5 with
    images/scene_cam_XX_final_preview/frame.N.tonemap.jpg."""
    _require_h5py()
    records = []
    for depth_path in root.rglob("*_geometry_hdf5/frame.*.depth_meters.hdf5"):
        image_directory = depth_path.parent.with_name(depth_path.parent.name.replace("_geometry_hdf5", "_final_preview"))
        image_path = image_directory / depth_path.name.replace(".depth_meters.hdf5", ".tonemap.jpg")
        records.append(
            {"id": _relative_id(image_path, root), "image_path": str(image_path), "depth_path": str(depth_path), "focal_length": focal_length}
        )
    return records


def _decode_hypersim(record: dict) -> dict:
    with _require_h5py().File(record["depth_path"], "r") as depth_file:
        distance = depth_file["dataset"][()].astype(np.float32)
    height, width = distance.shape
    focal_length = record["focal_length"] or HYPERSIM_FOCAL_LENGTH * width / HYPERSIM_WIDTH
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(),
        depth=hypersim_distance_to_planar_depth(distance, focal_length),
        depth_kind="depth", valid_mask=np.isfinite(distance), dataset=record["dataset"], sample_id=record["id"],
        fx=focal_length, fy=focal_length, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
    )


def _find_vkitti2(root: Path, max_depth: float = VKITTI2_MAX_DEPTH) -> list[dict]:
    """Virtual KITTI 2: <scene>/<variation>/frames/depth/Camera_K/depth_N.png with
    frames/rgb/Camera_K/rgb_N.jpg and <scene>/<variation>/intrinsic.txt."""
    records = []
    for depth_path in root.rglob("frames/depth/Camera_*/depth_*.png"):
        variation = depth_path.parents[3]
        image_path = variation / "frames" / "rgb" / depth_path.parent.name / depth_path.name.replace("depth_", "rgb_").replace(".png", ".jpg")
        records.append(
            {
                "id": _relative_id(image_path, root),
                "image_path": str(image_path),
                "depth_path": str(depth_path),
                "intrinsics_path": str(variation / "intrinsic.txt"),
                "frame": int(depth_path.stem.split("_")[1]),
                "camera": int(depth_path.parent.name.split("_")[1]),
                "max_depth": max_depth,
            }
        )
    return records


def _read_vkitti2_intrinsics(path, frame: int, camera: int) -> dict:
    """The row of Virtual KITTI 2's intrinsic.txt ("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]")."""
    for line in Path(path).read_text().splitlines()[1:]:
        values = line.split()
        if len(values) == 6 and int(values[0]) == frame and int(values[1]) == camera:
            fx, fy, cx, cy = (float(value) for value in values[2:])
            return {"fx": fx, "fy": fy, "cx": cx, "cy": cy}
    raise ValueError(f"{path}: no intrinsics for frame {frame}, camera {camera}")


def _decode_vkitti2(record: dict) -> dict:
    depth_centimetres = read_uint16_png(record["depth_path"])
    depth = depth_centimetres / 100.0
    return make_labeled_sample(
        image=Path(record["image_path"]).read_bytes(), depth=depth, depth_kind="depth",
        valid_mask=(depth_centimetres > 0) & (depth <= record["max_depth"]),
        sky_mask=depth_centimetres == VKITTI2_SKY_CENTIMETRES,
        dataset=record["dataset"], sample_id=record["id"],
        **_file_intrinsics(
            functools.partial(_read_vkitti2_intrinsics, frame=record["frame"], camera=record["camera"]),
            record["intrinsics_path"],
        ),
    )


# name -> (list the samples of a directory, decode one record)
_FORMATS: dict[str, tuple[Callable[..., list[dict]], Callable[[dict], dict]]] = {
    "folder": (_find_folder, _decode_folder),
    "nyu_depth_v2": (_find_nyu, _decode_nyu),
    "kitti": (_find_kitti, _decode_kitti),
    "diode": (_find_diode, _decode_diode),
    "sintel": (_find_sintel, _decode_sintel),
    "eth3d": (_find_eth3d, _decode_eth3d),
    "middlebury": (_find_middlebury, _decode_middlebury),
    "hypersim": (_find_hypersim, _decode_hypersim),
    "vkitti2": (_find_vkitti2, _decode_vkitti2),
}
LABELED_FORMATS = (*_FORMATS, "datasets")


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


def _detect_format(path: Path) -> str:
    if path.is_file() and path.suffix == ".mat":
        return "nyu_depth_v2"
    metadata_path = path / "metadata.jsonl"
    if metadata_path.is_file() and "depth_file_name" in next(_metadata_rows(metadata_path), (0, {}))[1]:
        return "folder"
    raise ValueError(f"cannot tell the format of {path}; pass format= one of {LABELED_FORMATS}")


def _split_root(path: Path, split_name: str) -> Path:
    """The directory holding split `split_name`: a subdirectory of that name, else (for "train") `path`."""
    if path.is_dir() and (path / split_name).is_dir():
        return path / split_name
    if split_name != "train":
        raise ValueError(f"{path} has no split directory {split_name!r}")
    return path


def _select_split_slice(records: list[dict], split: str, split_name: str) -> list[dict]:
    """The records that a split spec like "train[:90%]" or "train[-10%:]" selects, in id order."""
    instructions = datasets.ReadInstruction.from_spec(split).to_absolute({split_name: len(records)})
    return [record for instruction in instructions for record in records[instruction.from_ : instruction.to]]


def _load_schema_dataset(name: str, split: str, streaming: bool, cache_dir):
    dataset = load_named_dataset(name, split=split, streaming=streaming, cache_dir=cache_dir)
    columns = dataset.column_names
    if columns is not None:
        missing = [column for column in LABELED_FEATURES if column not in columns]
        if missing:
            raise ValueError(f"dataset {name!r} lacks the labeled-schema columns {missing}")
    return dataset if dataset.features == LABELED_FEATURES else dataset.cast(LABELED_FEATURES)


def _check_zero_depth_option(path_or_name, format: str) -> None:
    if format != "folder":
        raise ValueError(
            f"zero_depth_is_sky applies to the folder format only; {str(path_or_name)!r} is {format}, whose sky "
            "convention the format fixes"
        )


def load_labeled_dataset(
    path_or_name,
    format: str | None = None,
    split: str = "train",
    streaming: bool = True,
    dataset_name: str | None = None,
    cache_dir=None,
    num_proc: int | None = None,
    zero_depth_is_sky: bool | None = None,
    **format_options,
):
    """Load an RGB-D dataset as `LABELED_FEATURES` rows.

    Args:
        path_or_name: a directory (or NYU's labeled .mat file), or a `datasets` name for
            format "datasets".
        format: one of `LABELED_FORMATS`; None detects the project folder format (a
            metadata.jsonl with depth_file_name), a .mat file (NYU) and Hub names.
        split: a `datasets` split spec. Its name picks the subdirectory of that name when
            there is one ("train" is the whole directory otherwise); a slice such as
            "train[:90%]" or "train[-10%:]" picks part of the samples sorted by id.
        streaming: True for a `datasets.IterableDataset`, False for a cached `datasets.Dataset`.
        dataset_name: the `dataset` column; defaults to the format name (the directory name
            for the folder format).
        cache_dir, num_proc: passed to `datasets.Dataset.from_generator` (streaming=False).
        zero_depth_is_sky: folder format only: True marks zero depth as sky (target disparity 0), False as
            invalid; None (the default) follows each metadata row's `zero_depth_is_sky` (default false).
        format_options: kitti `raw_root`; sintel `pass_name` ("final"/"clean"); eth3d
            `height`, `width`; hypersim `focal_length`; vkitti2 `max_depth`.
    """
    path = Path(path_or_name)
    if format is None and not path.exists():
        if path.is_absolute() or str(path_or_name).startswith("."):
            raise ValueError(f"path_or_name {str(path_or_name)!r} does not exist")
        format = "datasets"
    if format == "datasets":
        if zero_depth_is_sky is not None:
            _check_zero_depth_option(path_or_name, format)
        return _load_schema_dataset(str(path_or_name), split, streaming, cache_dir)
    if not path.exists():
        raise ValueError(f"path_or_name {str(path_or_name)!r} does not exist")
    split_name = split.split("[", 1)[0]
    root = _split_root(path, split_name)
    format = format or _detect_format(root)
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {LABELED_FORMATS}, got {format!r}")
    find_samples, decode = _FORMATS[format]
    if zero_depth_is_sky is not None:
        _check_zero_depth_option(path_or_name, format)
        format_options["zero_depth_is_sky"] = zero_depth_is_sky
    name = dataset_name or (path.name if format == "folder" else format)
    records = sorted(find_samples(root, **format_options), key=lambda record: record["id"])
    records = [{**record, "dataset": name} for record in _select_split_slice(records, split, split_name)]
    if not records:
        raise ValueError(f"no {format} samples found in {root} for split {split!r}")
    gen_kwargs = {"records": records, "decode": decode, "dataset_name": name}
    if streaming:
        return datasets.IterableDataset.from_generator(decodable_samples, features=LABELED_FEATURES, gen_kwargs=gen_kwargs)
    return datasets.Dataset.from_generator(
        decodable_samples, features=LABELED_FEATURES, gen_kwargs=gen_kwargs,
        cache_dir=cache_dir, num_proc=num_proc,
        fingerprint=files_fingerprint(records, decode.__qualname__, code_files=(__file__, schema.__file__)),
    )
