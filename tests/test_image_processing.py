"""The image processor against the official Depth Anything pre-processing, re-derived here independently."""

import ast
import base64
import io
import logging
import sys
import urllib.error
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoImageProcessor
from transformers.modeling_outputs import DepthEstimatorOutput

from depth_anything_hf import image_processing_depth_anything_hf
from depth_anything_hf.image_processing_depth_anything_hf import (
    RESIZE_MODES,
    DepthAnythingHFImageProcessor,
    get_resize_output_size,
)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def official_lower_bound_size(height, width, target=518, multiple=14):
    """The official Resize(keep_aspect_ratio=True, resize_method="lower_bound") size, written from its description."""
    scale = max(target / height, target / width)

    def constrain(length):
        rounded = int(np.round(length / multiple) * multiple)
        return rounded if rounded >= target else int(np.ceil(length / multiple) * multiple)

    return constrain(scale * height), constrain(scale * width)


def cubic_weight(distance, a=-0.75):
    """Keys' cubic-convolution kernel with a = -0.75 (OpenCV's INTER_CUBIC and torch's bicubic)."""
    d = np.abs(distance)
    near = (a + 2) * d**3 - (a + 3) * d**2 + 1
    far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def cubic_resize_matrix(length_in, length_out):
    """[out, in] weights of 1-D cubic convolution: half-pixel centres, taps outside the image clamped to the edge."""
    source = (np.arange(length_out) + 0.5) * length_in / length_out - 0.5
    left = np.floor(source).astype(int)
    matrix = np.zeros((length_out, length_in))
    for offset in (-1, 0, 1, 2):
        tap = left + offset
        np.add.at(matrix, (np.arange(length_out), np.clip(tap, 0, length_in - 1)), cubic_weight(source - tap))
    return matrix


def reference_bicubic(image, height, width):
    """Separable float64 cubic convolution of an HxWxC image to height x width."""
    rows = cubic_resize_matrix(image.shape[0], height)
    columns = cubic_resize_matrix(image.shape[1], width)
    return np.stack([rows @ image[..., channel] @ columns.T for channel in range(image.shape[2])], axis=-1)


