"""Pre- and post-processing of Depth Anything (docs/method.md section 3).

This file imports only transformers, torch, numpy, PIL and the standard library, so that `save_pretrained`
can copy it next to the weights for `trust_remote_code` users who do not have this package.

Pre-processing reproduces the official Depth Anything (V1 and V2) pipeline: the image as RGB floats in
[0, 1]; a keep-aspect "lower_bound" resize (both sides at least 518, each a multiple of 14); bicubic
interpolation of the floats without antialiasing; ImageNet mean/std normalisation.

Two input rules hold for every input kind and are shared with the training data path (`data/images.py`):
- transparency: images with an alpha channel (or a transparent palette entry / colour) are composited on
  WHITE, c * alpha + (1 - alpha), what viewers show behind a transparent image. The official code reads with
  `cv2.IMREAD_COLOR`, which keeps the arbitrary colour stored under transparent pixels: opaque pixels agree.
- size: the keep-aspect resize refuses images more elongated than `max_aspect_ratio` (10:1 by default), whose
  resized size explodes (a 1x10000 image would become 518 x 5,180,000 pixels in "lower_bound" mode).

Bicubic interpolation versus the official `cv2.resize(..., interpolation=cv2.INTER_CUBIC)`: both use the
cubic-convolution kernel with a = -0.75, half-pixel centres (source = (target + 0.5) * in / out - 0.5) and
replicate the border pixels (out-of-range taps are clamped to the edge), and neither antialiases when
shrinking. The only difference is arithmetic: torch computes source coordinates in float32, which moves a
tap by up to ~1e-4 pixel at 2k widths. On uniform noise (the worst case) that changes values by up to
~1.3e-4; on smooth 8-bit images (gradients, waves) it stays below 1e-6. (The official code feeds float64 images, for which OpenCV
itself deviates from exact cubic convolution by a similar ~1e-4.)
"""

import base64
import binascii
import io
import math
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import TypedDict

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.utils import TensorType
from transformers.utils.hub import is_offline_mode

RESIZE_MODES = ("lower_bound", "minimal")
# What `predicted_depth` holds for each model type ("depth_type" in the post-processed results).
DEPTH_TYPE_OF_ESTIMATION_TYPE = {"relative": "disparity", "metric": "metric_depth"}
# The most elongated image (long side / short side) the keep-aspect resize accepts by default.
DEFAULT_MAX_ASPECT_RATIO = 10.0
# PIL modes with an alpha channel; palette and other images mark transparency in `info["transparency"]`.
_ALPHA_PIL_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# PIL modes holding one 16-bit channel ("I" is how older Pillow versions open 16-bit PNGs).
_SIXTEEN_BIT_PIL_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Full-scale value of each integer dtype accepted as an image.
_INTEGER_FULL_SCALE = {torch.uint8: 255.0, torch.uint16: 65535.0}
# Errors PIL raises for files it cannot identify or decode (truncated data, bad headers, bad chunks).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


class DepthAnythingHFImageProcessorKwargs(TypedDict, total=False):
    """Options of [`DepthAnythingHFImageProcessor`], overridable in `from_pretrained` and per call."""

    do_resize: bool
    size: int | dict[str, int]
    resize_mode: str
    keep_aspect_ratio: bool
    ensure_multiple_of: int
    max_aspect_ratio: float | None
    do_normalize: bool
    image_mean: list[float]
    image_std: list[float]
    depth_estimation_type: str


def _check_resize_options(resize_mode: str, ensure_multiple_of: int, max_aspect_ratio: float | None = None) -> None:
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
    if isinstance(ensure_multiple_of, bool) or not isinstance(ensure_multiple_of, int) or ensure_multiple_of < 1:
        raise ValueError(f"ensure_multiple_of must be a positive integer, got {ensure_multiple_of!r}")
    if max_aspect_ratio is not None and (
        isinstance(max_aspect_ratio, bool) or not isinstance(max_aspect_ratio, int | float) or not max_aspect_ratio >= 1
    ):
        raise ValueError(f"max_aspect_ratio must be a number >= 1 or None, got {max_aspect_ratio!r}")


