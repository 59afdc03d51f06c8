"""Training throughput: the student step and the data engine, against plain baselines on the same weights.

    python benchmarks/training.py                                   # ViT-S at 266 and 518, bf16 on CUDA
    python benchmarks/training.py --resolutions 266 --steps 3 --warmup_steps 1 --batch_size 3   # a quick CPU run

1. Student step (images/s): our training step (`depth_anything_hf.training`: strong perturbation + CutMix,
   one forward of labeled and CutMix images with encoder features, the frozen DINOv2 for feature alignment,
   L_l + L_u + L_feat, backward, AdamW) against a plain loop doing the same with transformers'
   `DepthAnythingForDepthEstimation` and `Dinov2Backbone` on the same weights and the same loss functions.
   Beside them, the FLOP floor: the step's FLOPs (torch's counter) at the GEMM rate measured in the same run.
2. Pseudo-labelling (images/s): the data engine's `label_images` (PIL photos -> processor -> teacher ->
   float16 disparity) and `predict_pseudo_disparity` (ready pixel values) against a bare teacher forward.

Prints markdown tables with the ratios (> 1: ours is faster / the engine costs nothing over the bare forward).
Weights are random: speed does not depend on them.
"""

import argparse
import copy
import tempfile

import torch
from harness import add_model_arguments, build_config, count_flops, interleaved_median_seconds, matmul_flops_per_second
from PIL import Image
from transformers import DepthAnythingForDepthEstimation

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.data.transforms import StrongPerturbation, cutmix_partners
from depth_anything_hf.data_engine.labeling import label_images, predict_pseudo_disparity
from depth_anything_hf.losses import affine_invariant_loss, cutmix_unlabeled_loss, feature_alignment_loss
from depth_anything_hf.mixed_precision import MIXED_PRECISION_CHOICES, autocast_dtype
from depth_anything_hf.training.batches import DepthBatch, normalize_images, split_batch_size
from depth_anything_hf.training.encoder_init import FrozenFeatureEncoder
from depth_anything_hf.training.objectives import StudentLossSettings, perturb_and_mix, student_losses
from depth_anything_hf.training.runtime import freeze_unused_parameters, parameter_groups


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[266, 518], help="student crop sizes")
    parser.add_argument("--batch_size", type=int, default=6, help="student images per step (labeled 1 : 2)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--labeling_batch_size", type=int, default=8)
    parser.add_argument("--photo_size", type=int, nargs=2, default=[480, 640], help="height width of the photos")
    default_precision = "bf16" if torch.cuda.is_available() else "no"
    parser.add_argument("--mixed_precision", choices=MIXED_PRECISION_CHOICES, default=default_precision)
    return parser.parse_args(argv)


def student_batch(resolution: int, num_labeled: int, num_unlabeled: int, device) -> tuple[DepthBatch, DepthBatch]:
    generator = torch.Generator().manual_seed(0)

    def depth_batch(size: int) -> DepthBatch:
        images = torch.rand(size, 3, resolution, resolution, generator=generator)
        disparity = torch.rand(size, resolution, resolution, generator=generator)
        return DepthBatch(images.to(device), disparity.to(device), torch.ones_like(disparity, dtype=torch.bool).to(device))

    return depth_batch(num_labeled), depth_batch(num_unlabeled)


def our_student_step(model, frozen_encoder, optimizer, labeled, pseudo_labeled, autocast, generator):
    """One step as `training_scripts/train_student.py` takes it."""
    mixed, mix_mask = perturb_and_mix(pseudo_labeled.images, StrongPerturbation(), 0.5, generator)
    pixel_values = normalize_images(torch.cat([labeled.images, mixed]))
    with autocast:
        outputs = model(pixel_values, output_encoder_features=True)
        frozen_features = frozen_encoder(pixel_values[len(labeled) :])
    losses = student_losses(
        outputs.predicted_depth, labeled, pseudo_labeled, mix_mask, StudentLossSettings(), outputs.encoder_features, frozen_features
    )
    losses["total"].backward()
    optimizer.step()
    optimizer.zero_grad()


