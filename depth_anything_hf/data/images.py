"""Turning any PIL image into the 8-bit RGB the model expects, and EXIF orientation of labeled pairs.

The rules are those of the image processor (`image_processing_depth_anything_hf.py`), so that training and
inference see the same pixels: EXIF orientation applied, transparency composited on white.
"""

import io

import numpy as np
from PIL import ExifTags, Image, ImageOps

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
      black), and white is what browsers and viewers show behind transparent images. The image
      processor composites the same way (`composite_on_white`), so both agree to 8-bit rounding.
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


# The transpose that displays an image upright, per EXIF orientation (as `ImageOps.exif_transpose` applies it).
_UPRIGHT_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright_transpose(image: Image.Image) -> Image.Transpose | None:
    """The transpose `to_rgb` applies to `image` for its EXIF orientation; None when it is stored upright."""
    return _UPRIGHT_TRANSPOSE.get(image.getexif().get(ExifTags.Base.Orientation, 1))


def upright_pixel_indices(height: int, width: int, transpose: Image.Transpose) -> np.ndarray:
    """For a map stored on a height x width grid, the flat index of the stored pixel behind each upright pixel:
    `stored.reshape(-1)[indices]` is the map turned as `transpose` turns the image (PIL's own transpose does it)."""
    stored_indices = Image.fromarray(np.arange(height * width, dtype=np.int32).reshape(height, width))
    return np.asarray(stored_indices.transpose(transpose))


def upright_intrinsics(
    height: int, width: int, transpose: Image.Transpose, fx: float | None, fy: float | None, cx, cy
) -> tuple:
    """(fx, fy, cx, cy) of the upright image, for intrinsics given in the stored grid (pixel centres at integers).

    Each upright axis runs along one stored axis, forwards or backwards: a focal length follows its axis, a
    principal point coordinate is measured from the stored pixel at the upright origin along that axis.
    """
    probe = upright_pixel_indices(2, 2, transpose)
    (origin_y, origin_x), (next_x_y, next_x_x), (next_y_y, next_y_x) = (
        divmod(int(probe[0, 0]), 2), divmod(int(probe[0, 1]), 2), divmod(int(probe[1, 0]), 2)
    )
    stored_focal = {"x": fx, "y": fy}
    stored_centre = {"x": cx, "y": cy}
    stored_length = {"x": width, "y": height}

    def along(step_x: int, step_y: int, origin: dict) -> tuple:
        axis = "x" if step_x != 0 else "y"
        step = step_x or step_y
        centre = stored_centre[axis]
        if centre is not None:
            start = 0 if origin[axis] == 0 else stored_length[axis] - 1
            centre = (centre - start) * step
        return stored_focal[axis], centre

    origin = {"x": origin_x, "y": origin_y}
    upright_fx, upright_cx = along(next_x_x - origin_x, next_x_y - origin_y, origin)
    upright_fy, upright_cy = along(next_y_x - origin_x, next_y_y - origin_y, origin)
    return upright_fx, upright_fy, upright_cx, upright_cy
