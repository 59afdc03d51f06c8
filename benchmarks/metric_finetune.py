"""Metric fine-tuning: the official V2 `metric_depth` training loop against `training_scripts/train_metric.py`.

    python benchmarks/metric_finetune.py    # toy model, 126 px, 150 steps x 3 rounds: ~20 min on 2 cores
    python benchmarks/metric_finetune.py --init_from runs/teacher --resolution 518 --steps 2000   # your own model

Both loops start from the same weights: the encoder of a relative model (without `--init_from`, a toy relative
model is first trained here with `train_teacher.py` from random initialisation) and one new metric decoder (drawn
once by `train_metric.py`'s initialisation and copied into the official loop's model), and train for the same
number of steps on the same images (`--dataset_split`, the first 90% of the ids) at the same batch size,
crop size and learning rates. Both are then scored with the metric protocol of `depth_anything_hf.evaluation`
on the held-out last 10% of the ids.

- official: a re-implementation of Depth Anything V2's `metric_depth/train.py` (which needs its own repository):
  transformers' `DepthAnythingForDepthEstimation` with eager attention, the official model's computation
  (its DINOv2 `MemEffAttention` needs xFormers, which the official requirements do not install; without it the
  attention is a plain matmul and softmax), a map-style dataset reading the files (lower-bound resize to the
  crop size, bicubic image, nearest depth, random crop), a `DataLoader` (shuffle, drop_last, no workers: the
  machine has 2 cores), a horizontal flip of the whole batch with p = 0.5, its `SiLogLoss` (lambda 0.5), AdamW
  (5e-6 / 10x), its manual polynomial decay (power 0.9), fp32, no gradient clipping.
- official, SDPA: the same loop with transformers' default attention (PyTorch SDPA in the DINOv2 backbone), for
  a user who runs the official loop on transformers' model as it loads.
- ours: `train_metric.main` (streams, per-sample crop and flip from a checkpointed generator, the SiLog loss of
  `forward(labels=...)`, Accelerate, gradient clipping at 1.0), validating once, at the end.

With `--mixed_precision bf16` two more loops run: ours with that flag, and the official loop (eager
attention) with its forward under `torch.autocast` of that dtype and the loss in fp32, which the official code
does not do. The fp32 rows stay: official and ours at the same precision compare the engines, the rows with
autocast show what the precision adds to each.

Step time: the median time between consecutive optimiser steps (data, forward, backward, update) after
`--warmup_steps`, over `--rounds` rounds; each round runs every loop once and starts with the next loop of the
previous round's order, so that a slow phase of a shared machine falls on all of them. Prints one markdown table,
the ratio of each official loop to ours (> 1: ours is faster) and that ratio in each round. Accuracy is scored
once, on the models of the last round (every round trains the same: every draw is seeded).
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from PIL import Image
from transformers import DepthAnythingForDepthEstimation

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.evaluation.metrics import MetricsAverager
from depth_anything_hf.evaluation.presets import get_preset
from depth_anything_hf.evaluation.runner import load_evaluation_samples, score_samples
from depth_anything_hf.mixed_precision import autocast_dtype

SCRIPTS = Path(__file__).resolve().parents[1] / "training_scripts"
sys.path.insert(0, str(SCRIPTS))
import train_metric  # noqa: E402
import train_teacher  # noqa: E402

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
TRAIN_SPLIT, HELD_OUT_SPLIT = "train[:-10%]", "train[-10%:]"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(Path(__file__).resolve().parents[2] / "shared/data/synthetic-rgbd"))
    parser.add_argument("--init_from", help="a relative checkpoint (default: train a toy one here first)")
    parser.add_argument("--relative_steps", type=int, default=300, help="steps of the toy relative model")
    parser.add_argument("--resolution", type=int, default=126)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup_steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each loop, in rotated order")
    parser.add_argument("--max_depth", type=float, default=20.0)
    parser.add_argument("--min_depth", type=float, default=1e-3)
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=5e-5,
        help="encoder, the decoder gets 10x (the official 5e-6 is for released models and thousands of steps; a "
        "toy run of 150 steps from a weak encoder barely leaves the initial constant 10 m with it)",
    )
    parser.add_argument(
        "--mixed_precision",
        choices=["no", "bf16"],
        default="no",
        help="bf16: also run ours with --mixed_precision bf16 and the official loop under bf16 autocast (fp16 would "
        "need a gradient scaler, which the official loop has not)",
    )
    parser.add_argument(
        "--prefetch_examples", type=int, default=0, help="ours only: train_metric.py's reader process look-ahead"
    )
    parser.add_argument("--max_validation_images", type=int, help="default: all 120 held-out images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work_dir", help="where the runs are written (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < args.warmup_steps + 2:
        parser.error(f"need --rounds >= 1 and --steps >= --warmup_steps + 2 (two timed steps), got {args.rounds}, "
                     f"{args.steps} and {args.warmup_steps}")  # fmt: skip
    return args


def toy_config(resolution: int) -> DepthAnythingHFConfig:
    """A 6-block, 96-wide V2-style model: big enough to learn in minutes on a CPU, small enough to train there."""
    return DepthAnythingHFConfig(
        hidden_size=96, num_hidden_layers=6, num_attention_heads=3, out_indices=[1, 3, 4, 5],
        neck_hidden_sizes=[24, 48, 96, 96], fusion_hidden_size=32, head_hidden_size=16,
        image_size=resolution, version="v2",
    )  # fmt: skip


def train_relative_model(args, work_dir: Path) -> Path:
    toy_config(args.resolution).to_json_file(work_dir / "toy_config.json")
    output_dir = work_dir / "relative"
    train_teacher.main(train_teacher.parse_args([
        "--dataset", args.dataset, "--dataset_split", TRAIN_SPLIT, "--model_config", str(work_dir / "toy_config.json"),
        "--encoder_init", "none", "--resolution", str(args.resolution), "--train_batch_size", str(args.batch_size),
        "--max_train_steps", str(args.relative_steps), "--encoder_learning_rate", "1e-4",
        "--checkpointing_steps", str(10 * args.relative_steps), "--report_to", "none", "--output_dir", str(output_dir),
        "--seed", str(args.seed),
    ]))  # fmt: skip
    return output_dir


# ----------------------------------------------------------------------------------------------------------------
# The official loop (Depth Anything V2, metric_depth/train.py, util/loss.py, dataset/transform.py), re-implemented
# ----------------------------------------------------------------------------------------------------------------


class SiLogLoss(torch.nn.Module):
    """metric_depth/util/loss.py."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, pred, target, valid_mask):
        valid_mask = valid_mask.detach()
        diff_log = torch.log(target[valid_mask]) - torch.log(pred[valid_mask])
        loss = torch.sqrt(torch.pow(diff_log, 2).mean() - self.lambd * torch.pow(diff_log.mean(), 2))
        return loss


