"""Pseudo disparity from the teacher on clean images (docs/method.md, section 4, data engine).

One function, `predict_pseudo_disparity`, computes the targets, both for the shards written by
`training_scripts/pseudo_label.py` and in the student's online `--teacher` mode, so that both give the same
targets. The images it sees are made by `teacher_input_images`: decoded RGB resized to the teacher's input
resolution by the teacher's image processor.
"""

import hashlib
from collections.abc import Sequence

import torch


def teacher_input_images(
    rgb_images: Sequence, image_processor, device: torch.device | str | None = None
) -> list[torch.Tensor]:
    """Each RGB image resized to the teacher's input resolution by `image_processor`: float32 [3, h, w] in [0, 1].

    Not normalised, so that the student can perturb the same image; `teacher_pixel_values` normalises. The resize
    runs on `device` (the teacher's, when labelling): on a GPU that keeps the bicubic resize off the CPU, which
    otherwise bounds the data engine's throughput.
    """
    return [
        image_processor.preprocess(rgb_image, do_normalize=False, device=device)["pixel_values"][0]
        for rgb_image in rgb_images
    ]


def teacher_pixel_values(images: torch.Tensor, image_processor) -> torch.Tensor:
    """`images` ([B, 3, h, w] in [0, 1]) normalised with the teacher processor's mean and std."""
    return image_processor.normalize(images, image_processor.image_mean, image_processor.image_std)


def predict_pseudo_disparity(
    teacher: torch.nn.Module, pixel_values: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The teacher's pseudo disparity T(u) of clean images u (docs/method.md section 4, eq. 3): float16 [B, h, w].

    `pixel_values` are the normalised clean images [B, 3, h, w]. The teacher must be in eval mode: dropout or
    drop-path would make the targets random. Autocast is set here, not inherited from the caller, so that
    the data engine and the student's online teacher compute the same targets: `autocast_dtype` None runs in
    the teacher's own dtype, torch.bfloat16 / torch.float16 under autocast.
    """
    if teacher.training:
        raise ValueError("teacher is in training mode; call teacher.eval() so that its pseudo-labels are deterministic")
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
        raise ValueError(f"pixel_values must be a [B, 3, h, w] tensor, got {getattr(pixel_values, 'shape', pixel_values)!r}")
    with torch.no_grad(), torch.autocast(
        pixel_values.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
    ):
        disparity = teacher(pixel_values).predicted_depth
    return disparity.to(torch.float16)


def label_teacher_inputs(
    teacher: torch.nn.Module, image_processor, images: Sequence[torch.Tensor], autocast_dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """Pseudo disparity (float16 [h, w], on the teacher's device) of each `teacher_input_images` image.

    Images whose processed sizes differ (aspect ratios) go through the teacher in separate batches, one
    per size, in a fixed order, so the same images always form the same batches.
    """
    device = next(teacher.parameters()).device
    indices_of_size: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        indices_of_size.setdefault(tuple(image.shape[-2:]), []).append(index)
    disparities: list[torch.Tensor | None] = [None] * len(images)
    for indices in indices_of_size.values():
        pixel_values = teacher_pixel_values(torch.stack([images[index] for index in indices]), image_processor)
        batch_disparity = predict_pseudo_disparity(teacher, pixel_values.to(device), autocast_dtype)
        for index, disparity in zip(indices, batch_disparity):
            disparities[index] = disparity
    return disparities


def label_images(
    teacher: torch.nn.Module, image_processor, rgb_images: Sequence, autocast_dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """Pseudo disparity (float16 [h, w], on the teacher's device) of each RGB image, as the data engine labels it."""
    device = next(teacher.parameters()).device
    images = teacher_input_images(rgb_images, image_processor, device)
    return label_teacher_inputs(teacher, image_processor, images, autocast_dtype)


def teacher_sha256(model: torch.nn.Module) -> str:
    """sha256 of a model's weights: every state-dict entry's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
