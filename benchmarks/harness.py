"""What the benchmark scripts share: the model pair on the same weights, interleaved timing, profiles, FLOP floors.

Timing interleaves the contenders (A B B A A B ...) in one process and takes medians, so that load from other
jobs on a shared machine falls on both sides alike.
"""

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode
from transformers import DepthAnythingForDepthEstimation

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def add_model_arguments(parser) -> None:
    parser.add_argument("--variant", default="v2-small", help="official variant, e.g. v2-small or v1-large")
    parser.add_argument(
        "--config_overrides",
        type=json.loads,
        default={},
        help="JSON of config fields to change, e.g. '{\"num_hidden_layers\": 2}' (the CI smoke runs a tiny model)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def build_config(args) -> DepthAnythingHFConfig:
    """The variant's config with `--config_overrides` applied (and validated by the config's constructor)."""
    settings = DepthAnythingHFConfig.from_variant_name(args.variant).to_dict()
    unknown = set(args.config_overrides) - set(settings)
    if unknown:
        raise ValueError(f"--config_overrides: {sorted(unknown)} are not DepthAnythingHFConfig fields")
    return DepthAnythingHFConfig.from_dict({**settings, **args.config_overrides})


def save_model_pair(config: DepthAnythingHFConfig, directory: str | Path) -> tuple[Path, Path]:
    """Random weights saved twice: as our checkpoint (with its image processor) and in transformers' layout.

    Returns (ours, transformers') directories; load each with `from_pretrained` or `pipeline` as a user would.
    """
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(config)
    ours, theirs = Path(directory, "ours"), Path(directory, "transformers")
    model.save_pretrained(ours)
    DepthAnythingHFImageProcessor(
        depth_estimation_type=config.depth_estimation_type, align_corners=config.upsample_align_corners
    ).save_pretrained(ours)
    model.export_to_transformers(theirs)
    return ours, theirs


def load_model_pair(
    directories: tuple[Path, Path], dtype: torch.dtype, device
) -> tuple[torch.nn.Module, torch.nn.Module]:
    ours_directory, theirs_directory = directories
    ours = DepthAnythingHFForDepthEstimation.from_pretrained(ours_directory, dtype=dtype)
    theirs = DepthAnythingForDepthEstimation.from_pretrained(theirs_directory, dtype=dtype)
    return ours.to(device).eval(), theirs.to(device).eval()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_median_seconds(
    runs: dict[str, Callable[[], object]], iterations: int, warmup: int, device: torch.device
) -> dict[str, float]:
    """Median wall time of each run, the runs alternating in order (A B, B A, A B, ...) every iteration."""
    timings = {name: [] for name in runs}
    names = list(runs)
    for step in range(warmup + iterations):
        for name in names if step % 2 == 0 else reversed(names):
            synchronize(device)
            start = time.perf_counter()
            runs[name]()
            synchronize(device)
            if step >= warmup:
                timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in timings.items()}


def profile_table(run: Callable[[], object], device: torch.device, row_limit: int) -> str:
    """torch.profiler's per-operator table of one run, sorted by self time on the device that does the work."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        run()
        synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=sort_by, row_limit=row_limit)


def count_flops(run: Callable[[], object]) -> int:
    """FLOPs of one run. Attention is counted through the math SDPA backend: the fused CPU kernel has no FLOP
    formula in torch's counter, which would leave a third of a ViT's work out."""
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        run()
    return counter.get_total_flops()


def matmul_flops_per_second(dtype: torch.dtype, device: torch.device, size: int = 1024, repeats: int = 3) -> float:
    """Measured GEMM throughput (median of `repeats` size x size products): the peak the floor is taken against."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    seconds = interleaved_median_seconds({"matmul": lambda: a @ b}, repeats, 1, device)["matmul"]
    return 2 * size**3 / seconds
