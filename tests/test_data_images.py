"""to_rgb / decode_rgb: every odd PIL mode becomes the right 8-bit RGB value."""

import io

import numpy as np
import pytest
from PIL import Image

from depth_anything_hf.data.images import decode_rgb, to_rgb

EXIF_ORIENTATION_TAG = 0x0112


def _encoded(image: Image.Image, file_format: str = "PNG", **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **save_options)
    return buffer.getvalue()


def _rgb_at(image: Image.Image, xy=(0, 0)) -> tuple:
    converted = to_rgb(image)
    assert converted.mode == "RGB"
    return converted.getpixel(xy)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("RGB", (12, 34, 56), (12, 34, 56)),
        ("L", 100, (100, 100, 100)),
        ("1", 1, (255, 255, 255)),
        # Pillow's CMYK -> RGB: channel = (255 - K) * (1 - C / 255).
        ("CMYK", (0, 255, 0, 0), (255, 0, 255)),
        ("CMYK", (51, 0, 0, 0), (204, 255, 255)),
        ("CMYK", (0, 0, 0, 255), (0, 0, 0)),
        # Alpha composited on white: opaque keeps the colour, fully transparent is white.
        ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
        ("RGBA", (10, 20, 30, 0), (255, 255, 255)),
        ("LA", (40, 255), (40, 40, 40)),
        ("LA", (40, 0), (255, 255, 255)),
    ],
)
def test_mode_converts_to_expected_rgb(mode, value, expected):
    assert _rgb_at(Image.new(mode, (3, 2), value)) == expected


def test_half_transparent_rgba_is_blended_with_white():
    # out = colour * a + 255 * (1 - a), a = 128 / 255: red 255, green/blue 255 * 127 / 255 = 127.
    assert _rgb_at(Image.new("RGBA", (1, 1), (255, 0, 0, 128))) == (255, 127, 127)


@pytest.mark.parametrize(
    "image",
    [
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8), mode="RGBA"),
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (5, 7, 2), dtype=np.uint8), mode="LA"),
        Image.new("P", (7, 5), 1).copy(),
    ],
    ids=["RGBA", "LA", "P-transparent-index"],
)
def test_training_decoder_and_image_processor_composite_transparency_alike(image):
    """One rule for both decoders: what the student trains on is what inference feeds the model."""
    from depth_anything_hf import DepthAnythingHFImageProcessor

    if image.mode == "P":
        image.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
        image.info["transparency"] = 1
    processed = DepthAnythingHFImageProcessor(do_resize=False, do_normalize=False)(image)["pixel_values"][0]
    trained_on = np.asarray(to_rgb(image), dtype=np.float32).transpose(2, 0, 1) / 255
    # The same composite; the training decoder rounds it to 8 bits.
    np.testing.assert_allclose(processed.numpy(), trained_on, rtol=0, atol=0.5 / 255 + 1e-6)


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits():
    # 65535 / 255 = 257: 257 * k -> k exactly, 0 -> 0, 65535 -> 255.
    values = np.array([[0, 257 * 100, 257 * 128, 65535]], dtype=np.uint16)
    sixteen_bit = Image.open(io.BytesIO(_encoded(Image.fromarray(values))))
    assert sixteen_bit.mode.startswith("I;16")
    converted = np.asarray(to_rgb(sixteen_bit))
    np.testing.assert_array_equal(converted[0, :, 0], [0, 100, 128, 255])
    np.testing.assert_array_equal(converted[..., 0], converted[..., 2])


def test_32_bit_integer_image_is_read_as_16_bit_data():
    values = np.array([[257 * 7, 65535, 70000]], dtype=np.int32)
    converted = np.asarray(to_rgb(Image.fromarray(values, mode="I")))
    np.testing.assert_array_equal(converted[0, :, 1], [7, 255, 255])


def test_palette_image_uses_its_palette_and_transparent_index_is_white():
    palette_image = Image.new("P", (3, 1))
    palette_image.putpalette([0, 0, 0, 10, 20, 30, 200, 100, 50] + [0] * (768 - 9))
    for x, index in enumerate((1, 2, 0)):
        palette_image.putpixel((x, 0), index)
    opaque = Image.open(io.BytesIO(_encoded(palette_image)))
    assert [_rgb_at(opaque, (x, 0)) for x in range(3)] == [(10, 20, 30), (200, 100, 50), (0, 0, 0)]
    with_transparency = Image.open(io.BytesIO(_encoded(palette_image, transparency=2)))
    assert [_rgb_at(with_transparency, (x, 0)) for x in range(3)] == [(10, 20, 30), (255, 255, 255), (0, 0, 0)]


def _with_orientation(image: Image.Image, orientation: int, file_format: str) -> Image.Image:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    return Image.open(io.BytesIO(_encoded(image, file_format, exif=exif.tobytes())))


def test_exif_orientation_is_applied():
    stored = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3) * 10
    # Orientation 6: the stored pixels are shown rotated 90 degrees clockwise.
    rotated = _with_orientation(Image.fromarray(stored), 6, "PNG")
    np.testing.assert_array_equal(np.asarray(to_rgb(rotated)), np.rot90(stored, k=-1))
    # Orientation 3: rotated 180 degrees.
    turned = _with_orientation(Image.fromarray(stored), 3, "PNG")
    np.testing.assert_array_equal(np.asarray(to_rgb(turned)), stored[::-1, ::-1])


def test_exif_rotated_jpeg_comes_out_upright():
    # Left half red, right half blue, stored 64 wide x 32 high; orientation 8 = 90 degrees counter-clockwise.
    stored = np.zeros((32, 64, 3), dtype=np.uint8)
    stored[:, :32, 0] = 255
    stored[:, 32:, 2] = 255
    upright = np.asarray(to_rgb(_with_orientation(Image.fromarray(stored), 8, "JPEG")))
    assert upright.shape == (64, 32, 3)
    # Counter-clockwise: the stored left (red) half ends up at the bottom.
    assert upright[56, 16, 0] > 200 and upright[56, 16, 2] < 50
    assert upright[8, 16, 2] > 200 and upright[8, 16, 0] < 50


def test_float_images_and_non_images_are_refused():
    with pytest.raises(ValueError, match="float"):
        to_rgb(Image.new("F", (2, 2), 0.5))
    with pytest.raises(TypeError, match="PIL"):
        to_rgb(np.zeros((2, 2, 3), dtype=np.uint8))


def test_decode_rgb_decodes_bytes_and_fails_on_truncated_data():
    colour = np.full((16, 16, 4), (90, 60, 30, 255), dtype=np.uint8)
    assert decode_rgb(_encoded(Image.fromarray(colour))).getpixel((5, 5)) == (90, 60, 30)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = _encoded(Image.fromarray(noise), "JPEG")
    with pytest.raises(OSError, match="truncated"):
        decode_rgb(jpeg[: len(jpeg) // 2])
    with pytest.raises(TypeError, match="bytes"):
        decode_rgb("not bytes")
