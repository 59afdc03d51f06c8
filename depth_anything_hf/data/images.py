"""Turning any PIL image into the 8-bit RGB the model expects."""

import io

import numpy as np
from PIL import Image, ImageOps

# Pillow's names for single-channel integer images wider than 8 bits.
_WIDE_INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _wide_integer_to_l(image: Image.Image) -> Image.Image:
    """Map a 16-bit (or 16-bit-in-32-bit "I") grayscale image linearly onto 0..255.

    Pillow's own conversion clips everything above 255 to white, which turns a 16-bit photo
    into a nearly white image; 65535 / 255 = 257 maps the full 16-bit range exactly.
    """
    sixteen_bit = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
    return Image.fromarray(np.rint(sixteen_bit / 257.0).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Return `image` as an 8-bit RGB image, upright as a viewer shows it.

    - EXIF orientation is applied (the pixel grid is rotated / mirrored as the tag says).
    - 16-bit grayscale ("I;16*", and "I" holding 16-bit data) is scaled linearly, 65535 -> 255.
    - Anything with transparency (RGBA, LA, PA, P or L/RGB with a transparent colour) is
      composited on WHITE: the colour under a fully transparent pixel is arbitrary (often
      black), and white is what browsers and viewers show behind transparent images.
    - CMYK, P (palette), L, 1, YCbCr and the rest use Pillow's conversion to RGB.
    - Float ("F") images have no defined intensity range and are refused with a ValueError.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"to_rgb expects a PIL.Image.Image, got {type(image).__name__}")
    if image.mode == "F":
        raise ValueError("to_rgb cannot convert a float ('F' mode) image: its intensity range is undefined")
    upright = ImageOps.exif_transpose(image)
    if upright.mode in _WIDE_INTEGER_MODES:
        upright = _wide_integer_to_l(upright)
    if upright.mode == "La":
        upright = upright.convert("LA")
    if upright.mode in _ALPHA_MODES or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if upright.mode != "RGB":
        return upright.convert("RGB")
    # exif_transpose hands back a lazily loaded copy; load it so truncated files fail here.
    upright.load()
    return upright


def decode_rgb(image_bytes: bytes) -> Image.Image:
    """Decode an encoded image file (JPEG, PNG, WebP, ...) fully and return it via `to_rgb`.

    Truncated or corrupt data raises (OSError, SyntaxError, ...) here rather than later.
    """
    if not isinstance(image_bytes, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_rgb expects the bytes of an image file, got {type(image_bytes).__name__}")
    with Image.open(io.BytesIO(image_bytes)) as encoded:
        encoded.load()
        return to_rgb(encoded)