def constrain_to_multiple_of(value: float, multiple: int, min_value: int = 0) -> int:
    """Round `value` to the nearest multiple of `multiple`, rounding up instead if that falls below `min_value`.

    Python's `round` rounds halves to even, as the official code's `np.round` does.
    """
    rounded = round(value / multiple) * multiple
    if rounded < min_value:
        rounded = math.ceil(value / multiple) * multiple
    return int(rounded)


def get_resize_output_size(
    input_size: tuple[int, int],
    target_size: tuple[int, int],
    keep_aspect_ratio: bool,
    ensure_multiple_of: int,
    resize_mode: str,
    max_aspect_ratio: float | None = None,
) -> tuple[int, int]:
    """(height, width) the official `Resize` transform produces for an image of `input_size` (docs/method.md section 3).

    With `keep_aspect_ratio`, one scale is used for both sides: "lower_bound" takes the larger of the two
    per-side scales, so both sides reach at least the target (the official Depth Anything setting);
    "minimal" takes the per-side scale closer to 1 (transformers' DPTImageProcessor). Each side is then
    rounded to a multiple of `ensure_multiple_of`; in "lower_bound" mode a side rounded below its target is
    rounded up instead, in "minimal" mode a side rounded to 0 becomes `ensure_multiple_of`. Without
    `keep_aspect_ratio` the output size depends on `target_size` only.

    Raises a ValueError, with `keep_aspect_ratio`, for an image whose long side exceeds `max_aspect_ratio`
    times its short side (None: no bound): its output would be that many times the target size.
    """
    _check_resize_options(resize_mode, ensure_multiple_of, max_aspect_ratio)
    input_height, input_width = input_size
    if keep_aspect_ratio and max_aspect_ratio is not None:
        aspect_ratio = max(input_height, input_width) / min(input_height, input_width)
        if aspect_ratio > max_aspect_ratio:
            raise ValueError(
                f"an image of {input_height}x{input_width} pixels (height x width) is more elongated "
                f"({aspect_ratio:.1f}:1) than max_aspect_ratio={max_aspect_ratio:g} allows; keep-aspect resizing "
                f"would make one side {aspect_ratio:.1f} times the target size. Crop or pad it, pass "
                "keep_aspect_ratio=False with a fixed size, or raise max_aspect_ratio"
            )
    target_height, target_width = target_size
    scale_height = target_height / input_height
    scale_width = target_width / input_width
    if keep_aspect_ratio:
        if resize_mode == "lower_bound":
            scale_height = scale_width = max(scale_height, scale_width)
        elif abs(1 - scale_width) < abs(1 - scale_height):
            scale_height = scale_width
        else:
            scale_width = scale_height
    lower_bound = resize_mode == "lower_bound"
    return (
        constrain_to_multiple_of(
            scale_height * input_height, ensure_multiple_of, target_height if lower_bound else ensure_multiple_of
        ),
        constrain_to_multiple_of(
            scale_width * input_width, ensure_multiple_of, target_width if lower_bound else ensure_multiple_of
        ),
    )


