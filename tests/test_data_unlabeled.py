"""Unlabeled image streams: folders, tar shards and `datasets` sources, with stable ids."""

import collections
import io
import logging
import tarfile
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from depth_anything_hf.data.mixing import shard_for_process
from depth_anything_hf.data.skipping import skipped_sample_counts, skipped_samples_summary
from depth_anything_hf.data.unlabeled import load_unlabeled_images, unlabeled_images, unlabeled_sources_fingerprint


def _encoded(image: Image.Image, file_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format)
    return buffer.getvalue()


def _solid(colour, size=(4, 3)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _pixels_by_id(dataset) -> dict:
    return {example["id"]: np.asarray(example["image"]) for example in dataset}


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Nested folder: PNG, lossless WebP, an RGBA PNG, a 16-bit PNG, and a file that is not an image."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.png").write_bytes(_encoded(_solid((10, 20, 30)), "PNG"))
    lossless_webp = io.BytesIO()
    _solid((40, 50, 60)).save(lossless_webp, format="WEBP", lossless=True)
    (tmp_path / "a" / "mid.webp").write_bytes(lossless_webp.getvalue())
    (tmp_path / "a" / "b" / "clear.png").write_bytes(_encoded(Image.new("RGBA", (4, 3), (1, 2, 3, 0)), "PNG"))
    sixteen_bit = Image.fromarray(np.full((3, 4), 257 * 200, dtype=np.uint16))
    (tmp_path / "a" / "b" / "deep.PNG").write_bytes(_encoded(sixteen_bit, "PNG"))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    return tmp_path


EXPECTED_FOLDER_COLOURS = {
    "top.png": (10, 20, 30),
    "a/mid.webp": (40, 50, 60),
    "a/b/clear.png": (255, 255, 255),
    "a/b/deep.PNG": (200, 200, 200),
}


def test_folder_streams_rgb_with_relative_path_ids(image_folder):
    examples = list(load_unlabeled_images(image_folder))
    assert sorted(example["id"] for example in examples) == sorted(EXPECTED_FOLDER_COLOURS)
    for example in examples:
        assert example["image"].mode == "RGB" and example["image"].size == (4, 3)
        assert example["image"].getpixel((1, 1)) == EXPECTED_FOLDER_COLOURS[example["id"]]
        assert example["image_bytes"] == (image_folder / example["id"]).read_bytes()


def test_ids_are_stable_across_loads_and_modes(image_folder, tmp_path_factory):
    first, second = (_pixels_by_id(load_unlabeled_images(image_folder)) for _ in range(2))
    stored = load_unlabeled_images(image_folder, streaming=False, cache_dir=str(tmp_path_factory.mktemp("cache")))
    assert isinstance(stored, datasets.Dataset) and len(stored) == 4
    from_disk = _pixels_by_id(stored)
    assert first.keys() == second.keys() == from_disk.keys()
    for image_id, pixels in first.items():
        np.testing.assert_array_equal(pixels, second[image_id])
        np.testing.assert_array_equal(pixels, from_disk[image_id])
    assert stored[0]["image_bytes"] == (image_folder / stored[0]["id"]).read_bytes()


