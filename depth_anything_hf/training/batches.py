"""From stream examples to training tensors: paired geometry, disparity targets and ImageNet normalisation.

Every random choice (crop, flip) is drawn from the `generator` passed in, which the training scripts checkpoint,
so a resumed run draws what an uninterrupted one would.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import kornia
import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..data import decode_rgb, sample_to_tensors
from ..data.transforms import PairedResizeCropFlip
from ..data_engine.labeling import label_teacher_inputs, teacher_input_images
from ..losses import depth_to_normalized_disparity

# Every process warns about its own samples.
logger = logging.getLogger(__name__)


@dataclass
class DepthBatch:
    """Training images with their target disparity, all at the training resolution R.

    images: float [B, 3, R, R] RGB in [0, 1] (not normalised, so that the student's input can be perturbed);
    disparity: float [B, R, R] target disparity (labeled: 1/depth normalised to [0, 1], sky 0; pseudo-labeled:
    the teacher's prediction); supervised_mask: bool [B, R, R], the pixels that count in the loss.
    """

    images: torch.Tensor
    disparity: torch.Tensor
    supervised_mask: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


def split_batch_size(train_batch_size: int, unlabeled_ratio: float) -> tuple[int, int]:
    """(labeled, pseudo-labeled) images per batch for `--unlabeled_ratio` r, exactly 1 : r (the paper's 1:2);
    r = inf gives a student without labeled images (V2)."""
    if math.isinf(unlabeled_ratio):
        return 0, train_batch_size
    labeled_share = train_batch_size / (1 + unlabeled_ratio)
    num_labeled = round(labeled_share)
    if num_labeled < 1 or not math.isclose(labeled_share, num_labeled, rel_tol=1e-6):
        raise ValueError(
            f"--train_batch_size {train_batch_size} cannot be split into labeled and pseudo-labeled images in the "
            f"ratio 1:{unlabeled_ratio:g}; use a multiple of {1 + unlabeled_ratio:g}"
        )
    return num_labeled, train_batch_size - num_labeled


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of [B, 3, H, W] RGB in [0, 1]: the model's `pixel_values`."""
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN, device=images.device, dtype=images.dtype)
    std = torch.tensor(IMAGENET_DEFAULT_STD, device=images.device, dtype=images.dtype)
    return kornia.enhance.normalize(images, mean, std)


def _cropped_labeled_maps(
    examples: Sequence[dict], geometry: PairedResizeCropFlip, device: torch.device, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labeled-schema examples (decoded, or their `sample_to_tensors` form) -> (images [B, 3, R, R], depth, valid
    and sky masks [B, R, R]) through one resize, crop and flip each; disparity ground truth is inverted to depth.

    A sample without a valid depth or sky pixel adds nothing to the loss: it is named in a warning. A batch
    in which no sample has one would train on a loss of 0 and is an error, as is therefore a stream without
    any supervised pixel (all-zero or all-NaN depth maps, for instance)."""
    samples, unsupervised = [], []
    for example in examples:
        # The labeled stream hands over tensors already (`labeled_stream`), decoded examples are converted here.
        sample = example if isinstance(example["image"], torch.Tensor) else sample_to_tensors(example)
        if not (sample["valid_mask"] | sample["sky_mask"]).any():
            unsupervised.append(f"{sample['id']!r} of dataset {sample['dataset']!r}")
            logger.warning(
                f"Labeled sample {unsupervised[-1]} has no supervised pixel (no positive finite depth, no sky): "
                "it adds nothing to the loss"
            )
        depth = sample["depth"]
        if sample["depth_kind"] == "disparity":
            # depth_to_normalized_disparity inverts depth; zero disparity (infinitely far) becomes invalid.
            depth = torch.where(sample["valid_mask"] & (depth > 0), depth.reciprocal(), 0.0)
        samples.append((sample["image"], depth, sample["valid_mask"], sample["sky_mask"]))
    if len(unsupervised) == len(examples):
        raise ValueError(
            f"No labeled sample of this batch has a supervised pixel ({', '.join(unsupervised)}): the loss would "
            "be 0 and the step would train nothing. Their depth maps are empty (0 = no depth), NaN or not "
            "positive; check the dataset and its depth_unit."
        )
    # One geometry call per sample, before stacking: at the training resolution the batch is several times
    # smaller than at the images' own sizes, and samples of any sizes need no grouping. From a CPU generator a
    # batch draws what its samples draw one by one.
    cropped = []
    for example, maps in zip(examples, samples):
        try:
            cropped.append(geometry(*(tensor.to(device) for tensor in maps), generator=generator))
        except ValueError as error:  # a map that does not match its image
            raise ValueError(f"labeled sample {example['id']!r} of dataset {example['dataset']!r}: {error}") from error
    return tuple(
        torch.stack([getattr(sample, name) for sample in cropped])
        for name in ("image", "depth", "valid_mask", "sky_mask")
    )


def labeled_batch(
    examples: Sequence[dict], geometry: PairedResizeCropFlip, device: torch.device, generator: torch.Generator
) -> DepthBatch:
    """Labeled-schema examples -> resized, cropped, flipped images and their normalised disparity targets
    (docs/method.md section 4, "Targets": 1/depth on valid pixels, normalised to [0, 1] per map, sky -> 0)."""
    images, depths, valid_masks, sky_masks = _cropped_labeled_maps(examples, geometry, device, generator)
    disparity, supervised_mask = depth_to_normalized_disparity(depths, valid_masks, sky_masks)
    return DepthBatch(images, disparity, supervised_mask)


@dataclass
class MetricDepthBatch:
    """Training images with metric ground truth, at the training resolution R: images float [B, 3, R, R] RGB in
    [0, 1]; depth float [B, R, R] in metres; valid_mask bool [B, R, R], the pixels with depth in
    [min_depth, max_depth] (sky and missing depth excluded)."""

    images: torch.Tensor
    depth: torch.Tensor
    valid_mask: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]


def metric_depth_batch(
    examples: Sequence[dict],
    geometry: PairedResizeCropFlip,
    device: torch.device,
    generator: torch.Generator,
    min_depth: float,
    max_depth: float,
) -> MetricDepthBatch:
    """Labeled-schema examples with depth in metres -> resized, cropped, flipped images and depth, supervised
    where the depth is valid and within [min_depth, max_depth] (V2 metric fine-tuning)."""
    for example in examples:
        if example.get("depth_kind", "depth") != "depth":
            raise ValueError(
                f"sample {example.get('id')!r} of {example.get('dataset')!r} has {example['depth_kind']} ground truth; "
                "metric fine-tuning needs depth in metres"
            )
    images, depths, valid_masks, sky_masks = _cropped_labeled_maps(examples, geometry, device, generator)
    valid = valid_masks & ~sky_masks & depths.isfinite() & (depths >= min_depth) & (depths <= max_depth)
    return MetricDepthBatch(images, torch.where(valid, depths, 0.0), valid)


def pseudo_labeled_batch(
    samples: Sequence[dict], geometry: PairedResizeCropFlip, device: torch.device, generator: torch.Generator
) -> DepthBatch:
    """Student samples ({"image": [3, h, w] in [0, 1], "disparity": [h, w]} at the teacher's input resolution,
    as `data.pseudo_labels.load_pseudo_labels` reads them) -> the clean images and the teacher's disparity, both
    through the same crop and flip. Every pixel is supervised."""
    images, disparities = [], []
    for sample in samples:
        cropped = geometry(
            torch.as_tensor(sample["image"], dtype=torch.float32).to(device),
            torch.as_tensor(sample["disparity"], dtype=torch.float32).to(device),
            generator=generator,
        )
        images.append(cropped.image)
        disparities.append(cropped.depth)
    disparity = torch.stack(disparities)
    return DepthBatch(torch.stack(images), disparity, torch.ones_like(disparity, dtype=torch.bool))


def online_pseudo_labeled_samples(
    examples: Sequence[dict], teacher: torch.nn.Module, image_processor, autocast_dtype: torch.dtype | None = None
) -> list[dict]:
    """Unlabeled examples ({"image_bytes": the encoded file, "id"}) labelled now by `teacher` (`--teacher`):
    student samples of the same form, computed the same way, as the data engine's precomputed ones."""
    rgb_images = [decode_rgb(example["image_bytes"]) for example in examples]
    images = teacher_input_images(rgb_images, image_processor, next(teacher.parameters()).device)
    disparities = label_teacher_inputs(teacher, image_processor, images, autocast_dtype)
    return [
        {"image": image, "disparity": disparity.float(), "id": example["id"]}
        for image, disparity, example in zip(images, disparities, examples)
    ]
