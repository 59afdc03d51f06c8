"""Is a training step bounded by the model or by reading and decoding its data?

    python benchmarks/data_loading.py                      # v2-small at 266 px, batch 4, the shared RGB-D frames
    python benchmarks/data_loading.py --config_overrides '{"num_hidden_layers": 2}' --steps 3 --warmup_steps 1

Times the teacher's training step (`labeled_batch` -> forward -> affine-invariant loss -> backward -> AdamW, as
`train_teacher.py` runs it) three ways on the same weights, in one process, each as a block of consecutive steps
(so that a reader process must keep pace with the steps it feeds), the blocks in turn over `--rounds`:

- `in memory`: the step on examples decoded before timing (the model alone: the bound);
- `read here`: the step taking its examples from the labeled stream read in the training process
  (`--prefetch_examples 0`, the default);
- `prefetch N`: the same stream read ahead by its reader process (`--prefetch_examples N`).

Prints a markdown table of images/s with each mode's ratio to `in memory` (1.00: decoding costs nothing).
Weights are random: speed does not depend on them.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from harness import add_model_arguments, build_config, synchronize

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.data import load_labeled_dataset, sample_to_tensors
from depth_anything_hf.data.transforms import PairedResizeCropFlip
from depth_anything_hf.training.batches import labeled_batch, normalize_images
from depth_anything_hf.training.objectives import depth_loss
from depth_anything_hf.training.runtime import freeze_unused_parameters, parameter_groups
from depth_anything_hf.training.streams import ResumableStream

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthetic-rgbd"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATA, help="a labeled folder-format dataset")
    parser.add_argument("--resolution", type=int, default=266)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--prefetch_examples", type=int, nargs="+", default=[8], help="reader look-ahead(s) timed")
    parser.add_argument("--steps", type=int, default=10, help="timed consecutive steps per mode and round")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="every mode is timed once per round")
    return parser.parse_args(argv)


def main(argv=None) -> dict[str, float]:
    args = parse_args(argv)
    if not args.dataset.is_dir():
        sys.exit(f"--dataset {args.dataset} is not a folder")
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(build_config(args)).to(device).train()
    freeze_unused_parameters(model)
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-6, 1e-5))
    geometry = PairedResizeCropFlip(args.resolution)
    generator = torch.Generator().manual_seed(0)
    dataset = load_labeled_dataset(str(args.dataset), streaming=True).shuffle(seed=0, buffer_size=1)

    def step(examples: list[dict]) -> None:
        batch = labeled_batch(examples, geometry, device, generator)
        loss = depth_loss(model(normalize_images(batch.images)).predicted_depth, batch.disparity, batch.supervised_mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    decoded = ResumableStream(dataset, "in memory", transform=sample_to_tensors).take(args.batch_size)

    # Each mode's look-ahead: None reads nothing (the decoded batch), 0 reads in this process.
    prefetch_of = {"in memory": None, "read here": 0}
    prefetch_of |= {f"prefetch {prefetch}": prefetch for prefetch in args.prefetch_examples}

    def time_block(name: str) -> float:
        """Seconds of `--steps` consecutive steps after `--warmup_steps`: throughput, the reader keeping pace or not."""
        # A new stream per block: a reader process works only while its own mode is timed.
        prefetch = prefetch_of[name]
        stream = None
        if prefetch is not None:
            stream = ResumableStream(dataset, name, transform=sample_to_tensors, prefetch_examples=prefetch)
        for index in range(args.warmup_steps + args.steps):
            if index == args.warmup_steps:
                synchronize(device)
                start = time.perf_counter()
            step(decoded if stream is None else stream.take(args.batch_size))
        synchronize(device)
        if stream is not None:
            stream.close()
        return time.perf_counter() - start

    names = list(prefetch_of)
    seconds = dict.fromkeys(names, 0.0)
    for round_index in range(args.rounds):  # A B C, C B A, ...: slow drifts of the machine fall on every mode
        for name in names if round_index % 2 == 0 else reversed(names):
            seconds[name] += time_block(name) / (args.rounds * args.steps)

    print(
        f"\nTeacher training step, {args.variant} {args.config_overrides or ''} at {args.resolution} px, batch "
        f"{args.batch_size}, {args.dataset.name}, {device.type}, {torch.get_num_threads()} threads\n"
    )
    print("| data | images/s | ratio to in memory |\n|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {args.batch_size / value:.2f} | {seconds['in memory'] / value:.2f} |")
    return seconds


if __name__ == "__main__":
    main()
