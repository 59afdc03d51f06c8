"""Each dataset format's decoder, on small files written here in that exact format."""

import io
import json
import logging
import os
import shutil
import struct
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from depth_anything_hf.data import formats
from depth_anything_hf.data.formats import load_labeled_dataset
from depth_anything_hf.data.schema import LABELED_FEATURES
from depth_anything_hf.data.skipping import skipped_sample_counts


def _rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _write_image(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _write_uint16_png(path: Path, values) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, dtype=np.uint16)).save(path)
    return path


def _only_sample(dataset) -> dict:
    samples = list(dataset)
    assert len(samples) == 1
    return samples[0]


def _depth(sample) -> np.ndarray:
    return np.asarray(sample["depth"], dtype=np.float32)


def _valid(sample) -> np.ndarray:
    return np.asarray(sample["valid_mask"], dtype=bool)


# --- project folder format -----------------------------------------------------------------


def _write_folder_sample(root: Path, name: str, depth_millimetres, image=None, **metadata) -> None:
    depth_millimetres = np.asarray(depth_millimetres)
    image = _rgb(*depth_millimetres.shape) if image is None else image
    _write_image(root / f"{name}.png", image)
    _write_uint16_png(root / f"{name}.depth.png", depth_millimetres)
    with open(root / "metadata.jsonl", "a") as metadata_file:
        row = {"file_name": f"{name}.png", "depth_file_name": f"{name}.depth.png", "depth_unit": "millimeter", **metadata}
        metadata_file.write(json.dumps(row) + "\n")


def test_folder_format_decodes_millimetres_and_intrinsics(tmp_path):
    image = _rgb(2, 3)
    _write_folder_sample(tmp_path, "a", [[0, 1234, 65535], [1, 2, 3]], image=image, fx=10.5, fy=11.0, cx=1.5, cy=1.0)
    sample = _only_sample(load_labeled_dataset(tmp_path))
    assert sample["id"] == "a.png" and sample["dataset"] == tmp_path.name and sample["depth_kind"] == "depth"
    assert _depth(sample)[0, 1] == np.float32(1.234) and _depth(sample)[0, 2] == np.float32(65.535)
    assert _depth(sample)[0, 0] == 0 and not _valid(sample)[0, 0] and _valid(sample)[1].all()
    assert (sample["fx"], sample["fy"], sample["cx"], sample["cy"]) == (10.5, 11.0, 1.5, 1.0)
    assert sample["sky_mask"] is None
    np.testing.assert_array_equal(np.asarray(sample["image"]), image)


@pytest.mark.parametrize(("unit", "units_per_metre"), [("millimeter", 1000), ("centimeter", 100), ("meter", 1)])
def test_folder_depth_of_every_16_bit_value_is_the_float32_nearest_its_metres(tmp_path, unit, units_per_metre):
    """The decoder divides in float32; every one of the 65536 values must still be the float32 nearest the exact
    value in metres (float64 division, then rounding to float32, as a reader would compute it)."""
    every_value = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    _write_folder_sample(tmp_path, "a", every_value, depth_unit=unit)
    depth = _depth(_only_sample(load_labeled_dataset(tmp_path)))
    np.testing.assert_array_equal(depth, (every_value / float(units_per_metre)).astype(np.float32))


@pytest.mark.parametrize("units_per_metre", [1000, 256, 100, 1])
def test_uint16_depth_in_metres_rounds_every_value_as_float64_division(units_per_metre):
    """The conversion of the folder, NYU (1000) and KITTI (256) decoders, over every uint16 value."""
    from depth_anything_hf.data.formats import uint16_depth_in_metres

    every_value = np.arange(65536, dtype=np.uint16)
    metres = uint16_depth_in_metres(every_value, units_per_metre)
    assert metres.dtype == np.float32
    np.testing.assert_array_equal(metres, (every_value / float(units_per_metre)).astype(np.float32))


