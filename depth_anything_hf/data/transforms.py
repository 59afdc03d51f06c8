"""Training transforms: paired geometry, strong perturbation and CutMix (docs/method.md sections 3-4).

All transforms work on batched tensors on any device and draw every random choice from an optional
`torch.Generator`, so a run reproduces from its seed. Each sample of a batch gets its own draw.

Why kornia: its functional ops (`kornia.enhance`, `kornia.color`, `kornia.filters`) take one
factor per sample as a tensor, so a whole batch is perturbed in one call on the GPU. Its
augmentation modules, like `torchvision.transforms.v2` (not a dependency; v2 would also draw one
parameter set per call, not per sample), draw from the global RNG, which a `torch.Generator`
cannot seed; so this module samples the parameters itself and hands them to the kornia ops.
"""

import math
from typing import NamedTuple

import kornia
import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _uniform(
    low: float, high: float, size: int | tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Draws from U(low, high) of shape `size`, sampled on the generator's device and moved to `device`."""
    sample_device = generator.device if generator is not None else device
    return (low + (high - low) * torch.rand(size, generator=generator, device=sample_device)).to(device)


class StrongPerturbation:
    """Strong colour perturbation of the student's unlabeled input (docs/method.md section 4, stage 2).

    As in UniMatch: colour jitter with probability `jitter_probability` (brightness, contrast and
    saturation factors from U(1 - x, 1 + x), hue shift from U(-hue, hue) turns, applied in this fixed
    order, where torchvision draws a random order), grayscale with probability
    `grayscale_probability`, Gaussian blur with probability `blur_probability` and sigma from
    U(*blur_sigma). Every sample draws its own choices.

    Call it on `[B, 3, H, W]` float RGB in [0, 1] BEFORE ImageNet normalisation; the result is a new
    tensor in [0, 1] and the input is left unmodified.
    """

    def __init__(
        self,
        jitter_probability: float = 0.8,
        brightness: float = 0.5,
        contrast: float = 0.5,
        saturation: float = 0.5,
        hue: float = 0.25,
        grayscale_probability: float = 0.2,
        blur_probability: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
    ):
        for name, value, upper in (
            ("jitter_probability", jitter_probability, 1.0),
            ("brightness", brightness, 1.0),
            ("contrast", contrast, 1.0),
            ("saturation", saturation, 1.0),
            ("hue", hue, 0.5),
            ("grayscale_probability", grayscale_probability, 1.0),
            ("blur_probability", blur_probability, 1.0),
        ):
            if not 0.0 <= value <= upper:
                raise ValueError(f"{name} must be in [0, {upper}], got {value}")
        if not 0.0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must be (low, high) with 0 < low <= high, got {blur_sigma}")
        self.jitter_probability = jitter_probability
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.grayscale_probability = grayscale_probability
        self.blur_probability = blur_probability
        self.blur_sigma = blur_sigma
        # Three sigmas on each side hold 99.7% of the Gaussian's mass.
        self.blur_kernel_size = 2 * math.ceil(3 * blur_sigma[1]) + 1

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"images must be float [B, 3, H, W] RGB in [0, 1], got {images.dtype} {tuple(images.shape)}"
            )
        batch_size, device = images.shape[0], images.device

        def chosen(probability: float) -> Tensor:
            return (_uniform(0.0, 1.0, batch_size, generator, device) < probability)[:, None, None, None]

        def factor(spread: float) -> Tensor:
            return _uniform(1.0 - spread, 1.0 + spread, batch_size, generator, device)

        jitter = chosen(self.jitter_probability)
        jittered = kornia.enhance.adjust_brightness_accumulative(images, factor(self.brightness))
        jittered = kornia.enhance.adjust_contrast_with_mean_subtraction(jittered, factor(self.contrast))
        jittered = kornia.enhance.adjust_saturation_with_gray_subtraction(jittered, factor(self.saturation))
        hue_turns = _uniform(-self.hue, self.hue, batch_size, generator, device)
        jittered = kornia.enhance.adjust_hue(jittered, 2 * math.pi * hue_turns)
        perturbed = torch.where(jitter, jittered, images)

        grayscale = chosen(self.grayscale_probability)
        perturbed = torch.where(grayscale, kornia.color.rgb_to_grayscale(perturbed).expand_as(perturbed), perturbed)

        blur = chosen(self.blur_probability)
        sigma = _uniform(*self.blur_sigma, batch_size, generator, device)[:, None].expand(batch_size, 2)
        blurred = kornia.filters.gaussian_blur2d(perturbed, self.blur_kernel_size, sigma, border_type="reflect")
        return torch.where(blur, blurred, perturbed).clamp(0.0, 1.0)


