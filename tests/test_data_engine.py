"""The data engine: training_scripts/pseudo_label.py and depth_anything_hf.data_engine."""

import importlib.resources
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from PIL import Image

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.data import decode_rgb
from depth_anything_hf.data.pseudo_labels import load_pseudo_labels, pseudo_labeled_samples
from depth_anything_hf.data_engine.labeling import predict_pseudo_disparity, teacher_pixel_values, teacher_sha256
from depth_anything_hf.data_engine.publishing import push_pseudo_labels_to_hub
from depth_anything_hf.data_engine.shards import ProgressRecord, load_skipped_images, save_skipped_images
from depth_anything_hf.image_processing_depth_anything_hf import DepthAnythingHFImageProcessor

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training_scripts" / "pseudo_label.py"
# Photos of several sizes and aspect ratios (landscape, portrait, square), RGB, RGBA and grayscale, one in a
# subfolder. Seven, so that two processes split this source image by image rather than file by file.
MVTB_PHOTOS = (
    "butterfly.jpg", "58060.png", "tomato_124.png", "image3.jpg", "flowers9.png", "seq/im.004.png", "tomato_14.png"
)
NUM_IMAGES = 18 + len(MVTB_PHOTOS)
TEACHER_RESOLUTION = 56
BATCH_SIZE = 3
SHARD_SIZE = 4  # not a multiple of BATCH_SIZE: batches must stop at shard ends
SUBPROCESS_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _load_script():
    spec = importlib.util.spec_from_file_location("pseudo_label", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(arguments: list[str]) -> None:
    try:
        _load_script().main(arguments)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def sources(tmp_path_factory, synthetic_rgbd) -> list[Path]:
    """Two unlabeled folders: 18 synthetic frames and 7 real photos."""
    root = tmp_path_factory.mktemp("unlabeled")
    frames, photos = root / "frames", root / "photos"
    frames.mkdir()
    (photos / "seq").mkdir(parents=True)
    for frame in sorted(synthetic_rgbd.glob("*.jpg"))[:18]:
        shutil.copyfile(frame, frames / frame.name)
    pytest.importorskip("mvtbdata", reason="mvtbdata is not installed (dev extra): photos of several modes")
    mvtb_images = importlib.resources.files("mvtbdata") / "images"
    for name in MVTB_PHOTOS:
        shutil.copyfile(mvtb_images / name, photos / name)
    return [frames, photos]


def source_files(sources: list[Path]) -> dict[tuple[str, str], Path]:
    """(dataset, id) -> file of every unlabeled image, ids being paths relative to their folder."""
    return {
        (str(source), path.relative_to(source).as_posix()): path
        for source in sources
        for path in source.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, tiny_config) -> Path:
    torch.manual_seed(0)
    teacher = DepthAnythingHFForDepthEstimation(tiny_config())
    with torch.no_grad():
        teacher.head.conv3.bias.fill_(1.0)
    directory = tmp_path_factory.mktemp("teacher")
    teacher.save_pretrained(directory)
    DepthAnythingHFImageProcessor(size=TEACHER_RESOLUTION).save_pretrained(directory)
    return directory


def script_arguments(sources, teacher_dir, output_dir) -> list[str]:
    arguments = ["--teacher", str(teacher_dir), "--output_dir", str(output_dir)]
    for source in sources:
        arguments += ["--unlabeled_dataset", str(source)]
    return arguments + ["--batch_size", str(BATCH_SIZE), "--shard_size", str(SHARD_SIZE)]


@pytest.fixture(scope="module")
def labeled_dir(sources, teacher_dir, tmp_path_factory) -> Path:
    """An uninterrupted single-process run."""
    output_dir = tmp_path_factory.mktemp("pseudo_labels")
    run_in_process(script_arguments(sources, teacher_dir, output_dir))
    return output_dir


def load_rows(output_dir: Path) -> datasets.Dataset:
    return datasets.load_dataset("parquet", data_dir=str(output_dir), split="train").cast_column(
        "image", datasets.Image(decode=False)
    )


def test_written_dataset_holds_original_bytes_and_the_teachers_clean_prediction(labeled_dir, sources, teacher_dir):
    rows = load_rows(labeled_dir)
    assert {name: str(feature) for name, feature in rows.features.items()} == {
        "image": "Image(mode=None, decode=False)",
        "disparity": "List(List(Value('float16')))",
        "original_height": "Value('int32')",
        "original_width": "Value('int32')",
        "dataset": "Value('string')",
        "id": "Value('string')",
        "teacher": "Value('string')",
        "teacher_sha256": "Value('string')",
    }
    files = source_files(sources)
    keys = list(zip(rows["dataset"], rows["id"]))
    assert sorted(keys) == sorted(files) and len(keys) == NUM_IMAGES

    teacher = DepthAnythingHFForDepthEstimation.from_pretrained(teacher_dir).eval()
    processor = DepthAnythingHFImageProcessor.from_pretrained(teacher_dir)
    sizes = set()
    for row in rows.with_format("numpy"):
        path = files[(row["dataset"], row["id"])]
        assert row["image"]["bytes"] == path.read_bytes()
        with Image.open(path) as image:
            assert (row["original_height"], row["original_width"]) == (image.height, image.width)
        # Reference: one image at a time through transformers-style processing and the teacher, in float32.
        pixel_values = processor(decode_rgb(path.read_bytes()), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            expected = teacher(pixel_values).predicted_depth[0]
        disparity = torch.from_numpy(np.asarray(row["disparity"]))
        assert disparity.shape == expected.shape and min(disparity.shape) == TEACHER_RESOLUTION
        # Not a constant map: a fresh head starts near its last bias (1.0) with a spread of about 1e-3 to 1e-2.
        assert disparity.std() > 1e-3
        torch.testing.assert_close(disparity, expected, rtol=2e-3, atol=2e-3)
        sizes.add(tuple(disparity.shape))
    assert len(sizes) >= 3, "the sources must exercise images of different processed sizes"
    assert set(rows["teacher"]) == {str(teacher_dir)}
    assert set(rows["teacher_sha256"]) == {teacher_sha256(teacher)}


def test_shards_have_deterministic_names_and_sizes_and_a_dataset_card(labeled_dir):
    shards = sorted(path.name for path in (labeled_dir / "data").iterdir())
    assert shards == [f"train-00000-of-00001-{index:06d}.parquet" for index in range(7)]
    rows_per_shard = [len(datasets.Dataset.from_parquet(str(labeled_dir / "data" / name))) for name in shards]
    assert rows_per_shard == [SHARD_SIZE] * 6 + [1]
    card_dataset = datasets.load_dataset(str(labeled_dir), split="train")
    assert card_dataset.info.splits["train"].num_examples == NUM_IMAGES
    assert card_dataset.features["image"] == datasets.Image()


def test_two_processes_cover_every_image_exactly_once(sources, teacher_dir, labeled_dir, tmp_path):
    output_dir = tmp_path / "two_processes"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SCRIPT)]
    result = subprocess.run(
        command + script_arguments(sources, teacher_dir, output_dir),
        cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = load_rows(output_dir)
    keys = list(zip(rows["dataset"], rows["id"]))
    assert len(keys) == len(set(keys)) == NUM_IMAGES and set(keys) == set(source_files(sources))
    shards = [path.name for path in (output_dir / "data").iterdir()]
    per_process = {
        rank: datasets.concatenate_datasets(
            [datasets.Dataset.from_parquet(str(output_dir / "data" / name)) for name in shards if name.startswith(f"train-{rank:05d}-of-00002")]
        )
        for rank in (0, 1)
    }
    # Frames: 18 files, 9 per process; photos: 7 files, every other image, 4 and 3.
    assert (len(per_process[0]), len(per_process[1])) == (13, 12)
    reference = {(row["dataset"], row["id"]): row["disparity"] for row in load_rows(labeled_dir).with_format("numpy")}
    for row in rows.with_format("numpy"):
        np.testing.assert_allclose(row["disparity"], reference[(row["dataset"], row["id"])], rtol=2e-3, atol=2e-3)


def test_killed_run_resumes_without_lost_or_duplicated_images(sources, teacher_dir, labeled_dir, tmp_path):
    output_dir = tmp_path / "killed"
    arguments = script_arguments(sources, teacher_dir, output_dir)
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), *arguments], cwd=REPO, env=SUBPROCESS_ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    try:
        while not list((output_dir / "data").glob("train-*.parquet")) and process.poll() is None:
            assert time.monotonic() < deadline, "no shard was written in 90 s"
            time.sleep(0.005)
        assert process.poll() is None, "the run finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    shards_after_kill = list((output_dir / "data").glob("train-*.parquet"))
    assert 1 <= len(shards_after_kill) < 7

    run_in_process(arguments)

    resumed, uninterrupted = load_rows(output_dir), load_rows(labeled_dir)
    keys = list(zip(resumed["dataset"], resumed["id"]))
    assert len(keys) == len(set(keys)) == NUM_IMAGES
    assert sorted(path.name for path in (output_dir / "data").iterdir()) == sorted(
        path.name for path in (labeled_dir / "data").iterdir()
    ), "temporary files or extra shards were left behind"
    for resumed_row, uninterrupted_row in zip(resumed.with_format("numpy"), uninterrupted.with_format("numpy")):
        assert (resumed_row["dataset"], resumed_row["id"]) == (uninterrupted_row["dataset"], uninterrupted_row["id"])
        np.testing.assert_array_equal(resumed_row["disparity"], uninterrupted_row["disparity"])


