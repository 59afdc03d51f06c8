"""Resumable data streams, checkpoint save / rotate / resume, and the shared command-line flags."""

import argparse
from pathlib import Path

import datasets
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from depth_anything_hf.data import load_labeled_dataset, sample_to_tensors
from depth_anything_hf.data.specs import DatasetSpec, parse_dataset_spec
from depth_anything_hf.training.arguments import unlabeled_ratio
from depth_anything_hf.training.checkpointing import (
    GeneratorState,
    ProcessStates,
    checkpoint_folder,
    list_checkpoints,
    resume_from_checkpoint,
)
from depth_anything_hf.training import streams
from depth_anything_hf.training.streams import ResumableStream


def _numbers(ids):
    yield from ({"id": number} for number in ids)


def numbers_stream(count: int = 5, prefetch_examples: int = 0) -> ResumableStream:
    """`count` examples, one shard each, shuffled by shard order as the training streams are."""
    dataset = datasets.IterableDataset.from_generator(_numbers, gen_kwargs={"ids": list(range(count))})
    return ResumableStream(dataset.shuffle(seed=3, buffer_size=1), "numbers", prefetch_examples=prefetch_examples)


def ids(examples) -> list[int]:
    return [example["id"] for example in examples]


@pytest.mark.parametrize("prefetch_examples", [0, 2])
def test_a_stream_visits_every_example_once_per_pass_in_a_new_order(prefetch_examples):
    stream = numbers_stream(prefetch_examples=prefetch_examples)
    first_pass, second_pass = ids(stream.take(5)), ids(stream.take(5))
    assert sorted(first_pass) == sorted(second_pass) == list(range(5))
    assert first_pass != second_pass
    assert stream.epoch == 1


# (prefetch before the checkpoint, prefetch after it): a reader process reads ahead, the position is the taken one.
@pytest.mark.parametrize("prefetch", [(0, 0), (3, 3), (3, 0), (0, 1)])
@pytest.mark.parametrize("taken_before_checkpoint", [1, 3, 5, 7])
def test_a_resumed_stream_continues_like_an_uninterrupted_one(taken_before_checkpoint, prefetch):
    uninterrupted = ids(numbers_stream().take(13))
    stream = numbers_stream(prefetch_examples=prefetch[0])
    before = ids(stream.take(taken_before_checkpoint))
    state = stream.state_dict()
    stream.close()
    resumed = numbers_stream(prefetch_examples=prefetch[1])
    resumed.load_state_dict(state)
    after = ids(resumed.take(13 - taken_before_checkpoint))
    resumed.close()
    assert before + after == uninterrupted


def _numbers_then_failure(ids):
    yield from _numbers(ids)
    raise OSError("disk gone")


def test_a_failure_in_the_reader_process_is_raised_with_its_traceback():
    dataset = datasets.IterableDataset.from_generator(_numbers_then_failure, gen_kwargs={"ids": [0, 1]})
    stream = ResumableStream(dataset, "failing", prefetch_examples=1)
    with pytest.raises(RuntimeError, match="(?s)the failing stream's reader process failed.*OSError: disk gone"):
        stream.take(3)


def test_a_killed_reader_process_is_an_error_not_a_hang(monkeypatch):
    monkeypatch.setattr(streams, "_READER_POLL_SECONDS", 0.05)
    stream = numbers_stream(prefetch_examples=1)
    stream.take(1)
    stream._reader.kill()  # as the kernel's OOM killer would
    with pytest.raises(RuntimeError, match="numbers stream's reader process exited .*killed"):
        stream.take(5)


def test_labeled_examples_reach_the_batch_as_the_same_tensors_with_and_without_prefetching(synthetic_rgbd):
    dataset = load_labeled_dataset(str(synthetic_rgbd), streaming=True).take(3)
    read_here = ResumableStream(dataset, "labeled", transform=sample_to_tensors).take(3)
    prefetching = ResumableStream(dataset, "labeled", transform=sample_to_tensors, prefetch_examples=2)
    prefetched = prefetching.take(3)
    prefetching.close()
    expected = [sample_to_tensors(example) for example in dataset]
    for samples in (read_here, prefetched):
        for sample, reference in zip(samples, expected, strict=True):
            assert sample["id"] == reference["id"]
            for name in ("image", "depth", "valid_mask", "sky_mask"):
                assert torch.equal(sample[name], reference[name])


def test_an_empty_stream_is_an_error():
    dataset = datasets.IterableDataset.from_generator(_numbers, gen_kwargs={"ids": []})
    with pytest.raises(ValueError, match="the empty stream"):
        ResumableStream(dataset, "empty").take(1)
    with pytest.raises(TypeError, match="IterableDataset"):
        ResumableStream([1, 2], "a list")


@pytest.fixture
def accelerator():
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


def test_process_states_refuse_another_number_of_processes(accelerator):
    states = ProcessStates(accelerator, augmentation=GeneratorState(0, accelerator.device))
    saved = states.state_dict()
    assert len(saved["per_process"]) == 1
    with pytest.raises(ValueError, match="resume it with 2 processes"):
        states.load_state_dict({"per_process": saved["per_process"] * 2})