class OfficialStyleDataset(torch.utils.data.Dataset):
    """The official training dataset on this project's folder format: Resize (lower bound, multiple of 14, bicubic
    image, nearest depth), NormalizeImage, PrepareForNet, Crop(size)."""

    def __init__(self, root: str, file_names: list[dict], size: int):
        self.root, self.file_names, self.size = Path(root), file_names, size

    def __len__(self):
        return len(self.file_names)

    def __getitem__(self, index):
        entry = self.file_names[index]
        image = torch.from_numpy(np.asarray(Image.open(self.root / entry["file_name"]).convert("RGB"), np.float32) / 255)
        depth = torch.from_numpy(np.asarray(Image.open(self.root / entry["depth_file_name"]), np.float32) / 1000.0)
        height, width = depth.shape
        scale = max(self.size / height, self.size / width)
        resized = [max(self.size, round(side * scale / 14) * 14) for side in (height, width)]
        image = F.interpolate(image.permute(2, 0, 1)[None], size=resized, mode="bicubic", align_corners=False)[0]
        depth = F.interpolate(depth[None, None], size=resized, mode="nearest")[0, 0]
        image = (image - IMAGENET_MEAN) / IMAGENET_STD
        top = random.randint(0, resized[0] - self.size)
        left = random.randint(0, resized[1] - self.size)
        crop = (slice(top, top + self.size), slice(left, left + self.size))
        depth = depth[crop]
        return {"image": image[:, crop[0], crop[1]], "depth": depth, "valid_mask": depth > 0}


