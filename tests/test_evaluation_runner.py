"""`depth-anything eval` runner: results.json, the printed table, batching, flip averaging, the script."""

import argparse
import json
import runpy
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from depth_anything_hf import DepthAnythingHFForDepthEstimation, __version__
from depth_anything_hf.cli import build_parser
from depth_anything_hf.data import middlebury_motorcycle_sample, sample_to_tensors
from depth_anything_hf.evaluation import compute_metrics, get_preset
from depth_anything_hf.evaluation.reporting import results_table
from depth_anything_hf.evaluation.runner import EvaluationError, evaluate_model, evaluation_dataset
from depth_anything_hf.image_processing_depth_anything_hf import DepthAnythingHFImageProcessor

HELD_OUT = "train[-10%:]"
REPOSITORY = Path(__file__).resolve().parents[1]


def _save_tiny_model(config, directory: Path) -> Path:
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(config).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)  # most pixels past the final ReLU
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_config) -> Path:
    return _save_tiny_model(tiny_config(version="v2"), tmp_path_factory.mktemp("tiny_relative"))


def _cli(arguments: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(arguments)


def _reference_middlebury_metrics(checkpoint: Path, protocol: str) -> dict:
    """The runner's steps written out for the one Middlebury frame, with flip averaging."""
    model = DepthAnythingHFForDepthEstimation.from_pretrained(checkpoint).eval()
    processor = DepthAnythingHFImageProcessor()
    sample = sample_to_tensors(middlebury_motorcycle_sample())
    pixel_values = processor(images=sample["image"], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        disparity = model(pixel_values).predicted_depth
        flipped_back = model(pixel_values.flip(-1)).predicted_depth.flip(-1)
    averaged = (disparity + flipped_back) / 2
    upsampled = F.interpolate(averaged[:, None], size=sample["depth"].shape, mode="bilinear", align_corners=True)[0, 0]
    preset = get_preset("middlebury")
    return compute_metrics(
        upsampled, sample["depth"], sample["valid_mask"], prediction_type="disparity", protocol=protocol,
        depth_cap=preset.max_depth, min_depth=preset.min_depth, crop=preset.crop, check_orientation=False,
    )


def test_eval_cli_writes_results_json_and_prints_the_table(tiny_checkpoint, synthetic_rgbd, tmp_path, capsys):
    pytest.importorskip("skimage", reason="skimage is not installed (dev extra): the Middlebury frame")
    arguments = _cli([
        "eval", str(tiny_checkpoint),
        "--dataset", f"rgbd_folder={synthetic_rgbd}", "--dataset", "middlebury=skimage",
        "--protocols", "disparity", "midas", "--flip_average", "--split", HELD_OUT, "--max_images", "3",
        "--batch_size", "2", "--output_dir", str(tmp_path),
    ])
    arguments.func(arguments)
    results = json.loads((tmp_path / "results.json").read_text())

    assert results["model"] == str(tiny_checkpoint)
    assert results["code_version"].startswith(__version__)
    assert (results["prediction_type"], results["flip_average"]) == ("disparity", True)
    rows = {(row["dataset"], row["protocol"]): row for row in results["evaluations"]}
    assert set(rows) == {(d, p) for d in ("rgbd_folder", "middlebury") for p in ("disparity", "midas")}
    assert (rows["rgbd_folder", "disparity"]["num_images"], rows["rgbd_folder", "disparity"]["num_skipped"]) == (3, 0)
    assert rows["middlebury", "midas"]["num_images"] == 1
    assert rows["rgbd_folder", "midas"]["settings"]["max_depth"] == get_preset("rgbd_folder").max_depth
    for protocol in ("disparity", "midas"):
        expected = _reference_middlebury_metrics(tiny_checkpoint, protocol)
        measured = rows["middlebury", protocol]["metrics"]
        for name, value in expected.items():
            assert measured[name] == pytest.approx(value, rel=1e-4, abs=1e-6), (protocol, name)

    printed = capsys.readouterr().out
    assert "| RGB-D folder | `disparity` | 3 (0) |" in printed
    assert "| Middlebury 2014 | `midas` | 1 (0) |" in printed


def test_batching_does_not_change_the_metrics(tiny_checkpoint, synthetic_rgbd):
    datasets = [evaluation_dataset(f"rgbd_folder={synthetic_rgbd}")]
    one_by_one = evaluate_model(str(tiny_checkpoint), datasets, batch_size=1, split=HELD_OUT, max_images=3)
    batched = evaluate_model(str(tiny_checkpoint), datasets, batch_size=3, split=HELD_OUT, max_images=3)
    for name, value in one_by_one["evaluations"][0]["metrics"].items():
        assert batched["evaluations"][0]["metrics"][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_metric_models_default_to_the_metric_protocol_capped_at_their_max_depth(tmp_path, tiny_config):
    pytest.importorskip("skimage", reason="skimage is not installed (dev extra): the Middlebury frame")
    max_depth = 3.0  # below the Middlebury preset's 10 m, and below part of the frame's ground truth
    checkpoint = _save_tiny_model(
        tiny_config(version="v2", depth_estimation_type="metric", max_depth=max_depth), tmp_path / "metric"
    )
    results = evaluate_model(str(checkpoint), [evaluation_dataset("middlebury=skimage")])
    assert results["prediction_type"] == "depth"
    assert [row["protocol"] for row in results["evaluations"]] == ["metric"]
    assert results["evaluations"][0]["settings"]["max_depth"] == max_depth

    model = DepthAnythingHFForDepthEstimation.from_pretrained(checkpoint).eval()
    sample = sample_to_tensors(middlebury_motorcycle_sample())
    pixel_values = DepthAnythingHFImageProcessor()(images=sample["image"], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        depth = model(pixel_values).predicted_depth
    upsampled = F.interpolate(depth[:, None], size=sample["depth"].shape, mode="bilinear", align_corners=True)[0, 0]
    preset = get_preset("middlebury")

    def reference(depth_cap: float) -> dict:
        return compute_metrics(
            upsampled, sample["depth"], sample["valid_mask"], prediction_type="depth", protocol="metric",
            depth_cap=depth_cap, min_depth=preset.min_depth, crop=preset.crop, check_orientation=False,
        )  # fmt: skip

    measured = results["evaluations"][0]["metrics"]
    for name, value in reference(max_depth).items():
        assert measured[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    assert measured["abs_rel"] != pytest.approx(reference(preset.max_depth)["abs_rel"], rel=1e-3)


def test_relative_models_refuse_depth_protocols_and_bad_specs(tiny_checkpoint):
    with pytest.raises(ValueError, match="relative"):
        evaluate_model(str(tiny_checkpoint), [evaluation_dataset("middlebury=skimage")], protocols=["metric"])
    with pytest.raises(ValueError, match="PRESET=PATH"):
        evaluation_dataset("middlebury")
    with pytest.raises(ValueError, match="known presets"):
        evaluation_dataset("nyuv2=/data/nyu")
    with pytest.raises(ValueError, match="a weight only mixes training data"):
        evaluation_dataset("kitti=/data/kitti:2")


def test_training_script_runs_the_same_evaluation(tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("skimage", reason="skimage is not installed (dev extra): the Middlebury frame")
    monkeypatch.setattr(sys, "argv", [
        "evaluate.py", str(tiny_checkpoint), "--dataset", "middlebury=skimage", "--output_dir", str(tmp_path),
    ])
    runpy.run_path(str(REPOSITORY / "training_scripts" / "evaluate.py"), run_name="__main__")
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(row["dataset"], row["protocol"], row["num_images"]) for row in results["evaluations"]] == [
        ("middlebury", "disparity", 1)
    ]


def test_eval_flags_share_the_training_grammar_and_precision_names():
    from depth_anything_hf.data.specs import DatasetSpec

    arguments = _cli(["eval", "ckpt", "--dataset", "kitti=/data/kitti", "--mixed_precision", "bf16"])
    assert arguments.datasets == [DatasetSpec("/data/kitti", 1.0, "kitti")]
    assert arguments.mixed_precision == "bf16"
    with pytest.raises(SystemExit):
        _cli(["eval", "ckpt", "--dataset", "kitti=/data/kitti", "--mixed_precision", "float16"])


def _copy_frames(source: Path, destination: Path, count: int) -> Path:
    """The first `count` frames of the synthetic RGB-D folder, copied with their metadata lines."""
    destination.mkdir()
    lines = (source / "metadata.jsonl").read_text().splitlines()[:count]
    for line in lines:
        row = json.loads(line)
        for name in (row["file_name"], row["depth_file_name"]):
            shutil.copy(source / name, destination / name)
    (destination / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return destination


def test_every_file_that_fails_to_decode_is_counted_as_skipped(tiny_checkpoint, synthetic_rgbd, tmp_path):
    folder = _copy_frames(synthetic_rgbd, tmp_path / "frames", 4)
    (folder / "train_1_0001.jpg").unlink()
    (folder / "train_1_0002.depth.png").write_bytes(b"not a png")
    results = evaluate_model(str(tiny_checkpoint), [evaluation_dataset(f"rgbd_folder={folder}")])
    (row,) = results["evaluations"]
    assert (row["num_images"], row["num_skipped"], row["num_undecodable"]) == (2, 2, 2)
    assert "| RGB-D folder | `disparity` | 2 (2) |" in results_table(results["evaluations"])


def test_a_failing_dataset_is_named_and_the_others_results_are_written(tiny_checkpoint, synthetic_rgbd, tmp_path):
    good = _copy_frames(synthetic_rgbd, tmp_path / "good", 2)
    empty = _copy_frames(synthetic_rgbd, tmp_path / "empty", 2)
    for depth_file in empty.glob("*.depth.png"):
        Image.fromarray(np.zeros((256, 256), np.uint16)).save(depth_file)
    millimetres = _copy_frames(synthetic_rgbd, tmp_path / "millimetres", 2)
    # Depth in millimetres declared as metres: under the 10 m cap of NYU it would all be left out.
    metadata = millimetres / "metadata.jsonl"
    metadata.write_text(metadata.read_text().replace('"depth_unit": "millimeter"', '"depth_unit": "meter"'))
    specs = (f"rgbd_folder={good}", f"rgbd_folder={empty}", "middlebury=skimage")
    datasets = [evaluation_dataset(spec) for spec in specs]
    datasets.append((replace(get_preset("nyu"), data_format="folder"), str(millimetres)))

    with pytest.raises(EvaluationError) as raised:
        evaluate_model(str(tiny_checkpoint), datasets, output_dir=tmp_path)
    message = str(raised.value)
    assert f"dataset 'rgbd_folder' ({empty}): ValueError: No image could be scored (2 without 10 valid" in message
    assert (
        f"dataset 'nyu' ({millimetres}): ValueError: sample 'train_1_0000.jpg': ground truth beyond depth_cap: "
        "wrong units?"
    ) in message
    written = json.loads((tmp_path / "results.json").read_text())
    assert [(row["dataset"], row["path"]) for row in written["evaluations"]] == [
        ("rgbd_folder", str(good)), ("middlebury", "skimage")
    ]
    assert [failure["path"] for failure in written["failures"]] == [str(empty), str(millimetres)]