def test_checkpoints_rotate_and_resume_weights_optimizer_scheduler_streams_and_generators(accelerator, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=10)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    stream, augmentation = numbers_stream(), GeneratorState(7, accelerator.device)
    accelerator.register_for_checkpointing(ProcessStates(accelerator, numbers=stream, augmentation=augmentation))

    def train_step():
        loss = model(torch.tensor([[float(stream.take(1)[0]["id"]), 1.0, torch.rand(1, generator=augmentation.generator).item()]])).sum()
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()

    (tmp_path / ".checkpoint-9.partial").mkdir()  # what a run killed while saving leaves behind
    for step in (1, 2, 3):
        train_step()
        with checkpoint_folder(accelerator, str(tmp_path), step, total_limit=2) as save_path:
            assert not (tmp_path / f"checkpoint-{step}").exists()  # only complete checkpoints carry the name
            accelerator.save_state(save_path)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]
    expected_weights = [parameter.detach().clone() for parameter in model.parameters()]
    train_step()
    expected_after_one_more = [parameter.detach().clone() for parameter in model.parameters()]
    expected_next_ids = ids(stream.take(4))

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    assert resume_from_checkpoint(accelerator, str(tmp_path), "latest") == 3
    for parameter, expected in zip(model.parameters(), expected_weights):
        torch.testing.assert_close(parameter, expected)
    train_step()  # same optimiser moments, learning rate, data and random draws as before
    for parameter, expected in zip(model.parameters(), expected_after_one_more):
        torch.testing.assert_close(parameter, expected)
    assert ids(stream.take(4)) == expected_next_ids

    assert resume_from_checkpoint(accelerator, str(tmp_path / "empty"), "latest") == 0
    with pytest.raises(ValueError, match="no such checkpoint folder"):
        resume_from_checkpoint(accelerator, str(tmp_path), str(tmp_path / "checkpoint-7"))


def test_dataset_specs_parse_format_path_and_weight():
    assert parse_dataset_spec("data/nyu") == DatasetSpec("data/nyu", 1.0, None)
    assert parse_dataset_spec("data/nyu:2") == DatasetSpec("data/nyu", 2.0, None)
    assert parse_dataset_spec("kitti=/data/kitti:0.5") == DatasetSpec("/data/kitti", 0.5, "kitti")
    assert parse_dataset_spec("user/rgbd") == DatasetSpec("user/rgbd", 1.0, None)
    assert parse_dataset_spec("C:/data/x") == DatasetSpec("C:/data/x", 1.0, None)  # a colon that is no weight
    assert str(parse_dataset_spec("kitti=/data/kitti:0.5")) == "kitti=/data/kitti:0.5"
    assert parse_dataset_spec("/data/a=b:3") == DatasetSpec("/data/a=b", 3.0, None)  # an "=" inside a path
    for bad in ("", "data:0", "data:-1", "data:inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_dataset_spec(bad)
    assert unlabeled_ratio("inf") == float("inf")
    with pytest.raises(argparse.ArgumentTypeError):
        unlabeled_ratio("0")


def test_the_scripts_share_their_flags(capsys):
    import importlib.util

    scripts = Path(__file__).resolve().parents[1] / "training_scripts"
    parsers = {}
    for name in ("train_teacher", "train_student"):
        spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        parsers[name] = module.parse_args
    common = ["--output_dir", "out", "--dataset", "d:2", "--resolution", "56", "--encoder_init", "none"]
    teacher = parsers["train_teacher"](common)
    student = parsers["train_student"](common + ["--pseudo_labels", "p", "--no_feature_alignment"])
    for flag in ("dataset", "resolution", "encoder_init", "seed", "mixed_precision", "checkpointing_steps"):
        assert getattr(teacher, flag) == getattr(student, flag)
    assert teacher.decoder_learning_rate == pytest.approx(10 * teacher.encoder_learning_rate)
    assert (student.num_labeled, student.num_unlabeled) == (2, 4)
    # The paper's teacher trains 20 epochs; the student sees each unlabeled image once.
    assert (teacher.num_train_epochs, student.num_train_epochs) == (20, 1)
    with pytest.raises(SystemExit):
        parsers["train_teacher"](common[:2] + ["--resolution", "50"])
    for bad_student_flags, message in (
        (["--pseudo_labels", "p", "--teacher", "t"], "either --pseudo_labels"),
        (["--teacher", "t"], "give at least one --unlabeled_dataset"),
        (["--pseudo_labels", "p", "--train_batch_size", "4"], "ratio 1:2"),
        (["--pseudo_labels", "p", "--alpha", "1.5"], "--alpha"),
        (["--pseudo_labels", "p", "--ignore_largest_fraction", "1"], "--ignore_largest_fraction"),
        (["--pseudo_labels", "p", "--encoder_init", "none"], "feature alignment needs a DINOv2"),
    ):
        with pytest.raises(SystemExit):
            parsers["train_student"](common[:-2] + bad_student_flags)
        assert message in capsys.readouterr().err
