"""Inference latency: our model against transformers' DepthAnythingForDepthEstimation on the same weights.

    python benchmarks/inference.py                       # ViT-S, 518x518, batch 1 and 8, fp32 and bf16 autocast
    python benchmarks/inference.py --variant v2-base --batch_sizes 1 --iterations 5

Prints one row per (--mixed_precision, batch size) with the milliseconds per image of each model and the ratio
transformers / ours (> 1 means we are faster). Weights are random: speed does not depend on them.
"""

import argparse
import statistics
import tempfile
import time

import torch
from transformers import DepthAnythingForDepthEstimation

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation
from depth_anything_hf.mixed_precision import MIXED_PRECISION_CHOICES, autocast_dtype


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="v2-small", help="official variant, e.g. v2-small or v1-large")
    parser.add_argument("--resolution", type=int, default=518)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--mixed_precision", nargs="+", default=["no", "bf16"], choices=MIXED_PRECISION_CHOICES)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def milliseconds_per_image(model, pixel_values, mixed_precision, iterations, warmup) -> float:
    device = pixel_values.device
    dtype = autocast_dtype(mixed_precision)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    timings = []
    for step in range(warmup + iterations):
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            model(pixel_values)
        synchronize(device)
        if step >= warmup:
            timings.append(time.perf_counter() - start)
    return 1000 * statistics.median(timings) / pixel_values.shape[0]


def main():
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    ours = DepthAnythingHFForDepthEstimation(DepthAnythingHFConfig.from_variant_name(args.variant))
    with tempfile.TemporaryDirectory() as directory:
        ours.export_to_transformers(directory)
        theirs = DepthAnythingForDepthEstimation.from_pretrained(directory)
    ours, theirs = ours.to(device).eval(), theirs.to(device).eval()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{args.variant} at {args.resolution}x{args.resolution} on {name}, torch {torch.__version__}")
    print("| mixed precision | batch | ours ms/img | transformers ms/img | transformers / ours |")
    print("|---|---|---|---|---|")
    for mixed_precision in args.mixed_precision:
        for batch_size in args.batch_sizes:
            pixel_values = torch.randn(batch_size, 3, args.resolution, args.resolution, device=device)
            ours_ms = milliseconds_per_image(ours, pixel_values, mixed_precision, args.iterations, args.warmup)
            theirs_ms = milliseconds_per_image(theirs, pixel_values, mixed_precision, args.iterations, args.warmup)
            print(f"| {mixed_precision} | {batch_size} | {ours_ms:.2f} | {theirs_ms:.2f} | {theirs_ms / ours_ms:.2f} |")


if __name__ == "__main__":
    main()