def smooth_image(height, width):
    """An 8-bit image of smooth gradients and waves, like a photograph's low frequencies."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [0.5 + 0.4 * np.sin(7 * x + 3 * y), 0.5 + 0.4 * np.cos(20 * x * y), (x + y) / 2]
    return np.round(np.stack(channels, axis=-1) * 255).astype(np.uint8)


def noise_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def unnormalized(pixel_values):
    """HxWx3 float64 image of the first item of `pixel_values` computed with do_normalize=False."""
    return pixel_values[0].permute(1, 2, 0).double().numpy()


def normalized(rgb):
    """The expected pixel_values of an RGB colour given in [0, 1]."""
    return (np.asarray(rgb, dtype=np.float64) - IMAGENET_MEAN) / IMAGENET_STD


def assert_uniform_colour(pixel_values, rgb, atol=1e-5):
    expected = torch.tensor(normalized(rgb), dtype=torch.float32)[:, None, None].expand_as(pixel_values[0])
    torch.testing.assert_close(pixel_values[0], expected, atol=atol, rtol=0)


@pytest.mark.parametrize(
    "input_size, expected",
    [((240, 320), (518, 686)), ((300, 600), (518, 1036)), ((1080, 1920), (518, 924)), ((2, 5), (518, 1288))],
)
def test_lower_bound_sizes_of_the_official_examples(input_size, expected):
    # (2, 5): width 5 * 259 = 1295 = 92.5 * 14 rounds half to even (92), as np.round does.
    pixel_values = DepthAnythingHFImageProcessor()(np.zeros((*input_size, 3), np.uint8))["pixel_values"]
    assert pixel_values.shape == (1, 3, *expected)
    assert pixel_values.dtype == torch.float32


def test_lower_bound_sizes_match_the_official_rule_on_many_shapes():
    rng = np.random.default_rng(1)
    shapes = [tuple(int(side) for side in rng.integers(1, 4000, 2)) for _ in range(500)]
    shapes += [(518, 518), (517, 519), (1, 1), (14, 4000), (4000, 14), (37, 37)]
    for height, width in shapes:
        size = get_resize_output_size((height, width), (518, 518), True, 14, "lower_bound")
        assert size == official_lower_bound_size(height, width), (height, width)
        assert min(size) >= 518 and size[0] % 14 == 0 and size[1] % 14 == 0


def test_size_and_multiple_are_configurable():
    processor = DepthAnythingHFImageProcessor(size=364, ensure_multiple_of=7)
    assert processor(np.zeros((240, 320, 3), np.uint8))["pixel_values"].shape == (1, 3, 364, 483)
    # A fixed size rounds to the multiple, upwards when the nearest multiple falls short (510 -> 504 < 510 -> 518).
    fixed = DepthAnythingHFImageProcessor(size={"height": 510, "width": 700}, keep_aspect_ratio=False)
    assert fixed(np.zeros((240, 320, 3), np.uint8))["pixel_values"].shape == (1, 3, 518, 700)


def test_minimal_mode_gives_the_sizes_of_transformers_dpt_processor():
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    dpt = DPTImageProcessorPil(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14)
    ours = DepthAnythingHFImageProcessor(resize_mode="minimal")
    for height, width in [(240, 320), (300, 600), (480, 640), (1080, 1920), (100, 37), (518, 518), (1000, 200)]:
        image = np.zeros((height, width, 3), np.uint8)
        expected = dpt(image, return_tensors="pt")["pixel_values"].shape
        assert ours(image)["pixel_values"].shape == expected, (height, width)
    assert ours(np.zeros((240, 320, 3), np.uint8))["pixel_values"].shape == (1, 3, 392, 518)


@pytest.mark.parametrize(
    "image",
    [noise_image(31, 45), smooth_image(300, 600), smooth_image(600, 800)],
    ids=["noise-upscale", "smooth-upscale", "smooth-downscale"],
)
def test_pixels_match_reference_cubic_convolution(image):
    pixel_values = DepthAnythingHFImageProcessor(do_normalize=False)(image)["pixel_values"]
    height, width = pixel_values.shape[-2:]
    expected = reference_bicubic(image / 255.0, height, width)
    np.testing.assert_allclose(unnormalized(pixel_values), expected, atol=1e-4, rtol=0)


def test_float32_coordinates_stay_within_the_documented_bound_on_noise():
    # Uniform noise at 2k is the worst case for torch's float32 source coordinates (module docstring).
    image = noise_image(1080, 1920)
    pixel_values = DepthAnythingHFImageProcessor(do_normalize=False)(image)["pixel_values"]
    expected = reference_bicubic(image / 255.0, 518, 924)
    np.testing.assert_allclose(unnormalized(pixel_values), expected, atol=2e-4, rtol=0)


def test_matches_the_official_opencv_pipeline():
    cv2 = pytest.importorskip("cv2", reason="cv2 is not installed (dev extra): the official resize")
    image = smooth_image(300, 400)
    # The official code: cv2.resize of the float image (/ 255.0) with INTER_CUBIC, then ImageNet normalisation.
    official = (cv2.resize(image / 255.0, (686, 518), interpolation=cv2.INTER_CUBIC) - IMAGENET_MEAN) / IMAGENET_STD
    pixel_values = DepthAnythingHFImageProcessor()(PIL.Image.fromarray(image))["pixel_values"]
    np.testing.assert_allclose(unnormalized(pixel_values), official, atol=1e-4, rtol=0)
    noise = noise_image(45, 31)
    resized = cv2.resize(noise.astype(np.float32) / 255, (518, 756), interpolation=cv2.INTER_CUBIC)
    ours = DepthAnythingHFImageProcessor(do_normalize=False)(noise)["pixel_values"]
    np.testing.assert_allclose(unnormalized(ours), resized, atol=1e-4, rtol=0)


def palette_image():
    image = PIL.Image.new("P", (9, 7), 1)
    image.putpalette([0, 0, 0, 0, 128, 255] + [0] * 762)
    return image


def sixteen_bit_image(value):
    image = PIL.Image.fromarray(np.full((7, 9), value, np.uint16))
    assert image.mode == "I;16"
    return image


@pytest.mark.parametrize(
    "image, rgb",
    [
        (PIL.Image.new("L", (9, 7), 200), (200 / 255,) * 3),
        # Transparency is composited on white: c * a + (1 - a), a = alpha / 255.
        (PIL.Image.new("RGBA", (9, 7), (10, 20, 30, 0)), (1.0, 1.0, 1.0)),
        (PIL.Image.new("LA", (9, 7), (100, 153)), (100 / 255 * 0.6 + 0.4,) * 3),
        (PIL.Image.new("CMYK", (9, 7), (0, 255, 255, 0)), (1.0, 0.0, 0.0)),
        (palette_image(), (0.0, 128 / 255, 1.0)),
        (sixteen_bit_image(32767), (32767 / 65535,) * 3),
        (PIL.Image.new("I", (9, 7), 40000), (40000 / 65535,) * 3),
        (PIL.Image.new("F", (9, 7), 0.25), (0.25,) * 3),
        (np.tile(np.array([0, 32768, 65535], np.uint16), (7, 9, 1)), (0.0, 32768 / 65535, 1.0)),
        (np.full((7, 9), 0.75, np.float64), (0.75,) * 3),
        (np.full((7, 9, 4), 51, np.uint8), (0.2 * 0.2 + 0.8,) * 3),
        (torch.tensor([255, 0, 51], dtype=torch.uint8)[:, None, None].expand(3, 7, 9), (1.0, 0.0, 0.2)),
        (torch.full((1, 7, 9), 0.5, dtype=torch.bfloat16), (0.5,) * 3),
    ],
    ids=["L", "RGBA", "LA", "CMYK", "P", "I;16", "I", "F", "np-uint16", "np-float-HW", "np-RGBA", "torch-uint8", "bf16"],
)
def test_every_input_kind_gives_the_expected_colour(image, rgb):
    pixel_values = DepthAnythingHFImageProcessor()(image)["pixel_values"]
    assert pixel_values.shape == (1, 3, 518, 672)
    assert_uniform_colour(pixel_values, rgb)


def red_left_blue_right_with_exif_rotation(path):
    """A 20x10 (width x height) PNG, left half red, right half blue, tagged "rotate 90 degrees clockwise"."""
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10, 0] = 255
    pixels[:, 10:, 2] = 255
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(pixels).save(path, exif=exif)
    return path


def test_exif_orientation_is_applied(tmp_path):
    path = red_left_blue_right_with_exif_rotation(tmp_path / "rotated.png")
    for image in (PIL.Image.open(path), str(path), path.read_bytes()):
        pixel_values = DepthAnythingHFImageProcessor()(image)["pixel_values"]
        # Upright the image is 10 wide and 20 high, red on top: 20x10 -> 1036x518.
        assert pixel_values.shape == (1, 3, 1036, 518)
        torch.testing.assert_close(pixel_values[0, :, 100, 259], torch.tensor(normalized((1, 0, 0))).float())
        torch.testing.assert_close(pixel_values[0, :, 936, 259], torch.tensor(normalized((0, 0, 1))).float())


def test_batches_stack_when_sizes_agree_and_fixed_size_batches_mixed_sizes():
    processor = DepthAnythingHFImageProcessor()
    pair = [smooth_image(240, 320), smooth_image(480, 640)]
    batch = processor(pair)["pixel_values"]
    assert batch.shape == (2, 3, 518, 686)
    torch.testing.assert_close(batch[0], processor(pair[0])["pixel_values"][0])
    mixed = [smooth_image(240, 320), smooth_image(300, 600)]
    with pytest.raises(ValueError, match=r"different sizes.*size=\{"):
        processor(mixed)
    fixed = processor(mixed, size={"height": 518, "width": 518}, keep_aspect_ratio=False)["pixel_values"]
    assert fixed.shape == (2, 3, 518, 518)
    tensor_batch = torch.zeros(2, 3, 240, 320, dtype=torch.uint8)
    assert processor(tensor_batch, return_tensors="pt")["pixel_values"].shape == (2, 3, 518, 686)


@pytest.mark.parametrize(
    "image",
    [np.zeros((0, 10, 3), np.uint8), PIL.Image.new("RGB", (0, 5)), torch.zeros(3, 5, 0)],
    ids=["numpy", "PIL", "torch"],
)
def test_empty_images_are_rejected(image):
    with pytest.raises(ValueError, match=r"images\[1\] is empty"):
        DepthAnythingHFImageProcessor()([np.zeros((4, 4, 3), np.uint8), image])


def test_undecodable_inputs_name_the_input(tmp_path):
    truncated = tmp_path / "truncated.png"
    encoded = io.BytesIO()
    PIL.Image.fromarray(noise_image(64, 64)).save(encoded, format="PNG")
    truncated.write_bytes(encoded.getvalue()[:400])
    processor = DepthAnythingHFImageProcessor()
    with pytest.raises(ValueError, match="truncated.png"):
        processor(str(truncated))
    with pytest.raises(ValueError, match=r"images \(12 bytes\) could not be decoded"):
        processor(b"not an image")
    # A missing file says so (transformers' loader said "Incorrect image source").
    with pytest.raises(FileNotFoundError, match=r"missing.png'\): the file does not exist"):
        processor(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="is not an image file"):
        processor(str(tmp_path))


def test_base64_text_is_decoded_with_its_full_bit_depth():
    encoded = io.BytesIO()
    sixteen_bit_image(40000).save(encoded, format="PNG")
    text = base64.b64encode(encoded.getvalue()).decode()
    processor = DepthAnythingHFImageProcessor()
    for source in (text, "data:image/png;base64," + text):
        assert_uniform_colour(processor(source)["pixel_values"], (40000 / 65535,) * 3)


def test_urls_offline_or_unreachable_raise_a_connection_error_naming_them(monkeypatch):
    from depth_anything_hf import image_processing_depth_anything_hf as module

    url = "https://example.com/photo.png"
    processor = DepthAnythingHFImageProcessor()
    monkeypatch.setattr(module, "is_offline_mode", lambda: True)
    with pytest.raises(ConnectionError, match=r"images \('https://example.com/photo.png'\): cannot download it: offline mode"):
        processor(url)

    def refuse(*args, **kwargs):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(module, "is_offline_mode", lambda: False)
    monkeypatch.setattr(module.urllib.request, "urlopen", refuse)
    with pytest.raises(ConnectionError, match=r"'https://example.com/photo.png'\): could not download it: .*refused"):
        processor(url)


@pytest.mark.parametrize(
    "image",
    [
        np.where(np.arange(63).reshape(7, 9) == 40, np.nan, 0.5),
        np.full((7, 9, 3), np.inf, np.float32),
        torch.full((3, 7, 9), float("nan"), dtype=torch.float16),
    ],
    ids=["one-nan", "inf", "torch-nan"],
)
def test_non_finite_pixels_are_rejected(image):
    count = int((~np.isfinite(np.asarray(image, dtype=np.float32))).sum())
    with pytest.raises(ValueError, match=rf"images\[1\]: holds {count} non-finite values"):
        DepthAnythingHFImageProcessor()([np.zeros((7, 9, 3), np.uint8), image])


def test_too_elongated_images_are_refused_before_any_allocation():
    processor = DepthAnythingHFImageProcessor()
    for resize_mode in RESIZE_MODES:
        with pytest.raises(ValueError, match=r"images: an image of 1x10000 pixels .*10000.0:1.*max_aspect_ratio=10"):
            processor(np.zeros((1, 10000), np.uint8), resize_mode=resize_mode)
        with pytest.raises(ValueError, match=r"an image of 2000x40 pixels"):
            processor.processed_size((2000, 40))
    # 10:1 is accepted: 518 x 5180 in "lower_bound" mode; the bound is an option.
    assert processor.processed_size((100, 1000)) == (518, 5180)
    assert get_resize_output_size((1, 10000), (518, 518), True, 14, "lower_bound", None) == (518, 5_180_000)
    assert processor(np.zeros((1, 30), np.uint8), max_aspect_ratio=float("inf"))["pixel_values"].shape == (
        1, 3, 518, 15540
    )
    # Without keep_aspect_ratio the output size is fixed, whatever the input's shape.
    assert processor(np.zeros((1, 10000), np.uint8), keep_aspect_ratio=False)["pixel_values"].shape == (1, 3, 518, 518)


@pytest.mark.parametrize("max_aspect_ratio", [0.5, True, "10", float("nan")])
def test_an_invalid_max_aspect_ratio_is_refused(max_aspect_ratio):
    with pytest.raises(ValueError, match="max_aspect_ratio must be a number >= 1 or None"):
        DepthAnythingHFImageProcessor(max_aspect_ratio=max_aspect_ratio)


def test_minimal_mode_never_rounds_a_side_to_zero():
    # 40x400 in "minimal" mode scales by 518 / 400 (nearer 1): 51.8 x 518, and 51.8 rounds to 0 multiples of 128.
    assert get_resize_output_size((40, 400), (518, 518), True, 128, "minimal") == (128, 512)


def test_invalid_options_and_values_are_rejected():
    with pytest.raises(ValueError, match="resize_mode"):
        DepthAnythingHFImageProcessor(resize_mode="upper")
    with pytest.raises(ValueError, match="depth_estimation_type"):
        DepthAnythingHFImageProcessor(depth_estimation_type="absolute")
    with pytest.raises(ValueError, match="size"):
        DepthAnythingHFImageProcessor(size={"shortest_edge": 518})
    processor = DepthAnythingHFImageProcessor()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        processor(np.full((8, 8, 3), 255.0))
    with pytest.raises(ValueError, match="channels-first"):
        processor(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(TypeError, match="int32"):
        processor(torch.zeros(3, 8, 8, dtype=torch.int32))


def test_save_and_load_round_trip(tmp_path):
    processor = DepthAnythingHFImageProcessor(
        resize_mode="minimal", size={"height": 392, "width": 518}, depth_estimation_type="metric"
    )
    processor.save_pretrained(tmp_path)
    loaded = DepthAnythingHFImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    image = smooth_image(100, 150)
    torch.testing.assert_close(loaded(image)["pixel_values"], processor(image)["pixel_values"])
    overridden = DepthAnythingHFImageProcessor.from_pretrained(tmp_path, resize_mode="lower_bound")
    assert overridden.resize_mode == "lower_bound" and overridden.depth_estimation_type == "metric"
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is DepthAnythingHFImageProcessor


def test_loads_as_remote_code_without_this_package(tmp_path, monkeypatch):
    import transformers.dynamic_module_utils
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING

    # Forget this package's AutoImageProcessor registration, as in a session that never imported it.
    monkeypatch.setattr(IMAGE_PROCESSOR_MAPPING, "_extra_content", {})
    monkeypatch.setattr(transformers.dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(DepthAnythingHFImageProcessor, "_auto_class", None)
    DepthAnythingHFImageProcessor.register_for_auto_class()
    DepthAnythingHFImageProcessor(resize_mode="minimal").save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "image_processing_depth_anything_hf.py").is_file()

    loaded = AutoImageProcessor.from_pretrained(tmp_path / "saved", trust_remote_code=True)
    assert type(loaded).__module__.startswith("transformers_modules.")
    image = smooth_image(240, 320)
    expected = DepthAnythingHFImageProcessor(resize_mode="minimal")(image)["pixel_values"]
    torch.testing.assert_close(loaded(image)["pixel_values"], expected)


def test_module_imports_only_what_remote_code_users_have():
    tree = ast.parse(Path(image_processing_depth_anything_hf.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(node.level for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))
    third_party = {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names)
    assert third_party <= {"transformers", "torch", "numpy", "PIL"}


def test_post_processing_resizes_bilinearly_with_aligned_corners():
    # A plane a*y + b*x + c is reproduced exactly by bilinear interpolation; align_corners maps corner to corner.
    y, x = torch.meshgrid(torch.arange(37.0), torch.arange(49.0), indexing="ij")
    plane = 0.5 * y - 0.25 * x + 3
    outputs = DepthEstimatorOutput(predicted_depth=torch.stack([plane, 2 * plane]))
    results = DepthAnythingHFImageProcessor().post_process_depth_estimation(outputs, [(240, 320), (10, 7)])
    for result, (height, width), factor in zip(results, [(240, 320), (10, 7)], (1, 2)):
        target_y, target_x = torch.meshgrid(
            torch.linspace(0, 36, height), torch.linspace(0, 48, width), indexing="ij"
        )
        torch.testing.assert_close(result["predicted_depth"], factor * (0.5 * target_y - 0.25 * target_x + 3))
        assert result["depth_type"] == "disparity"


def test_post_processing_options():
    processor = DepthAnythingHFImageProcessor()
    predicted_depth = torch.rand(2, 14, 28, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    unresized = processor.post_process_depth_estimation({"predicted_depth": predicted_depth})
    assert unresized[0]["predicted_depth"].dtype == torch.float32
    torch.testing.assert_close(unresized[1]["predicted_depth"], predicted_depth[1].float())
    sizes = processor.post_process_depth_estimation(
        {"predicted_depth": predicted_depth}, target_sizes=torch.tensor([[5, 6], [7, 8]])
    )
    assert [tuple(result["predicted_depth"].shape) for result in sizes] == [(5, 6), (7, 8)]
    metric_outputs = {"predicted_depth": predicted_depth, "depth_estimation_type": "metric"}
    assert processor.post_process_depth_estimation(metric_outputs)[0]["depth_type"] == "metric_depth"
    metric_processor = DepthAnythingHFImageProcessor(depth_estimation_type="metric")
    assert metric_processor.post_process_depth_estimation({"predicted_depth": predicted_depth})[0]["depth_type"] == (
        "metric_depth"
    )
    relative = metric_processor.post_process_depth_estimation(
        {"predicted_depth": predicted_depth}, depth_estimation_type="relative"
    )
    assert relative[0]["depth_type"] == "disparity"
    with pytest.raises(ValueError, match="target_sizes"):
        processor.post_process_depth_estimation({"predicted_depth": predicted_depth}, [(5, 6)])


def test_depth_estimation_pipeline_runs_with_this_processor(caplog):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, pipeline
    from transformers.utils import logging as transformers_logging

    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(config).eval()
    image = PIL.Image.fromarray(smooth_image(40, 60))
    transformers_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING, logger="transformers"):
            estimator = pipeline("depth-estimation", model=model, image_processor=DepthAnythingHFImageProcessor())
            result = estimator(image)
    finally:
        transformers_logging.disable_propagation()
    assert [record.getMessage() for record in caplog.records] == []
    assert result["predicted_depth"].shape == (40, 60)
    assert result["depth"].size == (60, 40)
    with torch.no_grad():
        expected = model(**DepthAnythingHFImageProcessor()(image, return_tensors="pt")).predicted_depth
    resized = torch.nn.functional.interpolate(expected[None], (40, 60), mode="bilinear", align_corners=True)[0, 0]
    assert resized.max() > 0
    torch.testing.assert_close(result["predicted_depth"], resized, rtol=0, atol=1e-5 * resized.max().item())


def test_post_processing_follows_the_official_corner_alignment_of_each_version():
    """V2 upsamples with align_corners=True, V1 with False. A 1x2 ramp to width 4, by hand:
    True samples at x = i / 3, False at x = (i + 0.5) / 2 - 0.5 clamped to [0, 1]."""
    outputs = {"predicted_depth": torch.tensor([[[0.0, 1.0]]])}
    v2 = DepthAnythingHFImageProcessor().post_process_depth_estimation(outputs, target_sizes=[(1, 4)])[0]
    v1 = DepthAnythingHFImageProcessor(align_corners=False).post_process_depth_estimation(outputs, [(1, 4)])[0]
    torch.testing.assert_close(v2["predicted_depth"], torch.tensor([[0.0, 1 / 3, 2 / 3, 1.0]]))
    torch.testing.assert_close(v1["predicted_depth"], torch.tensor([[0.0, 0.25, 0.75, 1.0]]))


@pytest.mark.parametrize(
    ("version", "depth_estimation_type", "expected_ramp", "expected_type"),
    [
        ("v1", "relative", [0.0, 0.25, 0.75, 1.0], "disparity"),
        ("v2", "metric", [0.0, 1 / 3, 2 / 3, 1.0], "metric_depth"),
    ],
)
def test_processor_from_model_config_follows_the_release_and_output_type(
    version, depth_estimation_type, expected_ramp, expected_type
):
    from depth_anything_hf import DepthAnythingHFConfig

    max_depth = 20.0 if depth_estimation_type == "metric" else None
    config = DepthAnythingHFConfig.from_variant(version, "small", depth_estimation_type, max_depth)
    processor = DepthAnythingHFImageProcessor.from_model_config(config, size=56)
    assert processor.size == {"height": 56, "width": 56}
    result = processor.post_process_depth_estimation({"predicted_depth": torch.tensor([[[0.0, 1.0]]])}, [(1, 4)])[0]
    torch.testing.assert_close(result["predicted_depth"], torch.tensor([expected_ramp]))
    assert result["depth_type"] == expected_type
