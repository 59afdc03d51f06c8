"""Seeded fuzzing of the image processor and the data decoders over odd and corrupt files.

Every file must end in one of three outcomes: the right result, a skip that is counted, or a clear error that
names the file. Pristine files are checked against their pixels computed here with numpy; damaged ones (truncated,
bytes flipped, garbage, empty) may still decode, and then must give finite pixels of the decoded size.
"""

import io
import logging
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest

from depth_anything_hf import DepthAnythingHFImageProcessor
from depth_anything_hf.data.formats import load_labeled_dataset
from depth_anything_hf.data.skipping import skipped_sample_ids
from depth_anything_hf.data.unlabeled import load_unlabeled_images

SEED = 1234
TARGET = 28  # a small processor target keeps the fuzzing fast; the rules do not depend on it
CLEAR_ERRORS = (ValueError, FileNotFoundError)


def _encode(image: PIL.Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **options)
    return buffer.getvalue()


def _pristine_files(rng: np.random.Generator) -> list[tuple[str, bytes, np.ndarray | None]]:
    """(name, file bytes, expected upright RGB float [H, W, 3] in [0, 1] or None for lossy or refused files)."""
    files = []
    for index in range(4):
        height, width = (int(side) for side in rng.integers(1, 24, 2))
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        files.append((f"rgb-{index}.png", _encode(PIL.Image.fromarray(rgb), "PNG"), rgb / 255.0))
        rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        alpha = rgba[..., 3:] / 255.0
        composited = rgba[..., :3] / 255.0 * alpha + (1 - alpha)
        files.append((f"rgba-{index}.png", _encode(PIL.Image.fromarray(rgba, "RGBA"), "PNG"), composited))
        gray = rng.integers(0, 256, (height, width), dtype=np.uint8)
        files.append((f"gray-{index}.bmp", _encode(PIL.Image.fromarray(gray), "BMP"), np.repeat(gray[..., None], 3, -1) / 255.0))
        deep = rng.integers(0, 65536, (height, width), dtype=np.uint16)
        files.append((f"deep-{index}.png", _encode(PIL.Image.fromarray(deep), "PNG"), np.repeat(deep[..., None], 3, -1) / 65535.0))
        unit = rng.random((height, width), dtype=np.float32)
        files.append((f"float-{index}.tif", _encode(PIL.Image.fromarray(unit, "F"), "TIFF"), np.repeat(unit[..., None], 3, -1).astype(np.float64)))
        smooth = np.add.outer(np.arange(height), np.arange(width)).astype(np.uint8)[..., None].repeat(3, -1) * 5
        files.append((f"photo-{index}.jpg", _encode(PIL.Image.fromarray(smooth), "JPEG", quality=90), None))
        exif = PIL.Image.Exif()
        exif[0x0112] = int(rng.choice([3, 6, 8]))
        rotated = _encode(PIL.Image.fromarray(rgb), "PNG", exif=exif)
        upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(io.BytesIO(rotated)))) / 255.0
        files.append((f"rotated-{index}.png", rotated, upright))
    files.append(("strip.png", _encode(PIL.Image.fromarray(np.zeros((1, 200), np.uint8)), "PNG"), np.zeros((1, 200, 3))))
    files.append(("tower.png", _encode(PIL.Image.fromarray(np.zeros((300, 2), np.uint8)), "PNG"), np.zeros((300, 2, 3))))
    nan = np.full((6, 5), 0.5, np.float32)
    nan[2, 3] = np.nan
    files.append(("nan.tif", _encode(PIL.Image.fromarray(nan, "F"), "TIFF"), None))
    files.append(("too-bright.tif", _encode(PIL.Image.fromarray(np.full((6, 5), 3.0, np.float32), "F"), "TIFF"), None))
    return files


def _damaged(rng: np.random.Generator, name: str, content: bytes) -> list[tuple[str, bytes]]:
    """Truncated, with flipped bytes past the header, with garbage in front, and a random-byte file."""
    stem = Path(name).stem
    suffix = Path(name).suffix
    cut = int(rng.integers(1, max(2, len(content) - 1)))
    flipped = bytearray(content)
    for position in rng.integers(min(16, len(content) - 1), len(content), 4):
        flipped[position] ^= int(rng.integers(1, 256))
    return [
        (f"{stem}-truncated{suffix}", content[:cut]),
        (f"{stem}-flipped{suffix}", bytes(flipped)),
        (f"{stem}-prefixed{suffix}", b"\x00garbage" + content),
        (f"{stem}-noise{suffix}", rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()),
    ]


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray | None], set[str]]:
    """A folder of pristine and damaged files; the expected pixels of the pristine ones; the damaged names."""
    rng = np.random.default_rng(SEED)
    folder = tmp_path_factory.mktemp("fuzz")
    expected, damaged = {}, set()
    for name, content, pixels in _pristine_files(rng):
        (folder / name).write_bytes(content)
        expected[name] = pixels
        if name.startswith(("rgb-0", "deep-0", "float-0", "photo-0", "rotated-0")):
            for damaged_name, damaged_content in _damaged(rng, name, content):
                (folder / damaged_name).write_bytes(damaged_content)
                damaged.add(damaged_name)
    (folder / "empty.png").write_bytes(b"")
    damaged.add("empty.png")
    return folder, expected, damaged


