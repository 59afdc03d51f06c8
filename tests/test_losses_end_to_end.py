"""The training building blocks assembled by hand: a mixed labeled + unlabeled batch from the shared RGB-D
folder and photos cut from it, strong perturbation and CutMix on the unlabeled half, a tiny model, and all three
losses back-propagated with finite gradients."""

import torch

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.data import load_labeled_dataset, load_unlabeled_images, sample_to_tensors
from depth_anything_hf.data.transforms import PairedResizeCropFlip, StrongPerturbation, apply_cutmix, sample_cutmix_mask
from depth_anything_hf.losses import (
    affine_invariant_loss,
    cutmix_unlabeled_loss,
    depth_to_normalized_disparity,
    feature_alignment_loss,
)

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
RESOLUTION = 56


def normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - IMAGENET_MEAN) / IMAGENET_STD


def test_mixed_batch_backpropagates_all_three_losses(synthetic_rgbd, tiny_config, write_unlabeled_photos, tmp_path):
    generator = torch.Generator().manual_seed(0)
    geometry = PairedResizeCropFlip(RESOLUTION)

    labeled = [sample_to_tensors(sample) for sample in load_labeled_dataset(synthetic_rgbd).take(2)]
    crops = [geometry(s["image"], s["depth"], s["valid_mask"], s["sky_mask"], generator=generator) for s in labeled]
    labeled_images = torch.stack([crop.image for crop in crops])
    disparity, supervised = depth_to_normalized_disparity(
        torch.stack([crop.depth for crop in crops]),
        torch.stack([crop.valid_mask for crop in crops]),
        torch.stack([crop.sky_mask for crop in crops]),
    )

    photos = [row["image"] for row in load_unlabeled_images(write_unlabeled_photos(tmp_path / "photos", 4)).take(4)]
    processor = DepthAnythingHFImageProcessor(do_normalize=False)
    unlabeled_images = processor(
        images=photos, size={"height": RESOLUTION, "width": RESOLUTION}, keep_aspect_ratio=False, return_tensors="pt"
    )["pixel_values"]
    images_a, images_b = unlabeled_images[:2], unlabeled_images[2:]
    mix_mask = sample_cutmix_mask(2, RESOLUTION, RESOLUTION, probability=1.0, generator=generator)
    perturbation = StrongPerturbation()
    student_unlabeled = apply_cutmix(
        perturbation(images_a, generator=generator), perturbation(images_b, generator=generator), mix_mask
    )

    torch.manual_seed(0)
    student = DepthAnythingHFForDepthEstimation(tiny_config()).train()
    teacher = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    frozen_encoder = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    for model in (student, teacher):
        with torch.no_grad():
            model.head.conv3.bias.fill_(1.0)  # past the final ReLU

    with torch.no_grad():
        # Targets come from the CLEAN images (eq. 4-6); frozen features from the clean mixed input's source.
        teacher_a = teacher(normalize(images_a)).predicted_depth
        teacher_b = teacher(normalize(images_b)).predicted_depth
        frozen_features = frozen_encoder(normalize(student_unlabeled), output_encoder_features=True).encoder_features

    labeled_prediction = student(normalize(labeled_images)).predicted_depth
    unlabeled_outputs = student(normalize(student_unlabeled), output_encoder_features=True)
    loss_labeled = affine_invariant_loss(labeled_prediction, disparity, supervised)
    loss_unlabeled = cutmix_unlabeled_loss(unlabeled_outputs.predicted_depth, teacher_a, teacher_b, mix_mask)
    loss_feature = feature_alignment_loss(unlabeled_outputs.encoder_features, frozen_features, alpha=0.85)
    total = (loss_labeled + loss_unlabeled + loss_feature) / 3
    total.backward()

    assert labeled_images.shape == (2, 3, RESOLUTION, RESOLUTION) and supervised.any()
    assert 0 < mix_mask.mean() < 1  # CutMix was applied: both regions are present
    for loss in (loss_labeled, loss_unlabeled, loss_feature):
        assert torch.isfinite(loss) and loss > 0
    for name, parameter in student.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert all(p.grad is None for p in teacher.parameters())