def test_images_are_labelled_in_a_seeded_order_not_in_file_order(labeled_dir, sources):
    """The student reads a shard's rows in order, so rows in file order made a batch and its CutMix partners
    neighbouring (often same-scene) frames (issue #9). The killed-and-resumed run above gives the same order."""
    rows = load_rows(labeled_dir)
    frame_ids = [image_id for dataset, image_id in zip(rows["dataset"], rows["id"]) if dataset == str(sources[0])]
    file_order = sorted(path.name for path in sources[0].iterdir())
    assert sorted(frame_ids) == file_order
    position = {name: index for index, name in enumerate(file_order)}
    neighbours = sum(position[after] - position[before] == 1 for before, after in zip(frame_ids, frame_ids[1:]))
    # In file order all 17 pairs of successive rows are neighbouring files; a random order has about one.
    assert neighbours <= 4, frame_ids


def thin_image_source(root: Path, synthetic_rgbd: Path) -> Path:
    """Three frames and a 2x60 strip (30:1), which the teacher's processor refuses to resize."""
    root.mkdir()
    for frame in sorted(synthetic_rgbd.glob("*.jpg"))[:3]:
        shutil.copyfile(frame, root / frame.name)
    Image.fromarray(np.full((2, 60, 3), 128, np.uint8)).save(root / "strip.png")
    return root