def sample_cutmix_mask(
    batch_size: int,
    height: int,
    width: int,
    probability: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    area_range: tuple[float, float] = (0.02, 0.4),
    aspect_range: tuple[float, float] = (0.3, 1 / 0.3),
) -> Tensor:
    """CutMix masks `M` for eq. 4, `u_ab = u_a * M + u_b * (1 - M)` -> float `[B, H, W]`.

    `M` is 1 where the mixed image shows `u_a`. With probability `probability` a sample gets
    CutMix: `M` is 1 inside one rectangle, i.e. a box of `u_a` pasted onto `u_b`, and 0
    elsewhere; otherwise `M` is all ones (`u_ab = u_a`). UniMatch-style box: area fraction from
    U(*area_range), height/width ratio from U(*aspect_range) restricted to ratios that fit in the
    image, position uniform among those that fit.
    """
    for name, value in (("batch_size", batch_size), ("height", height), ("width", width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    if not 0.0 < area_range[0] <= area_range[1] <= 1.0 or not 0.0 < aspect_range[0] <= aspect_range[1]:
        raise ValueError(
            f"area_range must lie in (0, 1] and aspect_range be positive, got {area_range}, {aspect_range}"
        )
    device = torch.device(device) if device is not None else torch.device("cpu")

    applied = _uniform(0.0, 1.0, batch_size, generator, device) < probability
    area = _uniform(*area_range, batch_size, generator, device) * (height * width)
    # A box of area A with ratio r = h / w fits when A / width^2 <= r <= height^2 / A.
    lowest_ratio = (area / width**2).clamp_min(aspect_range[0])
    highest_ratio = (height**2 / area).clamp(max=aspect_range[1]).maximum(lowest_ratio)
    ratio = lowest_ratio + (highest_ratio - lowest_ratio) * _uniform(0.0, 1.0, batch_size, generator, device)
    box_width = (area / ratio).sqrt().floor().clamp(1, width)
    box_height = (area * ratio).sqrt().floor().clamp(1, height)
    left = ((width - box_width + 1) * _uniform(0.0, 1.0, batch_size, generator, device)).floor()
    top = ((height - box_height + 1) * _uniform(0.0, 1.0, batch_size, generator, device)).floor()

    columns = torch.arange(width, device=device)
    rows = torch.arange(height, device=device)
    inside_columns = (columns >= left[:, None]) & (columns < (left + box_width)[:, None])
    inside_rows = (rows >= top[:, None]) & (rows < (top + box_height)[:, None])
    box = inside_rows[:, :, None] & inside_columns[:, None, :]
    return (box | ~applied[:, None, None]).float()


def apply_cutmix(images_a: Tensor, images_b: Tensor, mask: Tensor) -> Tensor:
    """Eq. 4: `u_ab = u_a * M + u_b * (1 - M)` for images `[B, C, H, W]` and masks `[B, H, W]`."""
    if images_a.dim() != 4 or images_a.shape != images_b.shape:
        raise ValueError(
            f"images_a and images_b must both be [B, C, H, W] of one shape, got "
            f"{tuple(images_a.shape)} and {tuple(images_b.shape)}"
        )
    expected_mask_shape = (images_a.shape[0], *images_a.shape[2:])
    if tuple(mask.shape) != expected_mask_shape:
        raise ValueError(f"mask must have shape {expected_mask_shape}, got {tuple(mask.shape)}")
    return torch.where(mask[:, None] > 0.5, images_a, images_b)


def cutmix_partners(batch: Tensor) -> Tensor:
    """The CutMix partner `u_b` of every sample `u_a` of a batch (eq. 4): the sample before it, i.e. the batch
    rolled by one, so that every sample is pasted onto exactly one other. Works on any `[B, ...]` tensor: the
    images, and the teacher's targets `T(u_b)` of the regions outside the box."""
    return batch.roll(1, dims=0)


def cutmix_with_partners(batch: Tensor, mask: Tensor) -> Tensor:
    """Eq. 4 with each sample's partner (`cutmix_partners`): `u_a * M + u_b * (1 - M)` for images
    `[B, C, H, W]`, or for maps `[B, H, W]` such as the target each pixel of a CutMix image is compared with."""
    if batch.dim() == 3:
        return apply_cutmix(batch[:, None], cutmix_partners(batch)[:, None], mask)[:, 0]
    return apply_cutmix(batch, cutmix_partners(batch), mask)


class PairedSample(NamedTuple):
    """Output of `PairedResizeCropFlip`; a map that was not given stays `None`."""

    image: Tensor
    depth: Tensor
    valid_mask: Tensor | None
    sky_mask: Tensor | None


class PairedResizeCropFlip:
    """Training geometry (docs/method.md section 3): short side to `resolution`, random square crop of
    `resolution`, horizontal flip with probability `flip_probability`.

    The same crop and flip apply to the image, depth, valid mask and sky mask. The image is resized
    with `image_interpolation` (bicubic without antialias, as the official cv2 pipeline; clamped back
    to [0, 1]); depth and masks are resized with nearest-exact sampling, so no value is ever
    interpolated across invalid pixels and their dtype is kept.

    Call it on one sample (image `[3, H, W]`, maps `[H, W]` or `[1, H, W]`) or a batch (image
    `[B, 3, H, W]`, maps `[B, H, W]` or `[B, 1, H, W]`; each sample draws its own crop and flip).
    Outputs keep the input layouts with `H = W = resolution`. Images are float RGB in [0, 1].
    """

    def __init__(self, resolution: int, flip_probability: float = 0.5, image_interpolation: str = "bicubic"):
        if not isinstance(resolution, int) or resolution < 1:
            raise ValueError(f"resolution must be a positive int, got {resolution!r}")
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability}")
        if image_interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"image_interpolation must be 'bicubic' or 'bilinear', got {image_interpolation!r}")
        self.resolution = resolution
        self.flip_probability = flip_probability
        self.image_interpolation = image_interpolation

    def __call__(
        self,
        image: Tensor,
        depth: Tensor,
        valid_mask: Tensor | None = None,
        sky_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PairedSample:
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
        if not image.is_floating_point() or image.dim() not in (3, 4):
            raise ValueError(f"image must be float [3, H, W] or [B, 3, H, W], got {image.dtype} {tuple(image.shape)}")
        images = image if image.dim() == 4 else image[None]
        batch_size, _, height, width = images.shape
        maps = {"depth": depth, "valid_mask": valid_mask, "sky_mask": sky_mask}
        batched_maps = {
            name: self._as_batched_map(value, name, image) for name, value in maps.items() if value is not None
        }

        scale = self.resolution / min(height, width)
        resized_height = max(self.resolution, round(height * scale))
        resized_width = max(self.resolution, round(width * scale))
        device = images.device
        # Each sample's three draws in a row: from a CPU generator, whose draws are sequential, a batch gets the
        # crops and flips its samples would get one by one.
        draws = _uniform(0.0, 1.0, (batch_size, 3), generator, device)
        top = (draws[:, 0] * (resized_height - self.resolution + 1)).long()
        left = (draws[:, 1] * (resized_width - self.resolution + 1)).long()
        flip = draws[:, 2] < self.flip_probability
        output_size = (self.resolution, self.resolution)
        offsets = torch.arange(self.resolution, device=device)
        rows = top[:, None] + offsets
        columns = torch.where(flip[:, None], left[:, None] + offsets.flip(0), left[:, None] + offsets)

        if (resized_height, resized_width) != (height, width):
            images = F.interpolate(
                images, size=(resized_height, resized_width), mode=self.image_interpolation, align_corners=False
            ).clamp(0.0, 1.0)
        cropped_images = self._gather(images, rows, columns).reshape(image.shape[:-2] + output_size)

        # Nearest-exact source of each resized pixel i: floor((i + 0.5) * in / out), as F.interpolate.
        source_rows = ((rows + 0.5) * (height / resized_height)).floor().long().clamp_max(height - 1)
        source_columns = ((columns + 0.5) * (width / resized_width)).floor().long().clamp_max(width - 1)
        cropped_maps = {
            name: self._gather(batched, source_rows, source_columns).reshape(maps[name].shape[:-2] + output_size)
            for name, batched in batched_maps.items()
        }
        return PairedSample(
            cropped_images, cropped_maps["depth"], cropped_maps.get("valid_mask"), cropped_maps.get("sky_mask")
        )

    @staticmethod
    def _as_batched_map(value: Tensor, name: str, image: Tensor) -> Tensor:
        """`value` as `[B, 1, H, W]` after checking it matches `image`'s batch and size."""
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        spatial = tuple(image.shape[-2:])
        batch = tuple(image.shape[:-3])
        if tuple(value.shape) not in (batch + spatial, batch + (1,) + spatial):
            raise ValueError(
                f"{name} must have shape {batch + spatial} or {batch + (1,) + spatial} to match image "
                f"{tuple(image.shape)}, got {tuple(value.shape)}"
            )
        return value.reshape(-1, 1, *spatial)

    @staticmethod
    def _gather(batched: Tensor, rows: Tensor, columns: Tensor) -> Tensor:
        """`out[b, c, i, j] = batched[b, c, rows[b, i], columns[b, j]]`: rows, then columns, per sample (two
        `index_select`s move fewer elements and index far faster than one advanced-indexing gather of the crop)."""
        return torch.stack(
            [
                sample.index_select(-2, sample_rows).index_select(-1, sample_columns)
                for sample, sample_rows, sample_columns in zip(batched, rows, columns)
            ]
        )
