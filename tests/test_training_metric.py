"""training_scripts/train_metric.py at toy scale, as users run it (subprocesses): a 40-step metric fine-tuning of a
tiny relative model that validates every 10 steps with the metric protocol, keeps the best model, writes the final
metrics for the model card, resumes exactly, and whose output the depth-estimation pipeline runs as metres."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from test_training_scripts import SCRIPTS, run
from transformers import pipeline

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.evaluation.presets import get_preset
from depth_anything_hf.evaluation.runner import load_evaluation_samples, score_samples
from depth_anything_hf.hub import model_card_for_checkpoint

pytestmark = pytest.mark.slow

MAX_DEPTH = 20.0
STEPS, VALIDATION_STEPS, CHECKPOINTING_STEPS = 40, 10, 20
VALIDATION_LINE = re.compile(r"Step (\d+): validation abs_rel ([0-9.]+)")


@pytest.fixture(scope="module")
def relative_checkpoint(tmp_path_factory, tiny_config) -> Path:
    path = tmp_path_factory.mktemp("relative")
    torch.manual_seed(0)
    DepthAnythingHFForDepthEstimation(tiny_config(image_size=28, version="v2")).save_pretrained(path)
    (path / "README.md").write_text("---\nlicense: apache-2.0\n---\n")  # the card of a fine-tune inherits it
    return path


def metric_arguments(init_from: Path, output_dir: Path, synthetic_rgbd: Path) -> list[str]:
    return [
        str(SCRIPTS / "train_metric.py"), "--init_from", str(init_from), "--max_depth", str(MAX_DEPTH),
        "--dataset", str(synthetic_rgbd), "--dataset_split", "train[:-10%]",
        "--validation_dataset", f"rgbd_folder={synthetic_rgbd}", "--validation_split", "train[-10%:]",
        "--max_validation_images", "6", "--validation_steps", str(VALIDATION_STEPS),
        "--resolution", "28", "--train_batch_size", "2", "--max_train_steps", str(STEPS),
        "--checkpointing_steps", str(CHECKPOINTING_STEPS), "--encoder_learning_rate", "1e-3",
        "--report_to", "none", "--output_dir", str(output_dir),
    ]  # fmt: skip


def validated_abs_rel(stderr: str) -> dict[int, float]:
    return {int(step): float(value) for step, value in VALIDATION_LINE.findall(stderr)}


@pytest.fixture(scope="module")
def metric_run(relative_checkpoint, tmp_path_factory, synthetic_rgbd):
    output_dir = tmp_path_factory.mktemp("metric")
    completed = run(metric_arguments(relative_checkpoint, output_dir, synthetic_rgbd))
    return output_dir, validated_abs_rel(completed.stderr)


def test_validates_keeps_the_best_model_and_reports_the_final_metrics(metric_run):
    output_dir, abs_rel = metric_run
    assert sorted(abs_rel) == [10, 20, 30, 40]
    assert abs_rel[40] < abs_rel[10]  # a 40-step toy run lowers the held-out AbsRel

    best_step = min(abs_rel, key=abs_rel.get)
    best_results = json.loads((output_dir / "best" / "results.json").read_text())
    assert best_results["step"] == best_step
    assert best_results["evaluations"][0]["metrics"]["abs_rel"] == pytest.approx(abs_rel[best_step], abs=1e-4)
    assert (output_dir / "best" / "model.safetensors").is_file()

    final = json.loads((output_dir / "results.json").read_text())
    evaluation = final["evaluations"][0]
    assert final["step"] == STEPS and final["depth_estimation_type"] == "metric"
    assert evaluation["protocol"] == "metric" and evaluation["split"] == "train[-10%:]"
    assert evaluation["num_images"] == 6 and evaluation["settings"]["max_depth"] == MAX_DEPTH
    assert evaluation["metrics"]["abs_rel"] == pytest.approx(abs_rel[STEPS], abs=1e-4)
    card = str(model_card_for_checkpoint(output_dir, "user/metric-toy"))
    assert f"{round(evaluation['metrics']['abs_rel'], 4)}" in card


def test_the_pipeline_runs_the_output_as_metric_depth(metric_run, synthetic_rgbd):
    output_dir, _ = metric_run
    estimator = pipeline("depth-estimation", model=str(output_dir))
    assert estimator.model.config.depth_estimation_type == "metric"
    assert estimator.image_processor.depth_estimation_type == "metric"
    image = Image.open(synthetic_rgbd / "train_1_0000.jpg")
    depth = estimator(image)["predicted_depth"]
    assert depth.shape == (image.height, image.width)
    assert depth.min() > 0 and depth.max() <= MAX_DEPTH  # Sigmoid x max_depth, in metres
    outputs = {"predicted_depth": depth[None]}
    assert estimator.image_processor.post_process_depth_estimation(outputs)[0]["depth_type"] == "metric_depth"


def test_a_run_resumed_from_its_checkpoint_ends_like_the_uninterrupted_one(
    relative_checkpoint, metric_run, tmp_path, synthetic_rgbd
):
    output_dir, abs_rel = metric_run
    shutil.copytree(output_dir / f"checkpoint-{CHECKPOINTING_STEPS}", tmp_path / f"checkpoint-{CHECKPOINTING_STEPS}")
    arguments = metric_arguments(relative_checkpoint, tmp_path, synthetic_rgbd)
    resumed_run = run([*arguments, "--resume_from_checkpoint", "latest"])
    assert f"at step {CHECKPOINTING_STEPS}" in resumed_run.stderr
    resumed_abs_rel = validated_abs_rel(resumed_run.stderr)
    assert resumed_abs_rel == {step: abs_rel[step] for step in (30, 40)}
    # The best AbsRel so far came back with the checkpoint: a later model is kept only if it beats it.
    if min(abs_rel[30], abs_rel[40]) >= min(abs_rel[10], abs_rel[20]):
        assert not (tmp_path / "best").exists()
    resumed, uninterrupted = load_file(tmp_path / "model.safetensors"), load_file(output_dir / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=1e-5, atol=1e-6, msg=name)


def test_two_cpu_processes_validate_their_shares_as_one_process_would(relative_checkpoint, tmp_path, synthetic_rgbd):
    # torchrun, gloo on CPU: each process scores 3 of the 6 validation images; the gathered metrics must be those
    # of the saved model scored on all 6 in this one process, and the run must end (no hang at teardown).
    arguments = metric_arguments(relative_checkpoint, tmp_path, synthetic_rgbd)
    arguments[arguments.index("--max_train_steps") + 1] = str(CHECKPOINTING_STEPS)
    run(arguments, launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"))

    evaluation = json.loads((tmp_path / "results.json").read_text())["evaluations"][0]
    assert evaluation["num_images"] == 6
    preset = get_preset("rgbd_folder")
    model = DepthAnythingHFForDepthEstimation.from_pretrained(tmp_path).eval()
    samples = load_evaluation_samples(preset, str(synthetic_rgbd), "train[-10%:]").take(6)
    averager = score_samples(
        model,
        DepthAnythingHFImageProcessor.from_pretrained(tmp_path),
        samples,
        ["metric"],
        prediction_type="depth",
        min_depth=preset.min_depth,
        depth_cap=min(preset.max_depth, MAX_DEPTH),
        crop=preset.crop,
        disable_progress=True,
    )["metric"]
    expected = averager.compute()["metrics"]
    for name, value in evaluation["metrics"].items():
        assert value == pytest.approx(expected[name], rel=1e-4, abs=1e-6), name
    assert (tmp_path / f"checkpoint-{CHECKPOINTING_STEPS}" / "random_states_1.pkl").is_file()  # both checkpointed
    assert (tmp_path / "best" / "model.safetensors").is_file()
