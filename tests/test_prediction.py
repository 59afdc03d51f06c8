"""`depth-anything predict`: inputs, outputs (npy, 16-bit PNG, views, PLY), point-cloud geometry and videos."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.cli import build_parser

pytest.importorskip("matplotlib", reason="colour maps need matplotlib: pip install 'depth_anything_hf[predict]'")

from depth_anything_hf.prediction import (
    Intrinsics,
    disparity_to_depth,
    expand_inputs,
    fit_disparity_to_points,
    intrinsics_from_fov,
    load_png16,
    project,
    unproject,
)


def cli_main(argv: list[str]):
    """`depth-anything ARGV`, returning the subcommand's result (the summary of `predict`)."""
    arguments = build_parser().parse_args(argv)
    return arguments.func(arguments)


def _save_tiny_checkpoint(directory, config):
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(config).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(directory)
    # 140 px inputs keep the forward passes in milliseconds.
    DepthAnythingHFImageProcessor(size=140, depth_estimation_type=model.config.depth_estimation_type).save_pretrained(
        directory
    )
    return directory


@pytest.fixture(scope="module")
def relative_checkpoint(tmp_path_factory, tiny_config):
    return _save_tiny_checkpoint(tmp_path_factory.mktemp("relative"), tiny_config())


@pytest.fixture(scope="module")
def metric_checkpoint(tmp_path_factory, tiny_config):
    config = tiny_config(depth_estimation_type="metric", max_depth=20.0)
    return _save_tiny_checkpoint(tmp_path_factory.mktemp("metric"), config)