def test_folder_zero_depth_is_sky_per_dataset_and_by_flag(tmp_path):
    """Rendered data leaves the environment at depth 0: a dataset whose metadata says so (or the flag) gets a sky
    mask there, and the training target sets it to disparity 0 and supervises it (docs/method.md section 4)."""
    from depth_anything_hf.data.schema import sample_to_tensors
    from depth_anything_hf.losses import depth_to_normalized_disparity

    depth = [[0, 1000], [2000, 4000]]
    sky_root, plain_root = tmp_path / "sky", tmp_path / "plain"
    sky_root.mkdir()
    plain_root.mkdir()
    _write_folder_sample(sky_root, "a", depth, zero_depth_is_sky=True)
    _write_folder_sample(plain_root, "a", depth)
    expected_sky = [[True, False], [False, False]]

    sky_sample = _only_sample(load_labeled_dataset(sky_root))
    np.testing.assert_array_equal(np.asarray(sky_sample["sky_mask"]), expected_sky)
    assert not _valid(sky_sample)[0, 0]
    assert _only_sample(load_labeled_dataset(plain_root))["sky_mask"] is None
    # The flag overrides the metadata either way.
    flagged = _only_sample(load_labeled_dataset(plain_root, zero_depth_is_sky=True))
    np.testing.assert_array_equal(np.asarray(flagged["sky_mask"]), expected_sky)
    assert _only_sample(load_labeled_dataset(sky_root, zero_depth_is_sky=False))["sky_mask"] is None

    tensors = sample_to_tensors(sky_sample)
    disparity, supervised = depth_to_normalized_disparity(tensors["depth"][None], tensors["valid_mask"][None], tensors["sky_mask"][None])
    # 1/depth = (-, 1, .5, .25) min-max normalised over the valid pixels; the sky is farthest and supervised.
    np.testing.assert_allclose(disparity[0].numpy(), [[0.0, 1.0], [1 / 3, 0.0]], atol=1e-6)
    assert supervised.all()


def test_zero_depth_is_sky_is_refused_where_the_format_fixes_sky(tmp_path):
    with pytest.raises(ValueError, match="zero_depth_is_sky applies to the folder format only"):
        load_labeled_dataset(tmp_path, format="kitti", zero_depth_is_sky=True)
    _write_folder_sample(tmp_path, "a", [[0, 1]], zero_depth_is_sky="yes")
    with pytest.raises(ValueError, match=r"metadata.jsonl:1: zero_depth_is_sky must be true or false, got 'yes'"):
        load_labeled_dataset(tmp_path)


def test_folder_format_loads_the_shared_synthetic_rgbd_directory(synthetic_rgbd):
    dataset = load_labeled_dataset(synthetic_rgbd, split="train[:2]")
    assert dataset.features == LABELED_FEATURES
    first = next(iter(dataset))
    metadata = json.loads((synthetic_rgbd / "metadata.jsonl").read_text().splitlines()[0])
    assert first["id"] == metadata["file_name"] and first["fx"] == metadata["fx"]
    millimetres = np.asarray(Image.open(synthetic_rgbd / metadata["depth_file_name"]), dtype=np.float64)
    np.testing.assert_allclose(_depth(first), np.where(millimetres > 0, millimetres / 1000, 0), rtol=1e-6)
    np.testing.assert_array_equal(_valid(first), millimetres > 0)
    assert first["image"].size == (metadata["width"], metadata["height"])


