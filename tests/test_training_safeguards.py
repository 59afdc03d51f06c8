"""A training run never reports success on nothing: divergence, batches without supervision, changed arguments on
resume and unreadable checkpoints each end in a clear error or a warned, recorded fallback. The teacher script
runs in this process on four toy frames."""

import json
import logging
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from PIL import Image
from safetensors.torch import load_file

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.data import make_labeled_sample
from depth_anything_hf.data.transforms import PairedResizeCropFlip
from depth_anything_hf.training.batches import labeled_batch
from depth_anything_hf.training.divergence import TrainingDivergedError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training_scripts"))
import train_teacher  # noqa: E402

RESOLUTION = 28


def write_rgbd_folder(root: Path, depths_mm: list[np.ndarray]) -> Path:
    """A dataset in the project folder format: random photos with the given uint16 millimetre depth maps."""
    root.mkdir(parents=True)
    generator = np.random.default_rng(0)
    lines = []
    for index, depth in enumerate(depths_mm):
        height, width = depth.shape
        Image.fromarray(generator.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / f"{index}.png")
        Image.fromarray(depth.astype(np.uint16)).save(root / f"{index}.depth.png")
        lines.append(json.dumps({"file_name": f"{index}.png", "depth_file_name": f"{index}.depth.png"}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def ramp_depth_mm(seed: int, size: int = 32) -> np.ndarray:
    rows = np.linspace(1000, 5000, size)[:, None] + np.random.default_rng(seed).uniform(0, 500, (size, size))
    return rows.astype(np.uint16)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_config) -> Path:
    root = tmp_path_factory.mktemp("safeguards")
    tiny_config(image_size=RESOLUTION, version="v2").to_json_file(root / "tiny.json")
    write_rgbd_folder(root / "rgbd", [ramp_depth_mm(seed) for seed in range(4)])
    return root


def train(
    workspace: Path, output_dir: Path, *extra: str, dataset: Path | None = None
) -> DepthAnythingHFForDepthEstimation:
    arguments = [
        "--model_config", str(workspace / "tiny.json"), "--encoder_init", "none", "--resolution", str(RESOLUTION),
        "--dataset", str(dataset or workspace / "rgbd"), "--report_to", "none", "--output_dir", str(output_dir),
        "--train_batch_size", "2", "--max_train_steps", "2", "--checkpointing_steps", "1", "--image_logging_steps", "0",
        *extra,
    ]  # fmt: skip
    try:
        return train_teacher.main(train_teacher.parse_args(arguments))
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def assert_finite_weights(folder: Path) -> None:
    for name, tensor in load_file(folder / "model.safetensors").items():
        assert torch.isfinite(tensor).all(), name


# --- divergence -------------------------------------------------------------------------------------------


def test_a_diverged_run_stops_naming_the_step_and_keeps_only_checkpoints_with_finite_weights(workspace, tmp_path):
    # lr 1e5: the first step is taken from finite weights, and the prediction is non-finite soon after.
    with pytest.raises(TrainingDivergedError, match=r"the loss became NaN or infinite at step (\d+)") as raised:
        train(workspace, tmp_path, "--encoder_learning_rate", "1e5", "--max_train_steps", "8")
    first_bad_step = int(re.search(r"at step (\d+)", str(raised.value)).group(1))
    saved = sorted(int(path.name.split("-")[1]) for path in tmp_path.glob("checkpoint-*"))
    assert saved == list(range(1, first_bad_step))
    assert f"the last checkpoint, {tmp_path / f'checkpoint-{first_bad_step - 1}'}" in str(raised.value)
    for step in saved:
        assert_finite_weights(tmp_path / f"checkpoint-{step}")
    assert not (tmp_path / "model.safetensors").exists()


# --- no supervised pixel ----------------------------------------------------------------------------------


def labeled_example(depth_m: np.ndarray, sample_id: str) -> dict:
    image = np.zeros((*depth_m.shape, 3), dtype=np.uint8)
    return make_labeled_sample(
        image=image, depth=depth_m, depth_kind="depth", valid_mask=np.ones(depth_m.shape, bool), dataset="toy",
        sample_id=sample_id,
    )


def test_a_sample_without_a_supervised_pixel_is_warned_and_a_batch_of_them_is_an_error(caplog):
    geometry, generator = PairedResizeCropFlip(RESOLUTION), torch.Generator().manual_seed(0)
    good = labeled_example(ramp_depth_mm(0).astype(np.float32) / 1000, "good")
    empty = labeled_example(np.zeros((32, 32), np.float32), "all_zero")
    all_nan = labeled_example(np.full((32, 32), np.nan, np.float32), "all_nan")

    with caplog.at_level(logging.WARNING):
        batch = labeled_batch([good, empty], geometry, torch.device("cpu"), generator)
    assert "'all_zero' of dataset 'toy' has no supervised pixel" in caplog.text
    assert batch.supervised_mask[0].any() and not batch.supervised_mask[1].any()

    expected = r"No labeled sample of this batch has a supervised pixel \('all_zero'.*'all_nan'"
    with pytest.raises(ValueError, match=expected):
        labeled_batch([empty, all_nan], geometry, torch.device("cpu"), generator)


def test_training_on_depth_maps_without_valid_pixels_stops(workspace, tmp_path):
    empty = write_rgbd_folder(tmp_path / "empty", [np.zeros((32, 32)) for _ in range(2)])
    with pytest.raises(ValueError, match="No labeled sample of this batch has a supervised pixel"):
        train(workspace, tmp_path / "run", dataset=empty)
    assert not (tmp_path / "run" / "model.safetensors").exists()


# --- resume: arguments and unreadable checkpoints ---------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(workspace) -> Path:
    output_dir = workspace / "finished"
    train(workspace, output_dir)
    return output_dir


def test_each_checkpoint_records_the_run_arguments(finished_run):
    for step in (1, 2):
        recorded = json.loads((finished_run / f"checkpoint-{step}" / "training_args.json").read_text())
        assert (recorded["train_batch_size"], recorded["max_train_steps"], recorded["seed"]) == (2, 2, 0)


def test_resuming_with_a_change_that_breaks_exact_resumption_is_refused(workspace, finished_run, tmp_path):
    with pytest.raises(ValueError, match=r"--train_batch_size 2 -> 1.*--output_dir"):
        train(workspace, finished_run, "--resume_from_checkpoint", "latest", "--train_batch_size", "1")
    with pytest.raises(ValueError, match=r"--seed 0 -> 5"):
        train(workspace, finished_run, "--resume_from_checkpoint", "latest", "--seed", "5")


def test_other_changes_on_resume_are_warned_and_recorded_with_their_earlier_values(
    workspace, finished_run, tmp_path, caplog
):
    output_dir = shutil.copytree(finished_run, tmp_path / "run")
    with caplog.at_level(logging.WARNING):
        train(workspace, output_dir, "--resume_from_checkpoint", "latest", "--max_train_steps", "3",
              "--encoder_learning_rate", "1e-5")  # fmt: skip
    assert "--max_train_steps 2 -> 3" in caplog.text and "--encoder_learning_rate 5e-06 -> 1e-05" in caplog.text
    recorded = json.loads((output_dir / "training_args.json").read_text())
    assert recorded["max_train_steps"] == 3
    (resume,) = recorded["resume_history"]
    assert resume["checkpoint"] == "checkpoint-2"
    assert resume["changed"]["max_train_steps"] == {"before": 2, "after": 3}
    assert resume["changed"]["encoder_learning_rate"] == {"before": 5e-06, "after": 1e-05}
    # The history travels with the later checkpoints.
    assert json.loads((output_dir / "checkpoint-3" / "training_args.json").read_text())["resume_history"] == [resume]


def test_latest_falls_back_to_the_newest_checkpoint_that_loads_and_names_the_unreadable_file(
    workspace, finished_run, tmp_path, caplog
):
    output_dir = shutil.copytree(finished_run, tmp_path / "run")
    weights = output_dir / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a save cut short

    with pytest.raises(OSError, match=f"Checkpoint {output_dir / 'checkpoint-2'} cannot be loaded: {weights}"):
        train(workspace, output_dir, "--resume_from_checkpoint", str(output_dir / "checkpoint-2"))
    with caplog.at_level(logging.INFO):
        resumed = train(workspace, output_dir, "--resume_from_checkpoint", "latest")
    assert f"{weights}: SafetensorError" in caplog.text
    assert f"Falling back to the previous checkpoint, {output_dir / 'checkpoint-1'}" in caplog.text
    assert f"Resumed from {output_dir / 'checkpoint-1'} at step 1" in caplog.text
    # Step 2 was taken again from checkpoint 1: the same weights as the uninterrupted run.
    for name, tensor in load_file(finished_run / "model.safetensors").items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, msg=name)