def normed_patch_tokens(backbone, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return backbone.layernorm(hidden_states[-1])[:, 1:]


def plain_student_step(model, frozen_backbone, optimizer, labeled, pseudo_labeled, autocast, generator):
    """The same step written directly against transformers' model, with the same loss functions."""
    mixed, mix_mask = perturb_and_mix(pseudo_labeled.images, StrongPerturbation(), 0.5, generator)
    pixel_values = normalize_images(torch.cat([labeled.images, mixed]))
    num_labeled = len(labeled)
    with autocast:
        outputs = model(pixel_values, output_hidden_states=True)
        student_features = normed_patch_tokens(model.backbone, outputs.hidden_states)[num_labeled:]
        with torch.no_grad():
            frozen_hidden_states = frozen_backbone(pixel_values[num_labeled:], output_hidden_states=True).hidden_states
            frozen_features = normed_patch_tokens(frozen_backbone, frozen_hidden_states)
    prediction = outputs.predicted_depth
    loss_labeled = affine_invariant_loss(prediction[:num_labeled], labeled.disparity, labeled.supervised_mask)
    loss_unlabeled = cutmix_unlabeled_loss(
        prediction[num_labeled:], pseudo_labeled.disparity, cutmix_partners(pseudo_labeled.disparity), mix_mask
    )
    loss_feature = feature_alignment_loss(student_features, frozen_features, 0.85)
    ((loss_labeled + loss_unlabeled + loss_feature) / 3).backward()
    optimizer.step()
    optimizer.zero_grad()


def benchmark_student(args, device, autocast, dtype) -> list[dict]:
    config = build_config(args)
    torch.manual_seed(0)
    ours = DepthAnythingHFForDepthEstimation(config)
    freeze_unused_parameters(ours)
    with tempfile.TemporaryDirectory() as directory:
        ours.export_to_transformers(directory)
        theirs = DepthAnythingForDepthEstimation.from_pretrained(directory)
        dinov2_path = f"{directory}/dinov2.pth"
        torch.save(ours.encoder.state_dict(), dinov2_path)  # the official DINOv2 layout
        frozen_encoder = FrozenFeatureEncoder(config, dinov2_path).to(device)
    frozen_backbone = copy.deepcopy(theirs.backbone).requires_grad_(False).eval().to(device)
    ours, theirs = ours.to(device).train(), theirs.to(device).train()
    our_optimizer = torch.optim.AdamW(parameter_groups(ours, 5e-6, 5e-5))
    their_optimizer = torch.optim.AdamW(
        [{"params": theirs.backbone.parameters(), "lr": 5e-6}, {"params": [*theirs.neck.parameters(), *theirs.head.parameters()], "lr": 5e-5}]
    )
    num_labeled, num_unlabeled = split_batch_size(args.batch_size, 2.0)

    print(f"\nStudent step, {args.variant}, batch {num_labeled} labeled + {num_unlabeled} pseudo-labeled, {args.mixed_precision}")
    print("| resolution | ours images/s | plain transformers loop images/s | ours / plain | floor images/s | ours / floor |")
    print("|---|---|---|---|---|---|")
    # The floor: the step's FLOPs (forward, backward, frozen encoder) at the measured GEMM rate of the step's dtype.
    peak = matmul_flops_per_second(dtype or torch.float32, device)
    rows = []
    for resolution in args.resolutions:
        labeled, pseudo_labeled = student_batch(resolution, num_labeled, num_unlabeled, device)
        generator = torch.Generator(device).manual_seed(0)
        floor_seconds = count_flops(
            lambda: our_student_step(ours, frozen_encoder, our_optimizer, labeled, pseudo_labeled, autocast, generator)
        ) / peak
        seconds = interleaved_median_seconds(
            {
                "ours": lambda: our_student_step(ours, frozen_encoder, our_optimizer, labeled, pseudo_labeled, autocast, generator),
                "plain": lambda: plain_student_step(theirs, frozen_backbone, their_optimizer, labeled, pseudo_labeled, autocast, generator),
            },
            args.steps, args.warmup_steps, device,
        )  # fmt: skip
        ours_rate, plain_rate = args.batch_size / seconds["ours"], args.batch_size / seconds["plain"]
        floor_rate = args.batch_size / floor_seconds
        rows.append(
            {
                "resolution": resolution,
                "ours_images_per_second": ours_rate,
                "plain_images_per_second": plain_rate,
                "floor_images_per_second": floor_rate,
            }
        )
        print(f"| {resolution} | {ours_rate:.2f} | {plain_rate:.2f} | {ours_rate / plain_rate:.2f} | {floor_rate:.2f} | "
              f"{floor_rate / ours_rate:.2f} |")  # fmt: skip
    return rows


def benchmark_pseudo_labeling(args, device) -> dict[str, float]:
    torch.manual_seed(0)
    teacher = DepthAnythingHFForDepthEstimation(build_config(args)).to(device).eval()
    processor = DepthAnythingHFImageProcessor()
    height, width = args.photo_size
    generator = torch.Generator().manual_seed(0)
    photos = [
        Image.fromarray(torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=generator).numpy())
        for _ in range(args.labeling_batch_size)
    ]
    pixel_values = processor.preprocess(photos, return_tensors="pt")["pixel_values"].to(device)
    dtype = autocast_dtype(args.mixed_precision)
    batch_size = args.labeling_batch_size

    def bare_forward():
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            teacher(pixel_values)

    seconds = interleaved_median_seconds(
        {
            "bare": bare_forward,
            "engine_forward": lambda: predict_pseudo_disparity(teacher, pixel_values, dtype),
            "engine_from_photos": lambda: label_images(teacher, processor, photos, dtype),
        },
        args.steps,
        args.warmup_steps,
        device,
    )
    rates = {path: batch_size / path_seconds for path, path_seconds in seconds.items()}
    bare, engine_forward, engine_from_photos = rates["bare"], rates["engine_forward"], rates["engine_from_photos"]
    input_size = "x".join(str(side) for side in pixel_values.shape[-2:])
    print(f"\nPseudo-labelling, {args.variant} teacher, {height}x{width} photos -> {input_size} input, batch {batch_size}, {args.mixed_precision}")
    print("| path | images/s | / bare forward |")
    print("|---|---|---|")
    print(f"| bare teacher forward (pixel values ready) | {bare:.2f} | 1.00 |")
    print(f"| predict_pseudo_disparity (pixel values ready) | {engine_forward:.2f} | {engine_forward / bare:.2f} |")
    print(f"| label_images (PIL photos: preprocess + forward + float16) | {engine_from_photos:.2f} | {engine_from_photos / bare:.2f} |")
    return rates


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    dtype = autocast_dtype(args.mixed_precision)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{name}, torch {torch.__version__}, median of {args.steps} interleaved steps after {args.warmup_steps} warm-up steps")
    return {"student": benchmark_student(args, device, autocast, dtype), "pseudo_labeling": benchmark_pseudo_labeling(args, device)}


if __name__ == "__main__":
    main()