def test_folder_format_reads_like_imagefolder(tmp_path, synthetic_rgbd):
    for name in ("train_1_0000", "train_1_0001"):
        for suffix in (".jpg", ".depth.png"):
            shutil.copy(synthetic_rgbd / (name + suffix), tmp_path)
    metadata_lines = (synthetic_rgbd / "metadata.jsonl").read_text().splitlines()[:2]
    (tmp_path / "metadata.jsonl").write_text("\n".join(metadata_lines) + "\n")
    ours = list(load_labeled_dataset(tmp_path))
    imagefolder = datasets.load_dataset(
        "imagefolder", data_files={"train": [str(tmp_path / "*.jpg"), str(tmp_path / "metadata.jsonl")]},
        split="train", cache_dir=str(tmp_path / "cache"),
    )
    for sample, row in zip(ours, imagefolder, strict=True):
        np.testing.assert_array_equal(np.asarray(sample["image"]), np.asarray(row["image"]))
        np.testing.assert_allclose(_depth(sample), np.asarray(row["depth"]) / 1000, rtol=1e-6)
        assert sample["fx"] == row["fx"]


def test_split_names_pick_subdirectories_and_slices_pick_sorted_ids(tmp_path):
    for index in range(10):
        _write_folder_sample(tmp_path / "train", f"s{index}", [[index + 1]])
    _write_folder_sample(tmp_path / "test", "t0", [[7]])
    held_out = list(load_labeled_dataset(tmp_path, split="train[-20%:]"))
    assert [sample["id"] for sample in held_out] == ["s8.png", "s9.png"]
    assert [sample["id"] for sample in load_labeled_dataset(tmp_path, split="test")] == ["t0.png"]
    with pytest.raises(ValueError, match="validation"):
        load_labeled_dataset(tmp_path, split="validation")


def test_non_streaming_matches_streaming_and_sees_changed_files(tmp_path):
    data, cache = tmp_path / "data", str(tmp_path / "cache")
    _write_folder_sample(data, "a", [[1000, 2000]])
    _write_folder_sample(data, "b", [[3000, 0]])
    streamed = list(load_labeled_dataset(data))
    built = load_labeled_dataset(data, streaming=False, cache_dir=cache)
    assert isinstance(built, datasets.Dataset) and len(built) == 2
    for row, sample in zip(built, streamed, strict=True):
        assert row["id"] == sample["id"]
        np.testing.assert_array_equal(_depth(row), _depth(sample))
    depth_path = _write_uint16_png(data / "a.depth.png", [[5000, 6000]])
    os.utime(depth_path, ns=(10**18, 10**18))
    rebuilt = load_labeled_dataset(data, streaming=False, cache_dir=cache)
    np.testing.assert_array_equal(_depth(rebuilt[0]), [[5.0, 6.0]])


def test_undecodable_samples_are_skipped_with_a_counted_warning(tmp_path, caplog):
    _write_folder_sample(tmp_path, "good", np.full((8, 8), 1500))
    _write_folder_sample(tmp_path, "truncated", np.full((8, 8), 1500))
    jpeg = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(jpeg, format="JPEG")
    (tmp_path / "truncated.png").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    _write_folder_sample(tmp_path, "wrong_size", np.full((8, 8), 1500), image=_rgb(8, 9))
    name = "bad-files-test"
    before = skipped_sample_counts().get(name, 0)
    with caplog.at_level(logging.WARNING):
        samples = list(load_labeled_dataset(tmp_path, dataset_name=name))
    assert [sample["id"] for sample in samples] == ["good.png"]
    assert skipped_sample_counts()[name] - before == 2
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("'truncated.png'" in message and "truncated" in message for message in warnings)
    assert any("'wrong_size.png'" in message and "does not match" in message for message in warnings)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_labeled_dataset(tmp_path)
    with pytest.raises(ValueError, match="format must be one of"):
        load_labeled_dataset(tmp_path, format="nope")
    with pytest.raises(ValueError, match="does not exist"):
        load_labeled_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="no kitti samples"):
        load_labeled_dataset(tmp_path, format="kitti")