def resize_bicubic(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a [C, H, W] float image with bicubic convolution (a = -0.75), no antialiasing, as cv2.INTER_CUBIC."""
    if tuple(image.shape[-2:]) == tuple(size):
        # At scale 1 every output pixel takes its own input pixel with weight 1: skip the copy.
        return image
    return F.interpolate(image[None], size=size, mode="bicubic", align_corners=False, antialias=False)[0]


def _download(url: str, name: str, timeout: float | None) -> bytes:
    """The bytes at an http(s) `url`; a ConnectionError naming it when offline or unreachable."""
    if is_offline_mode():
        raise ConnectionError(
            f"{name}: cannot download it: offline mode is on (HF_HUB_OFFLINE); download the image and pass "
            "its path, bytes or a PIL image"
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as error:
        raise ConnectionError(f"{name}: could not download it: {error}") from error


def _described_source(source: str | os.PathLike | bytes) -> str:
    """How errors name an image given as a source: its path or URL, or the size of its bytes / base64 text."""
    if isinstance(source, bytes | bytearray):
        return f"{len(source)} bytes"
    source = os.fspath(source)
    if os.path.exists(source) or source.startswith(("http://", "https://")) or len(source) <= 200:
        return repr(source)
    return f"text of {len(source)} characters"


def _open_image_source(source: str | os.PathLike | bytes, name: str, timeout: float | None = None) -> PIL.Image.Image:
    """Decode a file path, http(s) URL, base64 string or encoded bytes into a loaded PIL image, its file closed.

    Every mode is kept as decoded (16-bit, float), unlike transformers' `load_image`, which converts to 8-bit RGB.
    `name` already names the source (`_described_source`).
    """
    encoded = source
    if not isinstance(source, bytes | bytearray):
        source = os.fspath(source)
        if source.startswith(("http://", "https://")):
            encoded = _download(source, name, timeout)
        elif os.path.isfile(source):
            encoded = None
        elif os.path.exists(source):
            raise ValueError(f"{name} is not an image file")
        else:
            payload = source.split(",", 1)[1] if source.startswith("data:image/") else source
            try:
                encoded = base64.b64decode("".join(payload.split()), validate=True)
            except (binascii.Error, ValueError):
                raise FileNotFoundError(
                    f"{name}: the file does not exist (and the text is neither an http(s) URL nor base64-encoded "
                    "image data)"
                ) from None
    try:
        image = PIL.Image.open(source if encoded is None else io.BytesIO(encoded))
        with image:
            image.load()
    except _DECODE_ERRORS as error:
        raise ValueError(f"{name} could not be decoded as an image: {error}") from error
    return image


def _pil_to_array(image: PIL.Image.Image, name: str) -> np.ndarray:
    """Upright (EXIF orientation applied) pixels of a PIL image: HxWx3 or HxWx4 (alpha) uint8, or HxW uint16/float32.

    Palette, grayscale and CMYK images are converted by PIL, as the official `cv2.imread(path, cv2.IMREAD_COLOR)`
    does; 8-bit images with transparency become RGBA, composited on white later. 16-bit and float images keep
    their values (a transparent value marked in a 16-bit PNG is ignored).
    """
    try:
        image = PIL.ImageOps.exif_transpose(image)
        keeps_its_depth = image.mode in (*_SIXTEEN_BIT_PIL_MODES, "F")
        if image.mode in _ALPHA_PIL_MODES or ("transparency" in image.info and not keeps_its_depth):
            image = image.convert("RGBA")
        elif not keeps_its_depth and image.mode != "RGB":
            image = image.convert("RGB")
        pixels = np.asarray(image)
    except _DECODE_ERRORS as error:
        raise ValueError(f"{name} (PIL image, mode {image.mode!r}) could not be decoded: {error}") from error
    if image.mode in _SIXTEEN_BIT_PIL_MODES:
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise ValueError(f"{name}: PIL mode {image.mode!r} pixels must be 16-bit values (0..65535)")
        return pixels.astype(np.uint16)
    return pixels


def _input_name(name: str, image) -> str:
    """`name` with the path, URL or size of an image given as a source, for error messages."""
    if isinstance(image, str | os.PathLike | bytes | bytearray):
        return f"{name} ({_described_source(image)})"
    return name


def load_image_tensor(image, name: str = "images", timeout: float | None = None) -> torch.Tensor:
    """One image as the processor reads it, before any conversion: a [C, H, W] tensor (C in 1, 3, 4) of its own
    dtype (uint8, uint16 or float), upright. Accepts a PIL image, numpy HxW/HxWxC, torch HxW/CxHxW, a file path,
    an http(s) URL (downloaded with `timeout`), base64 text or encoded bytes; `name` names it in errors."""
    return _load_named_image_tensor(image, _input_name(name, image), timeout)


def _load_named_image_tensor(image, name: str, timeout: float | None = None) -> torch.Tensor:
    if isinstance(image, str | os.PathLike | bytes | bytearray):
        image = _open_image_source(image, name, timeout)
    if isinstance(image, PIL.Image.Image):
        image = _pil_to_array(image, name)
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"{name}: numpy images must be HxW or HxWxC with C in (1, 3, 4), got shape {image.shape}; "
                "pass channels-first images as torch tensors"
            )
        if not (image.dtype.isnative and image.flags.writeable):
            # torch cannot wrap non-native byte order (big-endian 16-bit) or read-only memory.
            image = image.astype(image.dtype.newbyteorder("="))
        tensor = torch.from_numpy(image)
        image = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"{name}: expected a PIL image, numpy array, torch tensor, file path, URL or encoded bytes, "
            f"got {type(image).__name__}"
        )
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an image with 1, 3 or 4 channels, got shape {tuple(image.shape)}")
    if image.shape[-2] == 0 or image.shape[-1] == 0:
        raise ValueError(f"{name} is empty (height x width = {image.shape[-2]} x {image.shape[-1]})")
    return image


def _to_unit_float(image: torch.Tensor, name: str) -> torch.Tensor:
    """float32 copy of an image in [0, 1]: integers are divided by their full scale, floats must already be."""
    if image.dtype in _INTEGER_FULL_SCALE:
        return image.to(torch.float32).div_(_INTEGER_FULL_SCALE[image.dtype])
    if not image.is_floating_point():
        raise TypeError(f"{name}: expected a uint8, uint16 or floating-point image, got dtype {image.dtype}")
    image = image.to(torch.float32)
    finite = torch.isfinite(image)
    if not finite.all():
        raise ValueError(
            f"{name}: holds {int((~finite).sum())} non-finite values (NaN or inf) of {image.numel()}; a depth "
            "model needs every pixel: fill or crop them before processing"
        )
    minimum, maximum = torch.aminmax(image)
    if minimum < 0 or maximum > 1:
        raise ValueError(
            f"{name}: floating-point images must hold values in [0, 1], got [{minimum.item():.4g}, "
            f"{maximum.item():.4g}]; divide 8-bit values by 255 or pass the integer image"
        )
    return image


def composite_on_white(image: torch.Tensor) -> torch.Tensor:
    """A [4, H, W] RGBA float image in [0, 1] as RGB over a white background: rgb * alpha + (1 - alpha)."""
    rgb, alpha = image[:3], image[3:]
    return rgb * alpha + (1 - alpha)


def _as_image_list(images) -> list:
    """The images of one call as a flat list: a single image, a sequence of images, or a 4-D batch."""
    if isinstance(images, torch.Tensor | np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, Sequence) and not isinstance(images, str | bytes | bytearray):
        if len(images) == 0:
            raise ValueError("images is an empty list; pass at least one image")
        return list(images)
    return [images]


def _height_width(size, name: str = "size") -> tuple[int, int]:
    """(height, width) of a `size` option: an int (square) or a dict with "height" and "width"."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"height": size, "width": size}
    if not isinstance(size, Mapping) or set(size) != {"height", "width"}:
        raise ValueError(f'{name} must be an int or a dict {{"height": h, "width": w}}, got {size!r}')
    if not all(isinstance(size[key], int) and size[key] > 0 for key in ("height", "width")):
        raise ValueError(f"{name} must hold positive integers, got {dict(size)!r}")
    return size["height"], size["width"]


def _check_depth_estimation_type(depth_estimation_type: str) -> str:
    if depth_estimation_type not in DEPTH_TYPE_OF_ESTIMATION_TYPE:
        raise ValueError(
            f"depth_estimation_type must be one of {tuple(DEPTH_TYPE_OF_ESTIMATION_TYPE)}, "
            f"got {depth_estimation_type!r}"
        )
    return depth_estimation_type


class DepthAnythingHFImageProcessor(BaseImageProcessor):
    r"""
    Image processor of Depth Anything: the official pre-processing and the post-processing back to input size.

    Accepts PIL images (any mode, EXIF orientation applied), numpy arrays (HxW or HxWxC; uint8, uint16 or
    float in [0, 1], finite), torch tensors (HxW or CxHxW, same dtypes), 4-D batches of arrays or tensors, file
    paths, http(s) URLs, base64 text and encoded image bytes. Grayscale is replicated to RGB; images with alpha
    (4 channels, or PIL transparency) are composited on white. NaN or inf pixels raise a ValueError.

    Args:
        do_resize (`bool`, defaults to `True`): resize the images.
        size (`int` or `dict[str, int]`, defaults to `{"height": 518, "width": 518}`): the target size.
        resize_mode (`str`, defaults to `"lower_bound"`): with `keep_aspect_ratio`, `"lower_bound"` scales so
            that both sides reach at least `size` (official Depth Anything); `"minimal"` picks the per-side scale
            closer to 1 (transformers' DPTImageProcessor, whose sizes it reproduces; DPTImageProcessor also
            antialiases uint8 images, this processor never does).
        keep_aspect_ratio (`bool`, defaults to `True`): keep the aspect ratio. With `False`, every image is
            resized to `size` itself (rounded to `ensure_multiple_of`), which lets images of different sizes
            share a batch.
        ensure_multiple_of (`int`, defaults to 14): output sides are multiples of this (the ViT patch size).
        max_aspect_ratio (`float`, defaults to 10): with `keep_aspect_ratio`, images whose long side exceeds this
            many times their short side raise a ValueError instead of being resized to a side of that many times
            `size` (a 1x10000 image would need 518 x 5,180,000 pixels). `None` (or `float("inf")`, which also
            works per call) lifts the bound.
        do_normalize (`bool`, defaults to `True`): subtract `image_mean` and divide by `image_std`.
        image_mean (`list[float]`, defaults to the ImageNet mean): per-channel mean.
        image_std (`list[float]`, defaults to the ImageNet std): per-channel standard deviation.
        depth_estimation_type (`str`, defaults to `"relative"`): what the model predicts, `"relative"`
            (affine-invariant disparity) or `"metric"` (depth in metres); names the post-processed output.
        align_corners (`bool`, defaults to `True`): how post-processing resizes back to the input size
            (bilinear); the official V2 code uses `True`, the official V1 code `False`.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = DepthAnythingHFImageProcessorKwargs

    def __init__(
        self,
        do_resize: bool = True,
        size: int | dict[str, int] = 518,
        resize_mode: str = "lower_bound",
        keep_aspect_ratio: bool = True,
        ensure_multiple_of: int = 14,
        max_aspect_ratio: float | None = DEFAULT_MAX_ASPECT_RATIO,
        do_normalize: bool = True,
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
        depth_estimation_type: str = "relative",
        align_corners: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.do_resize = do_resize
        height, width = _height_width(size)
        self.size = {"height": height, "width": width}
        _check_resize_options(resize_mode, ensure_multiple_of, max_aspect_ratio)
        self.resize_mode = resize_mode
        self.keep_aspect_ratio = keep_aspect_ratio
        self.ensure_multiple_of = ensure_multiple_of
        self.max_aspect_ratio = max_aspect_ratio
        self.do_normalize = do_normalize
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.depth_estimation_type = _check_depth_estimation_type(depth_estimation_type)
        self.align_corners = align_corners

    @classmethod
    def from_model_config(cls, config, **kwargs) -> "DepthAnythingHFImageProcessor":
        """The processor for a model of `config` (a `DepthAnythingHFConfig`): post-processing names its output
        (`depth_estimation_type`) and resizes it back as the official code of its release does
        (`config.upsample_align_corners`). `kwargs` set the other options, e.g. `size`."""
        return cls(
            depth_estimation_type=config.depth_estimation_type,
            align_corners=config.upsample_align_corners,
            **kwargs,
        )

    def preprocess(
        self,
        images,
        do_resize: bool | None = None,
        size: int | dict[str, int] | None = None,
        resize_mode: str | None = None,
        keep_aspect_ratio: bool | None = None,
        ensure_multiple_of: int | None = None,
        max_aspect_ratio: float | None = None,
        do_normalize: bool | None = None,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        return_tensors: str | TensorType | None = None,
        device: str | torch.device | None = None,
    ) -> BatchFeature:
        """
        Turn one image or a list of images into `pixel_values` float32 [B, 3, H, W].

        The options default to the processor's attributes (see the class docstring). `device` is where the
        images are converted and resized (default: where they are, the CPU for PIL and numpy). Images whose
        processed sizes differ raise a ValueError: pass a fixed `size` with `keep_aspect_ratio=False`, or
        process them one at a time.
        """
        do_resize = self.do_resize if do_resize is None else do_resize
        target_size = _height_width(self.size if size is None else size)
        resize_mode = self.resize_mode if resize_mode is None else resize_mode
        keep_aspect_ratio = self.keep_aspect_ratio if keep_aspect_ratio is None else keep_aspect_ratio
        ensure_multiple_of = self.ensure_multiple_of if ensure_multiple_of is None else ensure_multiple_of
        max_aspect_ratio = self.max_aspect_ratio if max_aspect_ratio is None else max_aspect_ratio
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        image_list = _as_image_list(images)

        resized_images = []
        for index, image in enumerate(image_list):
            name = _input_name(f"images[{index}]" if len(image_list) > 1 else "images", image)
            image = _load_named_image_tensor(image, name).to(device)
            image = _to_unit_float(image, name)
            if image.shape[0] == 4:
                image = composite_on_white(image)
            if do_resize:
                try:
                    output_size = get_resize_output_size(
                        tuple(image.shape[-2:]),
                        target_size,
                        keep_aspect_ratio,
                        ensure_multiple_of,
                        resize_mode,
                        max_aspect_ratio,
                    )
                except ValueError as error:
                    raise ValueError(f"{name}: {error}") from None
                image = resize_bicubic(image, output_size)
            resized_images.append(image.expand(3, -1, -1))

        sizes = sorted({tuple(image.shape[-2:]) for image in resized_images})
        if len(sizes) > 1:
            raise ValueError(
                f"The images were processed to different sizes {sizes} and cannot be stacked into one batch. "
                'Pass size={"height": h, "width": w} with keep_aspect_ratio=False to resize every image to one '
                "size, or process the images one at a time."
            )
        # Each image is normalised straight into its slot of the batch: no separate normalised copy to stack.
        pixel_values = torch.empty(
            (len(resized_images), 3, *sizes[0]), dtype=torch.float32, device=resized_images[0].device
        )
        for image, slot in zip(resized_images, pixel_values):
            if do_normalize:
                self.normalize(
                    image,
                    self.image_mean if image_mean is None else image_mean,
                    self.image_std if image_std is None else image_std,
                    out=slot,
                )
            else:
                slot.copy_(image)
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def processed_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the `pixel_values` of an image of `image_size` (height, width, upright) under the
        processor's own options; raises the ValueError `preprocess` raises for an image it refuses (too elongated).
        """
        if not self.do_resize:
            return tuple(image_size)
        return get_resize_output_size(
            tuple(image_size),
            _height_width(self.size),
            self.keep_aspect_ratio,
            self.ensure_multiple_of,
            self.resize_mode,
            self.max_aspect_ratio,
        )

    def normalize(
        self, image: torch.Tensor, mean: Sequence[float], std: Sequence[float], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(image - mean) / std per channel of a [3, H, W] (or [B, 3, H, W]) float tensor, written to `out` if given.

        Computed as image * (1 / std) + (-mean / std): one pass over the image instead of two.
        """
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"image_mean and image_std must hold 3 values, got {list(mean)} and {list(std)}")
        mean = torch.tensor(mean, dtype=torch.float64)
        std = torch.tensor(std, dtype=torch.float64)
        scale = (1 / std).to(image.device, image.dtype)[:, None, None]
        shift = (-mean / std).to(image.device, image.dtype)[:, None, None]
        return torch.addcmul(shift, image, scale, out=out)

    def to_dict(self) -> dict:
        serialized = super().to_dict()
        auto_map = serialized.get("auto_map", {})
        if isinstance(auto_map.get("AutoImageProcessor"), str):
            # Key the remote-code class by backend, as transformers 5 does. A plain string also makes
            # `pipeline()` derive a non-existent "...VideoProcessor" from it and ask the user whether to run it.
            class_reference = auto_map["AutoImageProcessor"]
            serialized["auto_map"] = {
                **auto_map,
                "AutoImageProcessor": {"pil": class_reference, "torchvision": class_reference},
            }
        return serialized

    def post_process_depth_estimation(
        self,
        outputs,
        target_sizes: torch.Tensor | Sequence[tuple[int, int]] | None = None,
        depth_estimation_type: str | None = None,
    ) -> list[dict]:
        """
        Per image, the prediction resized to its original size, as the official code does it (bilinear,
        `align_corners` as the processor says: `True` for V2, `False` for V1).

        Args:
            outputs: the model output (a `DepthEstimatorOutput` or a mapping) with `predicted_depth` [B, H, W].
            target_sizes: per image its original (height, width), as a list or a [B, 2] tensor; `None` keeps
                the model's resolution.
            depth_estimation_type: `"relative"` or `"metric"`; defaults to `outputs["depth_estimation_type"]`
                if present, else the processor's `depth_estimation_type`.

        Returns:
            A list with, per image, `{"predicted_depth": float32 [height, width], "depth_type": "disparity"}`
            for relative models (affine-invariant disparity, larger = nearer) or `"metric_depth"` (metres).
        """
        if not isinstance(outputs, Mapping) or "predicted_depth" not in outputs:
            raise TypeError(
                f"outputs must be a model output or mapping with 'predicted_depth', got {type(outputs).__name__}"
            )
        predicted_depth = outputs["predicted_depth"]
        if predicted_depth.ndim != 3:
            raise ValueError(f"predicted_depth must have shape [B, H, W], got {tuple(predicted_depth.shape)}")
        if depth_estimation_type is None:
            depth_estimation_type = outputs.get("depth_estimation_type") or self.depth_estimation_type
        depth_type = DEPTH_TYPE_OF_ESTIMATION_TYPE[_check_depth_estimation_type(depth_estimation_type)]
        if target_sizes is None:
            target_sizes = [None] * len(predicted_depth)
        elif len(target_sizes) != len(predicted_depth):
            raise ValueError(
                f"target_sizes holds {len(target_sizes)} sizes for a batch of {len(predicted_depth)} predictions"
            )
        elif isinstance(target_sizes, torch.Tensor):
            target_sizes = target_sizes.tolist()

        results = []
        for depth, target_size in zip(predicted_depth, target_sizes):
            depth = depth.float()
            if target_size is not None:
                target_size = (int(target_size[0]), int(target_size[1]))
                depth = F.interpolate(
                    depth[None, None], size=target_size, mode="bilinear", align_corners=self.align_corners
                )[0, 0]
            results.append({"predicted_depth": depth, "depth_type": depth_type})
        return results


__all__ = [
    "DepthAnythingHFImageProcessor",
    "composite_on_white",
    "constrain_to_multiple_of",
    "get_resize_output_size",
    "load_image_tensor",
]
