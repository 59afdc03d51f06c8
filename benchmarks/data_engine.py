"""The data engine over a long stream: `pseudo_label.py`'s images/s against a bare teacher forward, and its memory.

    python benchmarks/data_engine.py                       # 10,000 images, the Table 9 toy teacher at 112 px
    python benchmarks/data_engine.py --num_images 40 --shard_size 10 --batch_size 4   # a quick run

1. Builds an unlabeled folder of `--num_images` files (links to the shared RGB-D frames' JPEGs, cycled, so the
   stream is as long as asked without copying data) and a teacher with random weights (`--model_config`) whose
   saved processor resizes to `--resolution`, as `train_teacher.py` saves one.
2. Runs `training_scripts/pseudo_label.py` on it, as a user would, sampling the resident memory of its process
   every `--sample_seconds`, and reads when each parquet shard was committed (its modification time).
3. Times a bare teacher forward (pixel values ready in memory, same batch size, same input size) in this process.

Prints a table: the script's images/s between its first and last committed shard (start-up excluded) against the
bare forward's, and its resident memory after the first shard, half-way and at the end (flat: no leak over the
stream). Weights are random: speed does not depend on them.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch
from harness import interleaved_median_seconds

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.data import decode_rgb

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "synthetic-rgbd"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "table9_config.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=10_000)
    parser.add_argument("--images", type=Path, default=DEFAULT_DATA, help="a folder whose *.jpg files are cycled")
    parser.add_argument(
        "--model_config", default=str(DEFAULT_CONFIG), help="the teacher's config: a JSON file or a variant (v2-small)"
    )
    parser.add_argument("--resolution", type=int, default=112, help="the teacher's input size (its processor's)")
    parser.add_argument("--batch_size", type=int, default=16, help="pseudo_label.py --batch_size")
    parser.add_argument("--shard_size", type=int, default=1000, help="pseudo_label.py --shard_size")
    parser.add_argument("--sample_seconds", type=float, default=0.5, help="memory sampling interval")
    parser.add_argument("--bare_iterations", type=int, default=10, help="timed batches of the bare forward")
    parser.add_argument("--output_dir", type=Path, help="keep the folder, teacher and pseudo-labels here")
    return parser.parse_args(argv)


def build_inputs(args, root: Path) -> tuple[Path, Path]:
    """(unlabeled folder, teacher folder) under `root`."""
    sources = sorted(args.images.glob("*.jpg"))
    if not sources:
        sys.exit(f"--images {args.images} holds no .jpg files")
    unlabeled = root / "unlabeled"
    unlabeled.mkdir(parents=True)
    for index in range(args.num_images):
        (unlabeled / f"{index:06d}.jpg").symlink_to(sources[index % len(sources)].resolve())
    torch.manual_seed(0)
    if Path(args.model_config).is_file():
        config = DepthAnythingHFConfig.from_dict(json.loads(Path(args.model_config).read_text()))
    else:
        config = DepthAnythingHFConfig.from_variant_name(args.model_config)
    teacher = root / "teacher"
    DepthAnythingHFForDepthEstimation(config).save_pretrained(teacher)
    DepthAnythingHFImageProcessor.from_model_config(config, size=args.resolution).save_pretrained(teacher)
    return unlabeled, teacher


def run_data_engine(args, unlabeled: Path, teacher: Path, output_dir: Path) -> dict:
    """Runs pseudo_label.py; returns the times at which its shards were committed and the memory samples."""
    command = [
        sys.executable, str(REPO_ROOT / "training_scripts" / "pseudo_label.py"),
        "--teacher", str(teacher), "--unlabeled_dataset", str(unlabeled), "--output_dir", str(output_dir),
        "--batch_size", str(args.batch_size), "--shard_size", str(args.shard_size),
    ]  # fmt: skip
    shards_dir = output_dir / "data"
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watched = psutil.Process(process.pid)
    seen_shards, memory = set(), []  # (seconds, shards committed so far, resident MiB)
    while process.poll() is None:
        now = time.perf_counter() - start
        with_children = [watched, *watched.children(recursive=True)]
        try:
            resident = sum(part.memory_info().rss for part in with_children) / 2**20
        except psutil.NoSuchProcess:  # it ended between poll() and here
            break
        seen_shards.update(shards_dir.glob("*.parquet") if shards_dir.is_dir() else [])
        memory.append((now, len(seen_shards), resident))
        time.sleep(args.sample_seconds)
    stderr = process.stderr.read()
    if process.returncode != 0:
        sys.exit(f"pseudo_label.py failed (exit code {process.returncode}):\n{stderr[-3000:]}")
    # A shard's modification time is when its writer finished it (the commit renames it, keeping that time):
    # exact, where the polling above only bounds it to --sample_seconds.
    commit_times = sorted(shard.stat().st_mtime for shard in shards_dir.glob("*.parquet"))
    return {"seconds": time.perf_counter() - start, "shard_times": commit_times, "memory": memory}


def bare_forward_images_per_second(args, unlabeled: Path, teacher: Path) -> float:
    model = DepthAnythingHFForDepthEstimation.from_pretrained(teacher).eval()
    processor = DepthAnythingHFImageProcessor.from_pretrained(teacher)
    photos = [decode_rgb(path.read_bytes()) for path in sorted(unlabeled.iterdir())[: args.batch_size]]
    pixel_values = processor(photos, return_tensors="pt")["pixel_values"]

    def forward():
        with torch.no_grad():
            model(pixel_values)

    seconds = interleaved_median_seconds({"bare": forward}, args.bare_iterations, 2, torch.device("cpu"))["bare"]
    return args.batch_size / seconds


def main(argv=None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        root = args.output_dir or Path(temporary)
        unlabeled, teacher = build_inputs(args, root)
        engine = run_data_engine(args, unlabeled, teacher, root / "pseudo_labels")
        bare = bare_forward_images_per_second(args, unlabeled, teacher)

    shard_times = engine["shard_times"]
    if len(shard_times) < 2:
        sys.exit("fewer than two shards were written: raise --num_images or lower --shard_size")
    # Throughput after the first shard is committed: start-up (imports, model loading, the source listing) excluded.
    span = shard_times[-1] - shard_times[0]
    if span <= 0:
        sys.exit("the shards' modification times do not resolve the run: raise --num_images")
    engine_rate = (args.num_images - args.shard_size) / span
    memory = [(shards, resident) for _, shards, resident in engine["memory"] if shards >= 1]

    def resident_after(shards: int) -> float:
        return next((resident for count, resident in memory if count >= shards), float("nan"))

    results = {
        "bare_images_per_second": bare,
        "engine_images_per_second": engine_rate,
        "ratio": engine_rate / bare,
        "seconds": engine["seconds"],
        "resident_mib_after_first_shard": resident_after(1),
        "resident_mib_half_way": resident_after(max(1, len(shard_times) // 2)),
        "resident_mib_at_end": memory[-1][1] if memory else float("nan"),
        "resident_mib_peak": max(resident for _, _, resident in engine["memory"]),
    }
    print(
        f"\nData engine: {args.num_images} images ({args.images.name}, cycled) through pseudo_label.py, teacher "
        f"{Path(args.model_config).name} at {args.resolution} px, batch {args.batch_size}, shards of {args.shard_size}, "
        f"cpu, {torch.get_num_threads()} threads, {os.cpu_count()} cores; {engine['seconds']:.0f} s in all\n"
    )
    print("| path | images/s | / bare forward |\n|---|---|---|")
    print(f"| bare teacher forward (pixel values ready) | {bare:.2f} | 1.00 |")
    print(f"| pseudo_label.py, first to last shard | {engine_rate:.2f} | {results['ratio']:.2f} |")
    print("\n| resident memory of pseudo_label.py | MiB |\n|---|---|")
    for label, key in (
        ("after the first shard", "resident_mib_after_first_shard"),
        ("half-way", "resident_mib_half_way"),
        ("at the end", "resident_mib_at_end"),
        ("peak", "resident_mib_peak"),
    ):
        print(f"| {label} | {results[key]:.0f} |")
    return results


if __name__ == "__main__":
    main()