@pytest.mark.parametrize(
    "first_line, error",
    [("", None), ("{not json", r"metadata.jsonl:3: not valid JSON"), ("[1, 2]", r"metadata.jsonl:3: expected a JSON object")],
    ids=["blank", "not-json", "not-an-object"],
)
def test_metadata_lines_that_are_not_json_objects_are_named_by_file_and_line(tmp_path, first_line, error):
    _write_folder_sample(tmp_path, "a", np.full((4, 4), 1500))
    rows = (tmp_path / "metadata.jsonl").read_text()
    (tmp_path / "metadata.jsonl").write_text(f"\n\n{first_line}\n" + rows)
    if error is None:  # blank lines hold no sample and are passed over, in format detection too
        assert [sample["id"] for sample in load_labeled_dataset(tmp_path)] == ["a.png"]
    else:
        for format in (None, "folder"):
            with pytest.raises(ValueError, match=error):
                load_labeled_dataset(tmp_path, format=format)


def test_a_mistyped_local_path_says_it_does_not_exist_before_the_hub_lookup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'ds/nope' does not exist as a local path.*could not be loaded"):
        load_labeled_dataset("ds/nope")


# --- NYU Depth V2 --------------------------------------------------------------------------


def test_nyu_labeled_mat_is_transposed_from_matlab_layout(tmp_path):
    height, width = 3, 4
    images = np.zeros((2, 3, width, height), dtype=np.uint8)  # MATLAB [H, W, 3, N] seen by HDF5
    depths = np.ones((2, width, height), dtype=np.float32)
    images[1, :, 3, 2] = (11, 22, 33)  # pixel row 2, column 3 of image 1
    depths[1, 3, 2] = 4.25
    depths[1, 0, 1] = 0.0
    mat_path = tmp_path / "nyu_depth_v2_labeled.mat"
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (dev extra): writes the NYU .mat file")
    with h5py.File(mat_path, "w") as mat:
        mat["images"] = images
        mat["depths"] = depths
    samples = list(load_labeled_dataset(mat_path))
    assert [sample["id"] for sample in samples] == ["nyu_depth_v2_labeled.mat/00000", "nyu_depth_v2_labeled.mat/00001"]
    image = np.asarray(samples[1]["image"])
    assert image.shape == (height, width, 3) and tuple(image[2, 3]) == (11, 22, 33)
    assert _depth(samples[1])[2, 3] == 4.25 and not _valid(samples[1])[1, 0]
    assert samples[1]["fx"] is None  # not a 640x480 frame


def test_nyu_png_layout_in_millimetres_with_nyu_intrinsics(tmp_path):
    depth = np.full((480, 640), 2500, dtype=np.uint16)
    depth[10, 20] = 0
    _write_uint16_png(tmp_path / "bathroom" / "sync_depth_00045.png", depth)
    _write_image(tmp_path / "bathroom" / "rgb_00045.jpg", _rgb(480, 640))
    sample = _only_sample(load_labeled_dataset(tmp_path, format="nyu_depth_v2"))
    assert sample["id"] == "bathroom/rgb_00045.jpg"
    assert _depth(sample)[0, 0] == 2.5 and not _valid(sample)[10, 20]
    assert sample["fx"] == pytest.approx(518.8579) and sample["cy"] == pytest.approx(253.7362)


# --- KITTI ---------------------------------------------------------------------------------


def test_kitti_depth_selection_layout(tmp_path):
    stem = "2011_09_26_drive_0002_sync_{}_0000000005_image_02"
    image = _rgb(2, 3)
    _write_image(tmp_path / "image" / (stem.format("image") + ".png"), image)
    _write_uint16_png(tmp_path / "groundtruth_depth" / (stem.format("groundtruth_depth") + ".png"), [[0, 3200, 256], [1, 2, 3]])
    (tmp_path / "intrinsics").mkdir()
    (tmp_path / "intrinsics" / (stem.format("image") + ".txt")).write_text("721.5 0 609.5 0 721.6 172.8 0 0 1\n")
    sample = _only_sample(load_labeled_dataset(tmp_path, format="kitti"))
    assert sample["id"] == "image/" + stem.format("image") + ".png"
    assert _depth(sample)[0, 1] == 12.5 and _depth(sample)[0, 2] == 1.0 and not _valid(sample)[0, 0]
    assert (sample["fx"], sample["fy"], sample["cx"], sample["cy"]) == (721.5, 721.6, 609.5, 172.8)
    np.testing.assert_array_equal(np.asarray(sample["image"]), image)