def official_loop(model, loader, args, device, forward_dtype: torch.dtype | None = None) -> list[float]:
    """metric_depth/train.py's loop for `args.steps` steps; returns the time after each step. `forward_dtype`: the
    forward under autocast of that dtype and the loss on its prediction in fp32 (not in the official code)."""
    criterion = SiLogLoss()
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for name, p in model.named_parameters() if "backbone" in name], "lr": args.learning_rate},
            {"params": [p for name, p in model.named_parameters() if "backbone" not in name], "lr": args.learning_rate * 10.0},
        ],
        lr=args.learning_rate, betas=(0.9, 0.999), weight_decay=0.01,
    )  # fmt: skip
    total_iters, iters, step_times = args.steps, 0, []
    model.train()
    while iters < total_iters:
        for sample in loader:
            optimizer.zero_grad()
            img, depth, valid_mask = sample["image"].to(device), sample["depth"].to(device), sample["valid_mask"].to(device)
            if random.random() < 0.5:
                img, depth, valid_mask = img.flip(-1), depth.flip(-1), valid_mask.flip(-1)
            with torch.autocast(device.type, dtype=forward_dtype, enabled=forward_dtype is not None):
                pred = model(img).predicted_depth
            pred = pred.float()
            loss = criterion(pred, depth, (valid_mask == 1) & (depth >= args.min_depth) & (depth <= args.max_depth))
            loss.backward()
            optimizer.step()
            iters += 1
            lr = args.learning_rate * (1 - iters / total_iters) ** 0.9
            optimizer.param_groups[0]["lr"] = lr
            optimizer.param_groups[1]["lr"] = lr * 10.0
            step_times.append(time.perf_counter())
            if iters == total_iters:
                break
    return step_times


# ----------------------------------------------------------------------------------------------------------------


def ours(
    args, init_from: Path, output_dir: Path, mixed_precision: str
) -> tuple[DepthAnythingHFForDepthEstimation, list[float]]:
    """train_metric.main with `--mixed_precision mixed_precision`, with the time of each optimiser step recorded."""
    step_times = []
    end_step = train_metric.TrainingProgress.end_step

    def timed_end_step(progress, *arguments, **keywords):
        step_times.append(time.perf_counter())
        return end_step(progress, *arguments, **keywords)

    train_metric.TrainingProgress.end_step = timed_end_step
    # Accelerate keeps one state per process, fixed by the first Accelerator: ours runs at two precisions here,
    # and leaves none behind (a later Accelerator without --mixed_precision, in-process, would inherit bf16).
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        model = train_metric.main(train_metric.parse_args([
            "--init_from", str(init_from), "--dataset", args.dataset, "--dataset_split", TRAIN_SPLIT,
            "--resolution", str(args.resolution), "--train_batch_size", str(args.batch_size),
            "--max_train_steps", str(args.steps), "--max_depth", str(args.max_depth), "--min_depth", str(args.min_depth),
            "--encoder_learning_rate", str(args.learning_rate), "--checkpointing_steps", str(10 * args.steps),
            "--report_to", "none", "--output_dir", str(output_dir), "--seed", str(args.seed),
            "--mixed_precision", mixed_precision, "--prefetch_examples", str(args.prefetch_examples),
        ]))  # fmt: skip
    finally:
        train_metric.TrainingProgress.end_step = end_step
        AcceleratorState._reset_state(reset_partial_state=True)
    return model, step_times


def held_out_metrics(model, args, device) -> tuple[dict, float, float]:
    """Metric protocol on the held-out ids (the same function train_metric.py validates with), and the
    smallest and largest prediction."""
    preset = get_preset("rgbd_folder")
    processor = DepthAnythingHFImageProcessor(size=args.resolution, depth_estimation_type="metric")
    samples = load_evaluation_samples(preset, args.dataset, HELD_OUT_SPLIT)
    if args.max_validation_images:
        samples = samples.take(args.max_validation_images)
    predictions = []
    forward = model.forward

    def recording_forward(*arguments, **keywords):
        outputs = forward(*arguments, **keywords)
        predictions.append(outputs.predicted_depth.detach())
        return outputs

    model.eval().forward = recording_forward
    averager: MetricsAverager = score_samples(
        model, processor, samples, ["metric"], prediction_type="depth", min_depth=args.min_depth,
        depth_cap=min(preset.max_depth, args.max_depth), disable_progress=True,
    )["metric"]  # fmt: skip
    model.forward = forward
    values = torch.cat([p.flatten() for p in predictions])
    return averager.compute()["metrics"], values.min().item(), values.max().item()