def test_a_truncated_model_file_is_named(finished_run, tmp_path):
    model = DepthAnythingHFForDepthEstimation.from_pretrained(finished_run)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(OSError, match=f"{weights}: SafetensorError"):
        DepthAnythingHFForDepthEstimation.from_pretrained(tmp_path)


def test_labeled_batch_names_a_mask_that_does_not_match_its_image():
    """A mismatched mask gets the geometry's error, with the sample it belongs to (not a failed stack of the
    batch)."""

    def example(index: int, mask_shape: tuple[int, int]) -> dict:
        return {
            "image": torch.rand(3, 40, 40), "depth": torch.rand(40, 40) + 1.0,
            "valid_mask": torch.ones(mask_shape, dtype=torch.bool), "sky_mask": torch.zeros(mask_shape, dtype=torch.bool),
            "intrinsics": torch.zeros(4), "depth_kind": "depth", "dataset": "d", "id": str(index),
        }  # fmt: skip

    mismatch = r"sample '1' of dataset 'd': valid_mask must have shape \(40, 40\).*got \(40, 39\)"
    with pytest.raises(ValueError, match=mismatch):
        labeled_batch(
            [example(0, (40, 40)), example(1, (40, 39))],
            PairedResizeCropFlip(RESOLUTION),
            torch.device("cpu"),
            torch.Generator().manual_seed(0),
        )