def test_kitti_annotated_layout_with_raw_images_elsewhere(tmp_path):
    drive = "2011_09_26_drive_0002_sync"
    annotated, raw = tmp_path / "annotated", tmp_path / "raw"
    _write_uint16_png(annotated / "val" / drive / "proj_depth" / "groundtruth" / "image_03" / "0000000005.png", [[512, 0]])
    _write_image(raw / "2011_09_26" / drive / "image_03" / "data" / "0000000005.png", _rgb(1, 2))
    (raw / "2011_09_26" / "calib_cam_to_cam.txt").write_text(
        "P_rect_02: 700 0 600 0 0 701 170 0 0 0 1 0\nP_rect_03: 721 0 609 1 0 722 172 2 0 0 1 3\n"
    )
    sample = _only_sample(load_labeled_dataset(annotated, format="kitti", split="val", raw_root=raw))
    assert sample["id"] == f"2011_09_26/{drive}/image_03/0000000005.png"
    np.testing.assert_array_equal(_depth(sample), [[2.0, 0.0]])
    assert (sample["fx"], sample["fy"], sample["cx"], sample["cy"]) == (721.0, 722.0, 609.0, 172.0)


# --- DIODE, Sintel, ETH3D ------------------------------------------------------------------


def test_diode_depth_npy_with_mask(tmp_path):
    scan = tmp_path / "val" / "indoors" / "scene_00019" / "scan_00183"
    name = "00019_00183_indoors_000_010"
    _write_image(scan / f"{name}.png", _rgb(2, 2))
    np.save(scan / f"{name}_depth.npy", np.array([[[1.5], [2.5]], [[3.5], [4.5]]], dtype=np.float32))
    np.save(scan / f"{name}_depth_mask.npy", np.array([[1, 0], [1, 1]], dtype=np.float32))
    sample = _only_sample(load_labeled_dataset(tmp_path, format="diode", split="val"))
    assert sample["id"] == f"indoors/scene_00019/scan_00183/{name}.png"
    np.testing.assert_array_equal(_depth(sample), [[1.5, 0.0], [3.5, 4.5]])
    np.testing.assert_array_equal(_valid(sample), [[True, False], [True, True]])


def _write_sintel_depth(path: Path, depth: np.ndarray, tag: float = 202021.25) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = depth.shape
    path.write_bytes(struct.pack("<fii", tag, width, height) + depth.astype("<f4").tobytes())


def test_sintel_dpt_depth_and_cam_intrinsics(tmp_path):
    training = tmp_path / "training"
    depth = np.array([[1.25, 2.5, 3.75], [5.0, 6.25, 7.5]], dtype=np.float32)
    _write_sintel_depth(training / "depth" / "alley_1" / "frame_0001.dpt", depth)
    _write_image(training / "final" / "alley_1" / "frame_0001.png", _rgb(2, 3))
    intrinsics = np.array([[1120.0, 0, 511.5], [0, 1121.0, 217.5], [0, 0, 1]])
    camera = training / "camdata_left" / "alley_1" / "frame_0001.cam"
    camera.parent.mkdir(parents=True)
    camera.write_bytes(struct.pack("<f", 202021.25) + intrinsics.astype("<f8").tobytes() + np.zeros(12).tobytes())
    sample = _only_sample(load_labeled_dataset(tmp_path, format="sintel"))
    assert sample["id"] == "training/final/alley_1/frame_0001.png"
    np.testing.assert_array_equal(_depth(sample), depth)
    assert (sample["fx"], sample["fy"], sample["cx"], sample["cy"]) == (1120.0, 1121.0, 511.5, 217.5)