def _write_tar(path: Path, members: dict) -> None:
    with tarfile.open(path, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def test_tar_shards_stream_members_and_skip_broken_images(tmp_path, caplog):
    shards = tmp_path / "shards"
    shards.mkdir()
    _write_tar(shards / "train-00000.tar", {
        "000001.png": _encoded(_solid((1, 2, 3)), "PNG"),
        "000001.json": b"{}",
        "000002.jpg": _encoded(_solid((200, 0, 0), (16, 16)), "JPEG"),
    })
    _write_tar(shards / "train-00001.tar", {
        "sub/000003.png": _encoded(Image.new("L", (2, 2), 77), "PNG"),
        "000004.png": b"\x89PNG broken",
    })
    with caplog.at_level(logging.WARNING):
        stream = load_unlabeled_images(str(shards / "train-*.tar"))
        examples = {example["id"]: example for example in stream}
    assert stream.n_shards == 2
    assert sorted(examples) == ["train-00000.tar/000001.png", "train-00000.tar/000002.jpg", "train-00001.tar/sub/000003.png"]
    assert examples["train-00000.tar/000001.png"]["image"].getpixel((0, 0)) == (1, 2, 3)
    assert examples["train-00001.tar/sub/000003.png"]["image"].getpixel((0, 0)) == (77, 77, 77)
    red = examples["train-00000.tar/000002.jpg"]["image"].getpixel((8, 8))
    assert abs(red[0] - 200) < 8 and max(red[1:]) < 8  # JPEG is lossy
    assert any("'train-00001.tar/000004.png'" in record.getMessage() for record in caplog.records)
    ranks = [{example["id"] for example in shard_for_process(load_unlabeled_images(str(shards / "*.tar")), rank, 2)} for rank in range(2)]
    assert ranks[0] | ranks[1] == set(examples) and not ranks[0] & ranks[1]


@pytest.fixture
def parquet_image_dataset(tmp_path) -> Path:
    """A local `datasets` image dataset in two parquet files of three images each; one image is corrupt."""
    directory = tmp_path / "images_dataset"
    directory.mkdir()
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    for part in range(2):
        images = [{"bytes": _encoded(_solid((part, row, 9)), "PNG"), "path": None} for row in range(3)]
        if part == 1:
            images[2] = {"bytes": b"not an image", "path": None}
        rows = {"image": images, "label": [0, 1, 2]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(directory / f"train-{part}.parquet"))
    return directory


def test_dataset_source_ids_are_shard_rows_when_streaming(parquet_image_dataset):
    stream = load_unlabeled_images(str(parquet_image_dataset))
    colours = {example["id"]: example["image"].getpixel((0, 0)) for example in stream}
    assert colours == {"0/0": (0, 0, 9), "0/1": (0, 1, 9), "0/2": (0, 2, 9), "1/0": (1, 0, 9), "1/1": (1, 1, 9)}
    again = {example["id"]: example["image"].getpixel((0, 0)) for example in load_unlabeled_images(str(parquet_image_dataset))}
    assert again == colours
    per_rank = [[example["id"] for example in shard_for_process(stream, rank, 2)] for rank in range(2)]
    assert collections.Counter(per_rank[0] + per_rank[1]) == collections.Counter(list(colours))


def test_dataset_source_ids_are_row_indices_when_not_streaming(parquet_image_dataset, tmp_path):
    stored = load_unlabeled_images(str(parquet_image_dataset), streaming=False, cache_dir=str(tmp_path / "cache"))
    colours = {example["id"]: example["image"].getpixel((0, 0)) for example in stored}
    assert colours == {"0": (0, 0, 9), "1": (0, 1, 9), "2": (0, 2, 9), "3": (1, 0, 9), "4": (1, 1, 9)}
    with pytest.raises(ValueError, match="no image column 'picture'"):
        load_unlabeled_images(str(parquet_image_dataset), image_column="picture")


def test_real_photos_from_mvtb_data_come_out_rgb():
    mvtbdata = pytest.importorskip("mvtbdata", reason="mvtbdata is not installed (dev extra): the real photos")
    images_folder = Path(mvtbdata.__file__).parent / "images"
    for _, example in zip(range(6), load_unlabeled_images(images_folder)):
        with Image.open(images_folder / example["id"]) as original:
            assert example["image"].mode == "RGB" and example["image"].size == original.size
            if original.mode == "RGB":
                np.testing.assert_array_equal(np.asarray(example["image"]), np.asarray(original))


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(ValueError, match="no tar shards"):
        load_unlabeled_images(str(tmp_path / "*.tar"))
    with pytest.raises(TypeError, match="source"):
        load_unlabeled_images(42)
    with pytest.raises(ValueError, match="extensions"):
        load_unlabeled_images(tmp_path, extensions=".jpg")


def test_scikit_image_photos_match_their_reference_arrays(tmp_path):
    data = pytest.importorskip("skimage.data", reason="skimage is not installed (dev extra): the sample photos")

    for name in ("astronaut.png", "camera.png"):
        (tmp_path / name).write_bytes((Path(data.data_dir) / name).read_bytes())
    pixels = _pixels_by_id(load_unlabeled_images(tmp_path))
    np.testing.assert_array_equal(pixels["astronaut.png"], data.astronaut())
    np.testing.assert_array_equal(pixels["camera.png"], np.repeat(data.camera()[..., None], 3, axis=2))


def _ids(stream) -> list[str]:
    return [example["id"] for example in stream]


def test_one_stream_serves_the_data_engine_and_the_online_teacher(image_folder, parquet_image_dataset):
    """`pseudo_label.py` and the student's `--teacher` mode read the same seeded, per-process, resumable stream."""
    from accelerate import Accelerator

    from depth_anything_hf.training.streams import unlabeled_image_stream

    sources = [str(image_folder), str(parquet_image_dataset)]
    everything = _ids(unlabeled_images(sources, seed=0))
    # 4 folder images and 5 decodable rows of the parquet dataset, each once, in a seeded order.
    assert sorted(everything) == sorted([*EXPECTED_FOLDER_COLOURS, "0/0", "0/1", "0/2", "1/0", "1/1"])
    assert everything != _ids(unlabeled_images(sources, seed=1))
    student = unlabeled_image_stream(sources, Accelerator(cpu=True), seed=0)
    assert [example["id"] for example in student.take(len(everything))] == everything
    ranks = [_ids(unlabeled_images(sources, seed=0, rank=rank, world_size=2)) for rank in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(everything)
    # Resumed from its state after three images, a new stream continues with the fourth.
    stream = unlabeled_images(sources, seed=0)
    iterator = iter(stream)
    for _ in range(3):
        next(iterator)
    resumed = unlabeled_images(sources, seed=0)
    resumed.load_state_dict(stream.state_dict())
    assert _ids(resumed) == everything[3:]


def test_source_listing_fingerprint_follows_added_removed_and_resized_files(image_folder, tmp_path):
    before = unlabeled_sources_fingerprint([image_folder, "user/hub-dataset"])
    assert unlabeled_sources_fingerprint([image_folder, "user/hub-dataset"]) == before
    (image_folder / "a" / "notes.txt").write_text("still not an image, and not listed")
    assert unlabeled_sources_fingerprint([image_folder, "user/hub-dataset"]) == before
    # The listing holds names and sizes, not content (hashing every image of a large source would take hours).
    (image_folder / "new.png").write_bytes(b"10 bytes..")
    added = unlabeled_sources_fingerprint([image_folder, "user/hub-dataset"])
    assert added[0] != before[0] and added[1] == before[1]
    (image_folder / "new.png").write_bytes(b"now 12 bytes")
    assert unlabeled_sources_fingerprint([image_folder])[0] not in (before[0], added[0])
    (image_folder / "new.png").unlink()
    assert unlabeled_sources_fingerprint([image_folder])[0] == before[0]


def test_a_bad_file_is_counted_and_logged_once_however_often_it_is_read(tmp_path, caplog):
    for name in ("bad-1.png", "bad-2.png"):
        (tmp_path / name).write_bytes(b"\x89PNG broken")
    (tmp_path / "good.png").write_bytes(_encoded(_solid((1, 2, 3)), "PNG"))
    name = str(tmp_path)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # three passes, as a training stream reads its data
            assert _ids(load_unlabeled_images(tmp_path)) == ["good.png"]
    assert skipped_sample_counts()[name] == 2
    assert len([record for record in caplog.records if name in record.getMessage()]) == 2
    assert skipped_samples_summary({name: {"bad-1.png", "bad-2.png"}, "other": set()}).startswith(
        f"Skipped 2 samples that could not be read or used ({name!r}: 2)"
    )
    assert skipped_samples_summary({}) == "No sample was skipped."
    # The training scripts report the total (over all processes) when they end.
    from accelerate import Accelerator

    from depth_anything_hf.training.tracking import report_skipped_samples

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report_skipped_samples(Accelerator(cpu=True))
    assert any(f"{name!r}: 2" in record.getMessage() for record in caplog.records)


def test_a_mistyped_local_path_says_it_does_not_exist_before_the_hub_lookup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'ds/nope' does not exist as a local path.*could not be loaded"):
        load_unlabeled_images("ds/nope")