def _photo(path, width, height, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    _photo(folder / "a.png", 96, 72, 0)
    _photo(folder / "b.jpg", 96, 72, 1)  # same size as a.png: one batch
    (folder / "nested").mkdir()
    _photo(folder / "nested" / "c.png", 60, 80, 2)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.md").write_text("not an input")
    return folder


@pytest.fixture(scope="module")
def predicted_folder(relative_checkpoint, photo_folder, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("predicted")
    summary = cli_main([
        "predict", str(relative_checkpoint), str(photo_folder), "--output_dir", str(output_dir),
        "--outputs", "colormap", "grayscale", "side_by_side", "png16", "npy", "--batch_size", "2",
    ])
    return summary, output_dir


def test_npy_equals_the_pipeline_prediction(relative_checkpoint, photo_folder, predicted_folder):
    _, output_dir = predicted_folder
    estimator = pipeline("depth-estimation", model=str(relative_checkpoint))
    for relative_path in ("a", "b", "nested/c"):
        source = next(photo_folder.glob(f"{relative_path}.*"))
        expected = estimator(str(source))["predicted_depth"].numpy()
        saved = np.load(output_dir / f"{relative_path}_disparity.npy")
        assert saved.shape == expected.shape == Image.open(source).size[::-1]
        if relative_path == "nested/c":  # alone in its batch, as in the pipeline: the same computation
            np.testing.assert_array_equal(saved, expected)
        else:  # a and b share a batch: batched matrix products round differently (~1e-6)
            assert np.abs(saved - expected).max() <= 1e-4 * np.abs(expected).max()


def test_a_corrupt_file_is_skipped_counted_and_named(predicted_folder, capsys):
    summary, output_dir = predicted_folder
    assert summary["images"] == 3
    assert [skipped["path"].rsplit("/", 1)[-1] for skipped in summary["skipped"]] == ["broken.jpg"]
    assert not list(output_dir.glob("broken*"))


def test_png16_dequantises_to_the_npy_and_names_its_quantity(predicted_folder):
    _, output_dir = predicted_folder
    raw = np.load(output_dir / "a_disparity.npy")
    dequantised, metadata = load_png16(output_dir / "a_disparity_16bit.png")
    value_range = float(raw.max() - raw.min())
    assert value_range > 0
    assert np.abs(dequantised - raw).max() <= value_range / 65535
    assert metadata["quantity"] == "disparity" and "not metres" in metadata["unit"]
    sidecar = json.loads((output_dir / "a_disparity_16bit.json").read_text())
    assert sidecar["min"] == pytest.approx(raw.min()) and sidecar["max"] == pytest.approx(raw.max())
    with Image.open(output_dir / "a_disparity_16bit.png") as png:
        assert png.mode in ("I;16", "I") and np.asarray(png).max() == 65535


def test_views_are_spectral_r_coloured_at_the_input_size(predicted_folder):
    from matplotlib import colormaps

    _, output_dir = predicted_folder
    raw = np.load(output_dir / "a_disparity.npy")
    coloured = np.asarray(Image.open(output_dir / "a_disparity.png"))
    nearest = np.unravel_index(raw.argmax(), raw.shape)
    farthest = np.unravel_index(raw.argmin(), raw.shape)
    spectral_r = colormaps["Spectral_r"]
    np.testing.assert_array_equal(coloured[nearest], (np.asarray(spectral_r(255)[:3]) * 255).astype(np.uint8))
    np.testing.assert_array_equal(coloured[farthest], (np.asarray(spectral_r(0)[:3]) * 255).astype(np.uint8))
    gray = np.asarray(Image.open(output_dir / "a_disparity_gray.png"))
    assert gray[nearest].tolist() == [255] * 3 and gray[farthest].tolist() == [0] * 3
    with Image.open(output_dir / "a_disparity_side_by_side.png") as view:
        assert view.size == (96 * 2 + 50, 72) and view.text["quantity"] == "disparity"


def test_point_cloud_options_without_ply_and_clashing_names_are_errors(relative_checkpoint, photo_folder, tmp_path):
    with pytest.raises(SystemExit, match="add ply to the outputs"):
        cli_main(["predict", str(relative_checkpoint), str(photo_folder / "a.png"), "--hfov", "60",
                  "--output_dir", str(tmp_path)])
    _photo(tmp_path / "a.jpg", 30, 20, 3)
    with pytest.raises(SystemExit, match="same output files"):
        cli_main(["predict", str(relative_checkpoint), str(tmp_path / "a.jpg"), str(tmp_path / "a.jpg"),
                  "--output_dir", str(tmp_path / "out")])


def test_expand_inputs_reads_folders_globs_and_lists(photo_folder, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos\n{photo_folder / 'a.png'}\n\nmissing.png\n")
    assert [path.name for path in expand_inputs([str(listing)])] == ["a.png", "missing.png"]
    assert [path.name for path in expand_inputs([str(photo_folder / "*.png")])] == ["a.png"]
    assert sorted(path.name for path in expand_inputs([str(photo_folder)])) == ["a.png", "b.jpg", "broken.jpg", "c.png"]
    with pytest.raises(FileNotFoundError, match="matches no files"):
        expand_inputs([str(photo_folder / "*.tiff")])


def test_hfov_90_degrees_over_200_pixels_gives_fx_100():
    intrinsics = intrinsics_from_fov(200, 100, 90)
    assert intrinsics.fx == pytest.approx(100) and intrinsics.fy == pytest.approx(100)
    assert (intrinsics.cx, intrinsics.cy) == (99.5, 49.5)


def test_a_constant_depth_plane_reprojects_to_its_own_pixels():
    intrinsics = Intrinsics(fx=120.0, fy=110.0, cx=31.5, cy=20.0)
    depth = np.full((40, 64), 3.25)
    points = unproject(depth, intrinsics)
    assert np.all(points[..., 2] == 3.25)
    # The corner pixel (0, 0) lies at x = (0 - cx) / fx * z.
    assert points[0, 0, 0] == pytest.approx(-31.5 / 120 * 3.25) and points[0, 0, 1] == pytest.approx(-20 / 110 * 3.25)
    u, v = project(points, intrinsics)
    rows, columns = np.indices(depth.shape)
    assert np.abs(u - columns).max() <= 1e-4 and np.abs(v - rows).max() <= 1e-4


def test_disparity_becomes_depth_only_by_the_given_or_fitted_conversion():
    disparity = np.linspace(0.0, 4.0, 30 * 20).reshape(30, 20)
    depth = disparity_to_depth(disparity, scale=0.5, shift=-0.5)
    assert np.isnan(depth[disparity <= 1.0]).all()  # 1/depth <= 0: at or past infinity
    np.testing.assert_allclose(depth[disparity > 1.0], 1 / (0.5 * disparity[disparity > 1.0] - 0.5))
    # Sparse metric points of a scene with 1 / depth = 2 * disparity + 0.25 give back that conversion.
    points = np.array([[x, y, 1 / (2 * disparity[y, x] + 0.25)] for x, y in [(0, 0), (5, 7), (19, 29), (3, 20)]])
    scale, shift = fit_disparity_to_points(disparity, points)
    assert scale == pytest.approx(2) and shift == pytest.approx(0.25)
    with pytest.raises(ValueError, match="outside"):
        fit_disparity_to_points(disparity, np.array([[20.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))


def _read_ply(path):
    data = path.read_bytes()
    header_end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:header_end].decode("ascii").splitlines()
    count = int(next(line for line in header if line.startswith("element vertex")).split()[-1])
    vertices = np.frombuffer(
        data[header_end:], count=count,
        dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    return header, vertices


def test_metric_point_cloud_at_the_original_resolution_coloured_by_the_image(metric_checkpoint, photo_folder,
                                                                              tmp_path):
    cli_main([
        "predict", str(metric_checkpoint), str(photo_folder / "a.png"), "--output_dir", str(tmp_path),
        "--outputs", "ply", "npy", "--hfov", "90",
    ])
    depth = np.load(tmp_path / "a_depth_m.npy")
    header, vertices = _read_ply(tmp_path / "a_points.ply")
    assert len(vertices) == 96 * 72 and any("metre" in line for line in header)
    np.testing.assert_allclose(vertices["z"], depth.ravel(), rtol=1e-6)
    fx = 48 / math.tan(math.radians(45))
    columns = np.indices(depth.shape)[1].ravel()
    np.testing.assert_allclose(vertices["x"], (columns - 47.5) / fx * depth.ravel(), rtol=1e-5, atol=1e-6)
    image = np.asarray(Image.open(photo_folder / "a.png")).reshape(-1, 3)
    np.testing.assert_array_equal(np.stack([vertices["red"], vertices["green"], vertices["blue"]], 1), image)


def test_relative_point_cloud_without_a_conversion_is_an_error_naming_disparity(relative_checkpoint, photo_folder,
                                                                                tmp_path):
    with pytest.raises(SystemExit, match="DISPARITY"):
        cli_main([
            "predict", str(relative_checkpoint), str(photo_folder / "a.png"), "--output_dir", str(tmp_path),
            "--outputs", "ply", "--hfov", "60",
        ])
    cli_main([
        "predict", str(relative_checkpoint), str(photo_folder / "a.png"), "--output_dir", str(tmp_path),
        "--outputs", "ply", "npy", "--hfov", "60", "--disparity_scale", "0.5", "--disparity_shift", "0.1",
    ])
    disparity = np.load(tmp_path / "a_disparity.npy")
    _, vertices = _read_ply(tmp_path / "a_points.ply")
    assert len(vertices) == disparity.size  # the ReLU output is >= 0, so 0.5 d + 0.1 > 0 everywhere
    np.testing.assert_allclose(vertices["z"], 1 / (0.5 * disparity.ravel() + 0.1), rtol=1e-5)
    # A conversion that puts every pixel at or past infinity is an error, not an empty point cloud.
    with pytest.raises(SystemExit, match="no pixel has a positive finite depth"):
        cli_main([
            "predict", str(relative_checkpoint), str(photo_folder / "a.png"), "--output_dir", str(tmp_path / "bad"),
            "--outputs", "ply", "--hfov", "60", "--disparity_scale", "0.5", "--disparity_shift=-1e9",
        ])


def test_video_keeps_its_frame_count_with_clip_wide_normalisation(relative_checkpoint, tmp_path):
    av = pytest.importorskip("av", reason="video tests need PyAV: pip install 'depth_anything_hf[predict]'")
    video = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(video), mode="w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(7):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    summary = cli_main([
        "predict", str(relative_checkpoint), str(video), str(tmp_path / "broken.mp4"),
        "--output_dir", str(tmp_path / "out"), "--outputs", "colormap", "npy", "--batch_size", "3",
    ])
    assert summary["videos"] == 1 and summary["frames"] == 7
    assert [skipped["path"] for skipped in summary["skipped"]] == [str(tmp_path / "broken.mp4")]
    saved = np.load(tmp_path / "out" / "clip_disparity.npz")
    assert saved["frames"].shape == (7, 48, 64) and float(saved["fps"]) == 12
    assert saved["clip_min"] == saved["frames"].min() and saved["clip_max"] == saved["frames"].max()
    assert str(saved["quantity"]) == "disparity"
    with av.open(str(tmp_path / "out" / "clip_disparity.mp4")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 7 and frames[0].shape == (48, 64, 3)