def test_an_image_the_teacher_cannot_label_is_skipped_counted_and_reported(teacher_dir, tmp_path, caplog, synthetic_rgbd):
    source, output_dir = thin_image_source(tmp_path / "photos", synthetic_rgbd), tmp_path / "labels"
    with caplog.at_level(logging.WARNING):
        run_in_process(script_arguments([source], teacher_dir, output_dir))
    assert sorted(load_rows(output_dir)["id"]) == sorted(path.name for path in source.glob("*.jpg"))
    assert any("'strip.png'" in record.getMessage() and "max_aspect_ratio" in record.getMessage() for record in caplog.records)
    assert load_skipped_images(output_dir) == {str(source): {"strip.png"}}
    assert "Skipped 1 samples" in (output_dir / "README.md").read_text()


def test_skipped_images_are_counted_once_across_resumes_and_processes(tmp_path):
    save_skipped_images(tmp_path, 0, 2, 0, {"photos": {"strip.png"}})
    # Killed before shard 0 was committed, the resumed process rereads it and skips the same image again.
    save_skipped_images(tmp_path, 0, 2, 0, {"photos": {"strip.png"}})
    # With a source that does not split by shards, every process reads (and skips) every image.
    save_skipped_images(tmp_path, 1, 2, 0, {"photos": {"strip.png", "broken.jpg"}, "frames": {"0001.png"}})
    assert load_skipped_images(tmp_path) == {"photos": {"strip.png", "broken.jpg"}, "frames": {"0001.png"}}


