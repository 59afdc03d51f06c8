"""The training scripts end to end at toy scale, as users run them (subprocesses): teacher -> pseudo_label.py ->
student, both checkpoints in the depth-estimation pipeline, the logged values, a student killed after a
checkpoint and resumed, and two CPU processes (gloo) keeping identical parameters."""

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import Dinov2Config, Dinov2Model, pipeline

import depth_anything_hf  # noqa: F401  (registers the Auto classes the pipeline resolves)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "training_scripts"
RESOLUTION = 28
# Eight photos in pseudo-label shards of two: two processes split the four shards evenly, and no run below ends
# a pass over them (each pass end of a parquet stream costs `datasets` a 5 s thread shutdown).
NUM_PHOTOS = 8
# TensorBoard is an optional dependency: without it the runs log nowhere and only the logging test is skipped.
REPORT_TO = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
ENVIRONMENT = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
}


def run(arguments: list[str], launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, *launcher, *arguments], env=ENVIRONMENT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_config, synthetic_rgbd, write_unlabeled_photos):
    """A tiny model config, a tiny DINOv2 (`--encoder_init`), small photos (`--unlabeled_dataset`) and a link to the
    shared RGB-D folder (`--dataset`)."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "rgbd").symlink_to(synthetic_rgbd, target_is_directory=True)
    tiny_config(image_size=RESOLUTION, version="v2").to_json_file(root / "tiny.json")
    torch.manual_seed(0)
    dinov2_config = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=RESOLUTION, initializer_range=0.15
    )
    Dinov2Model(dinov2_config).save_pretrained(root / "dinov2")
    write_unlabeled_photos(root / "photos", NUM_PHOTOS, longest_side=48)
    return root


def model_arguments(workspace: Path) -> list[str]:
    return [
        "--model_config", str(workspace / "tiny.json"),
        "--encoder_init", str(workspace / "dinov2"),
        "--resolution", str(RESOLUTION),
        "--dataset", str(workspace / "rgbd"),
        "--report_to", REPORT_TO,
        "--logging_steps", "1",
        "--image_logging_steps", "2",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def teacher(workspace):
    output_dir = workspace / "teacher"
    run([str(SCRIPTS / "train_teacher.py"), *model_arguments(workspace), "--output_dir", str(output_dir),
         "--train_batch_size", "2", "--max_train_steps", "4", "--checkpointing_steps", "2"])  # fmt: skip
    return output_dir


@pytest.fixture(scope="module")
def pseudo_labels(workspace, teacher):
    output_dir = workspace / "pseudo_labels"
    run([str(SCRIPTS / "pseudo_label.py"), "--teacher", str(teacher), "--unlabeled_dataset", str(workspace / "photos"),
         "--output_dir", str(output_dir), "--batch_size", "4", "--shard_size", "2"])  # fmt: skip
    return output_dir


def student_arguments(workspace: Path, unlabeled_arguments: list[str], output_dir: Path, max_train_steps: int = 4) -> list[str]:
    """`unlabeled_arguments`: `["--pseudo_labels", DIR]` (precomputed) or `["--teacher", DIR, "--unlabeled_dataset", DIR]`."""
    return [
        str(SCRIPTS / "train_student.py"), *model_arguments(workspace), *unlabeled_arguments,
        "--output_dir", str(output_dir), "--train_batch_size", "3", "--max_train_steps", str(max_train_steps),
        "--checkpointing_steps", "2", "--seed", "3",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def student(workspace, pseudo_labels):
    output_dir = workspace / "student"
    run(student_arguments(workspace, ["--pseudo_labels", str(pseudo_labels)], output_dir))
    return output_dir


def logged_scalars_and_images(output_dir: Path) -> tuple[set[str], set[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars, images = set(), set()
    for events_file in (output_dir / "logs").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events_file))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
        images |= set(accumulator.Tags()["images"])
    return scalars, images


def test_teacher_and_student_checkpoints_run_in_the_depth_estimation_pipeline(workspace, teacher, student):
    photo = Image.open(min((workspace / "photos").iterdir()))
    for output_dir in (teacher, student):
        assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= {p.name for p in output_dir.iterdir()}
        result = pipeline("depth-estimation", model=str(output_dir), trust_remote_code=False)(photo)
        assert result["depth"].size == photo.size
        assert torch.isfinite(result["predicted_depth"]).all()

    # The student was re-initialised from DINOv2, not from the teacher.
    teacher_weights, student_weights = load_file(teacher / "model.safetensors"), load_file(student / "model.safetensors")
    assert not torch.equal(teacher_weights["head.conv3.weight"], student_weights["head.conv3.weight"])


def test_each_loss_the_learning_rates_throughput_and_depth_maps_are_logged(teacher, student):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (dev extra): nothing was logged")
    teacher_scalars, teacher_images = logged_scalars_and_images(teacher)
    assert {"loss/labeled", "lr_encoder", "lr_decoder", "images_per_second"} <= teacher_scalars
    assert "labeled" in teacher_images
    student_scalars, student_images = logged_scalars_and_images(student)
    losses = {"loss/labeled", "loss/unlabeled", "loss/feature_alignment", "loss/total"}
    assert losses | {"lr_encoder", "lr_decoder", "images_per_second"} <= student_scalars
    assert "pseudo_labeled" in student_images


def test_a_killed_student_resumes_like_an_uninterrupted_run(workspace, pseudo_labels, student, tmp_path):
    # Reader processes read ahead here (the uninterrupted run read in its own process): same examples, same order.
    prefetching = ["--pseudo_labels", str(pseudo_labels), "--prefetch_examples", "3"]
    arguments = student_arguments(workspace, prefetching, tmp_path)
    process = subprocess.Popen(
        [sys.executable, *arguments], env=ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in process.stdout:
        if f"Saved state to {tmp_path / 'checkpoint-2'}" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=300)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL, "the run ended before its first checkpoint was seen"
    assert not (tmp_path / "model.safetensors").exists()

    resumed_run = run([*arguments, "--resume_from_checkpoint", "latest"])
    # It went on from the checkpoint: a run started over with the same seed would end with the same weights.
    assert f"Resumed from {tmp_path / 'checkpoint-2'} at step 2" in resumed_run.stderr
    assert f"Saved state to {tmp_path / 'checkpoint-2'}" not in resumed_run.stderr
    resumed, uninterrupted = load_file(tmp_path / "model.safetensors"), load_file(student / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=1e-5, atol=1e-6, msg=name)


def test_two_cpu_processes_keep_identical_parameters(workspace, teacher, tmp_path):
    # The script's own main, run by torchrun (gloo on CPU), with the teacher labelling online; each process then
    # saves its copy of the model. The process group must be destroyed with no DistributedDataParallel wrapper
    # left holding it: one that frees it later was seen to hang a finished process in gloo's destructor.
    wrapper = tmp_path / "train_and_save_each_rank.py"
    wrapper.write_text(
        "import gc, os, sys, torch\n"
        "from torch.nn.parallel import DistributedDataParallel\n"
        "destroy_process_group = torch.distributed.destroy_process_group\n"
        "def destroy_after_ddp(*args, **kwargs):\n"
        "    gc.collect()\n"
        "    alive = sum(isinstance(thing, DistributedDataParallel) for thing in gc.get_objects())\n"
        "    assert alive == 0, f'{alive} DistributedDataParallel wrapper(s) outlive the process group'\n"
        "    destroy_process_group(*args, **kwargs)\n"
        "torch.distributed.destroy_process_group = destroy_after_ddp\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "import train_student\n"
        "model = train_student.main(train_student.parse_args(sys.argv[1:]))\n"
        f"torch.save(model.state_dict(), os.path.join({str(tmp_path)!r}, f\"rank{{os.environ['RANK']}}.pt\"))\n"
    )
    output_dir = tmp_path / "student"
    online = ["--teacher", str(teacher), "--unlabeled_dataset", str(workspace / "photos")]
    arguments = student_arguments(workspace, online, output_dir, max_train_steps=2)[1:]
    run([str(wrapper), *arguments], launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"))

    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    saved = load_file(output_dir / "model.safetensors")
    assert all(torch.equal(saved[name], rank0[name]) for name in saved)
    assert (output_dir / "checkpoint-2" / "random_states_1.pkl").is_file()  # both processes checkpointed
    # The steps did train: the encoder left its DINOv2 initialisation.
    dinov2 = load_file(workspace / "dinov2" / "model.safetensors")
    assert not torch.equal(saved["encoder.norm.weight"], dinov2["layernorm.weight"])
