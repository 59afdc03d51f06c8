"""Inference latency: our model against transformers' DepthAnythingForDepthEstimation on the same weights.

    python benchmarks/inference.py                       # ViT-S, 518x518, batch 1 and 8, fp32 and bf16
    python benchmarks/inference.py --batch_sizes 1 --dtypes fp32 --iterations 5 --profile
    python benchmarks/inference.py --compile             # opt-in: torch.compile on both sides

Both models come from `from_pretrained` on the same random weights (speed does not depend on them), in fp32
or loaded with `dtype=torch.bfloat16`: the default path a user gets (`--dtypes fp32 --mixed_precision bf16`
runs fp32 weights under `torch.autocast` instead). Runs are interleaved in one process and the medians
compared. Prints one row per (dtype, batch size): milliseconds per image of each, the ratio transformers / ours (> 1: we are faster), the
largest difference between the two outputs relative to the reference's largest value, and the FLOP floor
(the model's FLOPs at the GEMM throughput measured in the same run). `--profile` also prints torch.profiler's
per-operator tables of one forward of each.
"""

import argparse
import functools
import tempfile

import torch
from harness import (
    DTYPES,
    add_model_arguments,
    build_config,
    count_flops,
    interleaved_median_seconds,
    load_model_pair,
    matmul_flops_per_second,
    profile_table,
    save_model_pair,
)

from depth_anything_hf.mixed_precision import MIXED_PRECISION_CHOICES, autocast_dtype


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--resolution", type=int, default=518)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument(
        "--mixed_precision", choices=MIXED_PRECISION_CHOICES, default="no", help="autocast on top of the loaded dtype"
    )
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models (opt-in mode)")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables of one forward each")
    parser.add_argument("--profile_rows", type=int, default=15)
    parser.add_argument("--peak_matmul_size", type=int, default=1024, help="square GEMM timed for the FLOP floor")
    return parser.parse_args(argv)


def measure(models: dict, pixel_values: torch.Tensor, context, peak: float, args) -> dict:
    """One table row: interleaved latencies of ours and transformers', their output difference, the FLOP floor."""
    device, batch_size = pixel_values.device, pixel_values.shape[0]

    @torch.inference_mode()
    def forward(model):
        with context:
            return model(pixel_values).predicted_depth

    ours_depth, theirs_depth = forward(models["ours"]).float(), forward(models["transformers"]).float()
    difference = ((ours_depth - theirs_depth).abs().max() / theirs_depth.abs().max()).item()
    runs = {label: functools.partial(forward, models[label]) for label in ("ours", "transformers")}
    seconds = interleaved_median_seconds(runs, args.iterations, args.warmup, device)
    floor = count_flops(functools.partial(forward, models["eager_ours"])) / peak
    if args.profile:
        for label, run in runs.items():
            print(f"\nProfile, {label}, {pixel_values.dtype}, batch {batch_size}")
            print(profile_table(run, device, args.profile_rows))
    return {
        "ours_ms": 1000 * seconds["ours"] / batch_size,
        "transformers_ms": 1000 * seconds["transformers"] / batch_size,
        "ratio": seconds["transformers"] / seconds["ours"],
        "relative_difference": difference,
        "floor_ms": 1000 * floor / batch_size,
        "ours_over_floor": seconds["ours"] / floor,
    }


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = torch.device(args.device)
    config = build_config(args)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    mode = (" (torch.compile)" if args.compile else "") + (
        f", autocast {args.mixed_precision}" if args.mixed_precision != "no" else ""
    )
    print(f"{args.variant} at {args.resolution}x{args.resolution} on {name}, torch {torch.__version__}{mode}")
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        directories = save_model_pair(config, directory)
        for dtype_name in args.dtypes:
            weights_dtype = DTYPES[dtype_name]
            compute_dtype = autocast_dtype(args.mixed_precision)
            eager_ours, eager_theirs = load_model_pair(directories, weights_dtype, device)
            ours, theirs = (
                (torch.compile(eager_ours), torch.compile(eager_theirs)) if args.compile else (eager_ours, eager_theirs)
            )
            context = torch.autocast(device.type, dtype=compute_dtype, enabled=compute_dtype is not None)
            peak = matmul_flops_per_second(compute_dtype or weights_dtype, device, args.peak_matmul_size)
            for batch_size in args.batch_sizes:
                pixel_values = torch.randn(batch_size, 3, args.resolution, args.resolution, device=device)
                models = {"ours": ours, "transformers": theirs, "eager_ours": eager_ours}
                row = measure(models, pixel_values.to(weights_dtype), context, peak, args)
                rows.append({"dtype": dtype_name, "batch_size": batch_size, **row})

    print(
        "| dtype | batch | ours ms/img | transformers ms/img | transformers / ours | max rel. diff | floor ms/img | ours / floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['dtype']} | {row['batch_size']} | {row['ours_ms']:.2f} | {row['transformers_ms']:.2f} | "
            f"{row['ratio']:.2f} | {row['relative_difference']:.1e} | {row['floor_ms']:.2f} | {row['ours_over_floor']:.2f} |"
        )
    return rows


if __name__ == "__main__":
    main()