def test_sintel_reader_refuses_a_wrong_tag(tmp_path):
    _write_sintel_depth(tmp_path / "bad.dpt", np.ones((2, 2)), tag=1.0)
    with pytest.raises(ValueError, match="not a Sintel"):
        formats.read_sintel_depth(tmp_path / "bad.dpt")


def test_eth3d_raw_float_depth_with_inf_and_zero_invalid(tmp_path):
    depth = np.array([[1.5, np.inf, 0.0, 4.0], [2.0, 3.0, 5.0, 6.5], [7.0, 8.0, 9.0, 10.0]], dtype="<f4")
    depth_path = tmp_path / "courtyard" / "ground_truth_depth" / "dslr_images" / "DSC_0286.JPG"
    depth_path.parent.mkdir(parents=True)
    depth.tofile(depth_path)
    _write_image(tmp_path / "courtyard" / "images" / "dslr_images" / "DSC_0286.JPG", _rgb(3, 4))
    sample = _only_sample(load_labeled_dataset(tmp_path, format="eth3d", height=3, width=4))
    assert sample["id"] == "courtyard/images/dslr_images/DSC_0286.JPG"
    assert _depth(sample)[0, 0] == 1.5 and _depth(sample)[2, 3] == 10.0
    np.testing.assert_array_equal(_valid(sample)[0], [True, False, False, True])
    with pytest.raises(ValueError, match="expected 4032x6048"):
        formats.read_eth3d_depth(depth_path)


# --- Middlebury ----------------------------------------------------------------------------


def _write_pfm(path: Path, disparity: np.ndarray) -> None:
    height, width = disparity.shape
    header = f"Pf\n{width} {height}\n-1.0\n".encode()
    path.write_bytes(header + disparity[::-1].astype("<f4").tobytes())  # PFM rows run bottom to top


def test_middlebury_pfm_disparity_and_calibration_to_depth(tmp_path):
    scene = tmp_path / "Adirondack-perfect"
    scene.mkdir()
    _write_image(scene / "im0.png", _rgb(2, 3))
    _write_pfm(scene / "disp0.pfm", np.array([[100.0, np.inf, 50.0], [10.0, 20.0, 30.0]], dtype=np.float32))
    (scene / "calib.txt").write_text(
        "cam0=[4000 0 1100.5; 0 4000 900.25; 0 0 1]\ncam1=[4000 0 1200.5; 0 4000 900.25; 0 0 1]\n"
        "doffs=100\nbaseline=200\nwidth=3\nheight=2\nndisp=280\n"
    )
    sample = _only_sample(load_labeled_dataset(tmp_path, format="middlebury"))
    assert sample["id"] == "Adirondack-perfect/im0.png"
    # Z = 0.2 m * 4000 px / (d + 100 px): d = 100 -> 4 m (top-left), d = 50 -> 5.333 m, d = 10 -> 7.2727 m.
    depth = _depth(sample)
    assert depth[0, 0] == pytest.approx(4.0) and depth[0, 2] == pytest.approx(800 / 150) and depth[1, 0] == pytest.approx(800 / 110)
    assert not _valid(sample)[0, 1] and _valid(sample)[1].all()
    assert (sample["fx"], sample["fy"], sample["cx"], sample["cy"]) == (4000.0, 4000.0, 1100.5, 900.25)


def test_motorcycle_sample_is_middlebury_depth_in_metres():
    data = pytest.importorskip("skimage.data", reason="skimage is not installed (dev extra): the Middlebury frame")

    sample = formats.middlebury_motorcycle_sample()
    _, _, disparity = data.stereo_motorcycle()
    assert np.asarray(sample["image"]).shape == (500, 741, 3)
    row, column = 250, 370
    assert np.isfinite(disparity[row, column])
    expected = 0.193001 * 994.978 / (disparity[row, column] + 31.086)
    assert sample["depth"][row, column] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(sample["valid_mask"], np.isfinite(disparity))
    assert (sample["fx"], sample["cx"], sample["cy"]) == (994.978, 311.193, 254.877)
    assert LABELED_FEATURES.encode_example(sample)["id"] == "skimage/motorcycle"