def official(
    args, init_from: Path, device, attention: str, forward_dtype: torch.dtype | None = None
) -> tuple[DepthAnythingForDepthEstimation, list[float]]:
    """The official loop with `attention` ("eager" or "sdpa") and `forward_dtype` (see `official_loop`), started
    from ours at step 0: the same encoder and the same newly drawn metric decoder, which `train_metric.main` draws
    right after seeding every library with --seed."""
    set_seed(args.seed)
    step0 = train_metric.metric_model(train_metric.parse_args([
        "--init_from", str(init_from), "--dataset", args.dataset, "--max_depth", str(args.max_depth),
        "--output_dir", tempfile.gettempdir(),
    ]))  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        step0.export_to_transformers(directory)
        # The top model takes no "sdpa" (its DPT head has no attention); loaded as it is, its DINOv2 backbone uses SDPA.
        loading = {"attn_implementation": "eager"} if attention == "eager" else {}
        official_model = DepthAnythingForDepthEstimation.from_pretrained(directory, **loading).to(device)
        if official_model.backbone.config._attn_implementation != attention:
            raise RuntimeError(f"the backbone loaded with {official_model.backbone.config._attn_implementation} attention")
    metadata = sorted(
        (json.loads(line) for line in (Path(args.dataset) / "metadata.jsonl").read_text().splitlines() if line.strip()),
        key=lambda entry: Path(entry["file_name"]).stem,
    )
    train_entries = metadata[: len(metadata) - round(0.1 * len(metadata))]
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(
        OfficialStyleDataset(args.dataset, train_entries, args.resolution),
        batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=0,
    )  # fmt: skip
    return official_model, official_loop(official_model, loader, args, device, forward_dtype)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, print the table; returns {loop: {"row", "step_seconds", "metrics", "range"}}."""
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="metric_finetune_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    init_from = Path(args.init_from) if args.init_from else train_relative_model(args, work_dir)
    relative_seconds = time.perf_counter() - started

    loops = {  # name: (table row, a function training it from the step-0 weights -> (model, step times))
        "official": ("official V2 loop (eager attention)", lambda _: official(args, init_from, device, "eager")),
        "official_sdpa": ("official V2 loop, SDPA attention", lambda _: official(args, init_from, device, "sdpa")),
        "ours": ("ours (train_metric.py)", lambda index: ours(args, init_from, work_dir / f"round{index}", "no")),
    }
    precision = args.mixed_precision
    if precision != "no":
        loops[f"official_{precision}"] = (
            f"official V2 loop (eager attention), forward under {precision} autocast",
            lambda _: official(args, init_from, device, "eager", autocast_dtype(precision)),
        )
        loops[f"ours_{precision}"] = (
            f"ours (train_metric.py --mixed_precision {precision})",
            lambda index: ours(args, init_from, work_dir / f"round{index}_{precision}", precision),
        )
    names = list(loops)
    ours_names = [name for name in names if name.startswith("ours")]
    step_seconds = {name: [] for name in names}
    models = {}
    for round_index in range(args.rounds):
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            models[name], times = loops[name][1](round_index)
            step_seconds[name].append(np.diff(times[args.warmup_steps :]))

    results = {}
    for name in names:
        metrics, lowest, highest = held_out_metrics(models[name].to(device), args, device)
        results[name] = {
            "row": loops[name][0],
            "step_seconds": statistics.median(np.concatenate(step_seconds[name])),
            "metrics": metrics,
            "range": (lowest, highest),
        }

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\n{name}, torch {torch.__version__}; relative model: {init_from} ({relative_seconds:.0f} s)")
    print(f"{args.steps} steps x {args.rounds} rounds, batch {args.batch_size}, crop {args.resolution}, max_depth "
          f"{args.max_depth}, held-out ids {HELD_OUT_SPLIT} of {args.dataset}")  # fmt: skip
    print("| loop | s/step (median) | AbsRel | delta1 | RMSE (m) | SiLog | prediction range (m) |")
    print("|---|---|---|---|---|---|---|")
    for result in results.values():
        metrics, (lowest, highest) = result["metrics"], result["range"]
        print(f"| {result['row']} | {result['step_seconds']:.3f} | {metrics['abs_rel']:.4f} | {metrics['delta1']:.4f} | "
              f"{metrics['rmse']:.3f} | {metrics['silog']:.2f} | {lowest:.3f} .. {highest:.3f} |")  # fmt: skip
    for mine in ours_names:
        for name in (name for name in names if name not in ours_names):
            per_round = [
                np.median(theirs) / np.median(ours_seconds)
                for theirs, ours_seconds in zip(step_seconds[name], step_seconds[mine])
            ]
            ratio = results[name]["step_seconds"] / results[mine]["step_seconds"]
            print(f"step time {results[name]['row']} / {results[mine]['row']}: {ratio:.2f} (> 1: ours is faster); "
                  "per round: " + ", ".join(f"{value:.2f}" for value in per_round))  # fmt: skip
    return results


if __name__ == "__main__":
    main()