def test_resuming_over_a_changed_source_listing_is_refused(teacher_dir, tmp_path, synthetic_rgbd):
    source, output_dir = thin_image_source(tmp_path / "photos", synthetic_rgbd), tmp_path / "labels"
    arguments = script_arguments([source], teacher_dir, output_dir)
    run_in_process(arguments)
    shutil.copyfile(source / "strip.png", source / "another.png")
    with pytest.raises(ValueError, match=r"the listing of \[.*photos'\] changed since it was written"):
        run_in_process(arguments)
    (source / "another.png").unlink()
    run_in_process(arguments)  # the same files again: resumes (here: finds the run finished)


@pytest.mark.parametrize("streaming", [True, False])
def test_reader_gives_the_labelled_image_and_disparity(labeled_dir, sources, teacher_dir, streaming):
    files = source_files(sources)
    teacher = DepthAnythingHFForDepthEstimation.from_pretrained(teacher_dir).eval()
    processor = DepthAnythingHFImageProcessor.from_pretrained(teacher_dir)
    stored = {(row["dataset"], row["id"]): row["disparity"] for row in load_rows(labeled_dir).with_format("numpy")}
    samples = list(load_pseudo_labels(labeled_dir, streaming=streaming))
    assert sorted((sample["dataset"], sample["id"]) for sample in samples) == sorted(files)
    for sample in samples:
        path = files[(sample["dataset"], sample["id"])]
        rgb = decode_rgb(path.read_bytes())
        expected_image = processor(rgb, do_normalize=False, return_tensors="pt")["pixel_values"][0]
        assert sample["image"].dtype == torch.float32 and torch.equal(sample["image"], expected_image)
        assert sample["disparity"].dtype == torch.float32
        assert torch.equal(sample["disparity"], torch.from_numpy(stored[(sample["dataset"], sample["id"])]))
        assert sample["original_size"].tolist() == [rgb.height, rgb.width]
        # The student's online teacher mode on the reader's image gives the stored target.
        online = predict_pseudo_disparity(teacher, teacher_pixel_values(sample["image"][None], processor))[0]
        torch.testing.assert_close(online.float(), sample["disparity"], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("streaming", [True, False])
def test_reader_reads_several_folders_one_after_another(labeled_dir, sources, streaming):
    samples = load_pseudo_labels([labeled_dir, str(labeled_dir)], streaming=streaming)
    keys = [(sample["dataset"], sample["id"]) for sample in samples]
    assert sorted(keys) == sorted(list(source_files(sources)) * 2)
    assert samples.n_shards == 2 * 7


def test_reader_accepts_the_parquet_files_loaded_with_datasets(labeled_dir):
    data_files = sorted(str(path) for path in (labeled_dir / "data").glob("*.parquet"))
    loaded = datasets.load_dataset("parquet", data_files=data_files, split="train", streaming=True)
    first = next(iter(pseudo_labeled_samples(loaded)))
    assert first["image"].shape[1:] == first["disparity"].shape
    with pytest.raises(ValueError, match="lacks the columns"):
        pseudo_labeled_samples(loaded.remove_columns(["disparity"]))
    with pytest.raises(TypeError, match="datasets.Dataset or IterableDataset"):
        pseudo_labeled_samples(datasets.DatasetDict({"train": datasets.Dataset.from_dict({"id": ["a"]})}))
    with pytest.raises(ValueError, match="holds no pseudo-label shards"):
        load_pseudo_labels(labeled_dir / "data")


def test_predict_pseudo_disparity_is_float16_under_no_grad_and_refuses_a_training_teacher(tiny_model):
    pixel_values = torch.randn(2, 3, 28, 42, generator=torch.Generator().manual_seed(0))
    disparity = predict_pseudo_disparity(tiny_model, pixel_values.requires_grad_())
    assert disparity.dtype == torch.float16 and disparity.shape == (2, 28, 42) and not disparity.requires_grad
    with torch.no_grad():
        expected = tiny_model(pixel_values).predicted_depth
    torch.testing.assert_close(disparity, expected.half())
    # bf16 autocast is set by the function itself, whatever the caller's context.
    bf16 = predict_pseudo_disparity(tiny_model, pixel_values, autocast_dtype=torch.bfloat16)
    assert not torch.equal(bf16, disparity)
    torch.testing.assert_close(bf16.float(), expected, rtol=0.05, atol=0.05 * expected.abs().max().item())
    with pytest.raises(ValueError, match=r"\[B, 3, h, w\]"):
        predict_pseudo_disparity(tiny_model, pixel_values[0])
    with pytest.raises(ValueError, match="training mode"):
        predict_pseudo_disparity(tiny_model.train(), pixel_values)


def test_teacher_sha256_follows_the_weights(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    reloaded = DepthAnythingHFForDepthEstimation.from_pretrained(tmp_path)
    assert teacher_sha256(reloaded) == teacher_sha256(tiny_model)
    with torch.no_grad():
        reloaded.head.conv3.bias[0] += 1e-3
    assert teacher_sha256(reloaded) != teacher_sha256(tiny_model)


def test_resuming_refuses_other_arguments_or_another_number_of_processes(tmp_path):
    ProgressRecord(rank=0, world_size=2, run={"batch_size": 4, "teacher": "t"}, shards_written=3).save(tmp_path)
    resumed = ProgressRecord.resume_or_start(tmp_path, 0, 2, {"batch_size": 4, "teacher": "t"})
    assert resumed.shards_written == 3
    assert ProgressRecord.resume_or_start(tmp_path, 1, 2, {"batch_size": 4, "teacher": "t"}).shards_written == 0
    with pytest.raises(ValueError, match="batch_size"):
        ProgressRecord.resume_or_start(tmp_path, 0, 2, {"batch_size": 8, "teacher": "t"})
    with pytest.raises(ValueError, match="holds a run with 2 processes"):
        ProgressRecord.resume_or_start(tmp_path, 0, 3, {"batch_size": 4, "teacher": "t"})


class RecordingHubApi:
    """An HfApi double: records the calls and lists the files `upload_folder` would upload."""

    def __init__(self):
        self.calls = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, folder_path, allow_patterns, **kwargs):
        from huggingface_hub.utils import filter_repo_objects

        files = [path.relative_to(folder_path).as_posix() for path in Path(folder_path).rglob("*") if path.is_file()]
        self.uploaded = sorted(filter_repo_objects(files, allow_patterns=allow_patterns))
        self.calls.append(("upload_folder", kwargs))


def test_push_to_hub_uploads_the_card_and_shards_only(labeled_dir, tmp_path):
    output_dir = shutil.copytree(labeled_dir, tmp_path / "pseudo_labels")
    (output_dir / "data" / ".train-00000-of-00001-000009.parquet.tmp").write_bytes(b"half-written")
    api = RecordingHubApi()
    push_pseudo_labels_to_hub(output_dir, "user/pseudo-labels", api=api)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert all(kwargs["repo_type"] == "dataset" and kwargs["repo_id"] == "user/pseudo-labels" for _, kwargs in api.calls)
    assert api.uploaded == ["README.md"] + [f"data/train-00000-of-00001-{index:06d}.parquet" for index in range(7)]