# --- Hypersim, Virtual KITTI 2 -------------------------------------------------------------


def test_hypersim_ray_distance_becomes_planar_depth(tmp_path):
    height, width, plane_depth = 6, 8, 2.0
    focal_length = 886.81 * width / 1024
    u = np.arange(width) - (width - 1) / 2
    v = np.arange(height) - (height - 1) / 2
    # A fronto-parallel wall 2 m away: the ray through (u, v) meets it after 2 * |(u, v, f)| / f.
    distance = plane_depth * np.sqrt(u[None] ** 2 + v[:, None] ** 2 + focal_length**2) / focal_length
    distance[0, 0] = np.nan
    geometry = tmp_path / "ai_001_001" / "images" / "scene_cam_00_geometry_hdf5"
    geometry.mkdir(parents=True)
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (dev extra): writes the Hypersim file")
    with h5py.File(geometry / "frame.0000.depth_meters.hdf5", "w") as depth_file:
        depth_file["dataset"] = distance.astype(np.float32)
    _write_image(tmp_path / "ai_001_001" / "images" / "scene_cam_00_final_preview" / "frame.0000.tonemap.jpg", _rgb(height, width))
    sample = _only_sample(load_labeled_dataset(tmp_path, format="hypersim"))
    assert sample["id"] == "ai_001_001/images/scene_cam_00_final_preview/frame.0000.tonemap.jpg"
    depth, valid = _depth(sample), _valid(sample)
    assert not valid[0, 0] and valid.sum() == height * width - 1
    np.testing.assert_allclose(depth[valid], plane_depth, rtol=1e-6)
    assert sample["fx"] == pytest.approx(focal_length) and sample["cx"] == 3.5 and sample["cy"] == 2.5


def test_vkitti2_centimetres_with_sky_and_80_metre_cap(tmp_path):
    clone = tmp_path / "Scene01" / "clone"
    _write_uint16_png(clone / "frames" / "depth" / "Camera_1" / "depth_00003.png", [[1234, 8000, 8001, 65535]])
    _write_image(clone / "frames" / "rgb" / "Camera_1" / "rgb_00003.jpg", _rgb(1, 4))
    (clone / "intrinsic.txt").write_text(
        "frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n3 0 725.0 725.0 620.5 187.0\n3 1 725.5 726.5 621.5 188.0\n"
    )
    sample = _only_sample(load_labeled_dataset(tmp_path, format="vkitti2"))
    assert sample["id"] == "Scene01/clone/frames/rgb/Camera_1/rgb_00003.jpg"
    assert _depth(sample)[0, 0] == np.float32(12.34) and _depth(sample)[0, 1] == 80.0
    np.testing.assert_array_equal(_valid(sample), [[True, True, False, False]])
    np.testing.assert_array_equal(sample["sky_mask"], [[False, False, False, True]])
    assert (sample["fx"], sample["fy"], sample["cx"], sample["cy"]) == (725.5, 726.5, 621.5, 188.0)


# --- a dataset already in the schema --------------------------------------------------------


def test_datasets_format_reads_schema_parquet(tmp_path):
    pytest.importorskip("skimage", reason="skimage is not installed (dev extra): the Middlebury frame")
    source = formats.middlebury_motorcycle_sample()
    (tmp_path / "data").mkdir()
    datasets.Dataset.from_list([source], features=LABELED_FEATURES).to_parquet(str(tmp_path / "data" / "train.parquet"))
    for streaming in (True, False):
        loaded = _only_sample(
            load_labeled_dataset(str(tmp_path / "data"), format="datasets", streaming=streaming, cache_dir=str(tmp_path / "cache"))
        )
        assert loaded["id"] == "skimage/motorcycle"
        np.testing.assert_array_equal(_depth(loaded), source["depth"])
        np.testing.assert_array_equal(np.asarray(loaded["image"]), source["image"])