def _upright_size(path: Path) -> tuple[int, int]:
    with PIL.Image.open(path) as image:
        width, height = PIL.ImageOps.exif_transpose(image).size
    return height, width


def test_the_processor_gives_the_right_pixels_or_a_clear_error_naming_the_file(fuzz_files):
    folder, expected, damaged = fuzz_files
    processor = DepthAnythingHFImageProcessor(size=TARGET)
    unresized = DepthAnythingHFImageProcessor(do_resize=False, do_normalize=False)
    outcomes = {}
    for path in sorted(folder.iterdir()):
        try:
            pixel_values = processor(str(path))["pixel_values"]
        except CLEAR_ERRORS as error:
            assert repr(str(path)) in str(error), f"{path.name}: the error does not name the file: {error}"
            outcomes[path.name] = type(error).__name__
            continue
        # Decoded: the pixels of the decoded image, at the size the resize rule gives for it.
        height, width = _upright_size(path)
        assert pixel_values.shape[-2:] == processor.processed_size((height, width)), path.name
        assert bool(pixel_values.isfinite().all()), path.name
        pixels = unresized(str(path))["pixel_values"][0].permute(1, 2, 0).double().numpy()
        assert pixels.shape[:2] == (height, width) and pixels.min() >= 0 and pixels.max() <= 1, path.name
        if expected.get(path.name) is not None:
            np.testing.assert_allclose(pixels, expected[path.name], rtol=0, atol=1e-6, err_msg=path.name)
        outcomes[path.name] = "decoded"
    # Every pristine file within the rules decodes; the ones outside them are refused with the reason.
    refused = {"strip.png", "tower.png", "nan.tif", "too-bright.tif"}
    assert all(outcomes[name] == "decoded" for name in expected if name not in refused), outcomes
    assert all(outcomes[name] == "ValueError" for name in refused), outcomes
    assert {outcomes[name] for name in damaged} <= {"decoded", "ValueError"}
    assert outcomes["empty.png"] == "ValueError"
    assert sum(outcomes[name] == "ValueError" for name in damaged) >= len(damaged) // 2, outcomes


def test_the_unlabeled_decoder_yields_the_right_rgb_or_counts_a_skip(fuzz_files, caplog):
    folder, expected, damaged = fuzz_files
    name = str(folder)
    with caplog.at_level(logging.WARNING):
        examples = {
            example["id"]: example["image"]
            for example in load_unlabeled_images(folder, image_processor=DepthAnythingHFImageProcessor(size=TARGET))
        }
    skipped = skipped_sample_ids().get(name, set())
    listed = {path.name for path in folder.iterdir()}
    assert set(examples) | skipped == listed and not set(examples) & skipped
    # The training data path has no intensity range for float images, and the teacher's processor refuses strips.
    assert {"strip.png", "tower.png", "nan.tif", "too-bright.tif", "float-0.tif", "empty.png"} <= skipped
    for image_id, image in examples.items():
        assert image.mode == "RGB" and (image.height, image.width) == _upright_size(folder / image_id)
        reference = expected.get(image_id)
        if reference is not None:
            np.testing.assert_allclose(np.asarray(image) / 255.0, reference, rtol=0, atol=0.5 / 255 + 1e-9)
    # Every skip was logged once, naming the file.
    for image_id in skipped:
        assert sum(f"{image_id!r}" in record.getMessage() for record in caplog.records) == 1, image_id


def test_the_labeled_decoder_yields_aligned_samples_or_counts_a_skip(fuzz_files, tmp_path):
    """Folder-format samples over the fuzz images, each with a depth map on the image's stored grid, every
    seventh one truncated: the samples come out with the depth turned upright with the image, or are skipped."""
    folder, _, _ = fuzz_files
    rng = np.random.default_rng(SEED + 1)
    metadata = []
    for index, path in enumerate(sorted(folder.iterdir())):
        (tmp_path / path.name).write_bytes(path.read_bytes())
        try:
            with PIL.Image.open(path) as image:
                width, height = image.size
        except (OSError, ValueError, SyntaxError):
            height, width = 4, 4
        depth = rng.integers(1, 5000, (height, width), dtype=np.uint16)
        depth_name = f"{path.stem}-{index}.depth.png"
        content = _encode(PIL.Image.fromarray(depth), "PNG")
        (tmp_path / depth_name).write_bytes(content[: len(content) // 2] if index % 7 == 3 else content)
        metadata.append(f'{{"file_name": "{path.name}", "depth_file_name": "{depth_name}"}}')
    (tmp_path / "metadata.jsonl").write_text("\n".join(metadata) + "\n")
    dataset_name = f"fuzz-labeled-{SEED}"
    samples = {sample["id"]: sample for sample in load_labeled_dataset(tmp_path, dataset_name=dataset_name)}
    skipped = skipped_sample_ids().get(dataset_name, set())
    assert set(samples) | skipped == {path.name for path in folder.iterdir()} and not set(samples) & skipped
    assert len(skipped) >= len(metadata) // 7
    assert {"strip.png", "tower.png", "empty.png"} <= skipped
    for image_id, sample in samples.items():
        depth = np.asarray(sample["depth"])
        assert depth.shape == _upright_size(tmp_path / image_id) and np.isfinite(depth).all(), image_id
