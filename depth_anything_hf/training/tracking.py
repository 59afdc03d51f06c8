"""What the training scripts report to the accelerate trackers (`--report_to`): losses, learning rates,
throughput and example depth maps; and `TrainingProgress`, the bookkeeping after each optimiser step."""

import argparse
import time
from collections.abc import Callable

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from ..data.skipping import skipped_sample_ids, skipped_samples_summary
from .checkpointing import list_checkpoints
from .divergence import NonFiniteLossMonitor, TrainingDivergedError, non_finite_parameters

logger = get_logger(__name__)


class Throughput:
    """Images per second over all processes since the last `rate()` call."""

    def __init__(self, num_processes: int):
        self.num_processes = num_processes
        self.images = 0
        self.start = time.perf_counter()

    def add(self, images_this_process: int) -> None:
        self.images += images_this_process

    def rate(self) -> float:
        now = time.perf_counter()
        images_per_second = self.images * self.num_processes / max(now - self.start, 1e-9)
        self.images, self.start = 0, now
        return images_per_second


class RunningMeans:
    """Means of named losses over the micro-batches since the last `reduce`, averaged over processes.

    The sums stay on the device between logging steps, so logging costs one synchronisation per log."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0) + value.detach().float()
        self.count += 1

    def reduce(self, accelerator: Accelerator) -> dict[str, float]:
        names = sorted(self.sums)
        means = accelerator.reduce(torch.stack([self.sums[name] for name in names]) / self.count, reduction="mean")
        self.sums, self.count = {}, 0
        return dict(zip(names, means.tolist()))


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {f"lr_{group.get('name', index)}": group["lr"] for index, group in enumerate(optimizer.param_groups)}


def _grayscale(maps: torch.Tensor) -> torch.Tensor:
    """[N, H, W] maps min-max scaled per map to [0, 1] and repeated to [N, 3, H, W] for image logging."""
    flat = maps.detach().float().flatten(1)
    low, high = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    return ((maps.detach().float() - low) / (high - low).clamp_min(1e-12)).unsqueeze(1).expand(-1, 3, -1, -1)


def log_depth_examples(
    accelerator: Accelerator,
    step: int,
    name: str,
    images: torch.Tensor,
    predicted_disparity: torch.Tensor,
    target_disparity: torch.Tensor,
    max_examples: int = 4,
) -> None:
    """Log rows of (input image | predicted disparity | target disparity) to the TensorBoard tracker."""
    if not accelerator.is_main_process:
        return
    count = min(max_examples, images.shape[0])
    rows = torch.cat(
        [
            images[:count].detach().float().clamp(0, 1),
            _grayscale(predicted_disparity[:count]),
            _grayscale(target_disparity[:count]),
        ],
        dim=-1,
    ).cpu()
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({name: rows}, step=step, dataformats="NCHW")


class TrainingProgress:
    """Counts optimiser steps and, after each one, updates the progress bar, logs the mean losses, learning
    rates and images/s every `--logging_steps` and example depth maps every `--image_logging_steps`. (The
    scripts save checkpoints themselves, in their loops, after `end_step`.)

    Before each log, each `--checkpointing_steps` step and the end of training it raises
    `TrainingDivergedError`, naming the step, once a loss has been non-finite; at checkpoint steps and the end
    also when a weight of `model` is: no checkpoint or model after a divergence is written (`divergence.py`)."""

    def __init__(
        self,
        accelerator: Accelerator,
        args: argparse.Namespace,
        max_train_steps: int,
        global_step: int,
        name: str,
        model: torch.nn.Module,
    ):
        self.accelerator = accelerator
        self.args = args
        # Unwrapped: the prepared (DistributedDataParallel) model must not outlive training (`runtime.end_training`).
        self.model = accelerator.unwrap_model(model)
        self.max_train_steps = max_train_steps
        self.global_step = global_step
        self.bar = tqdm(
            total=max_train_steps, initial=global_step, desc=name, disable=not accelerator.is_local_main_process
        )
        self.running_losses = RunningMeans()
        self.throughput = Throughput(accelerator.num_processes)
        # Maps left out of the loss for lack of spread, on this process since the last log (kept on the device).
        self.flat_maps = torch.zeros((), dtype=torch.long, device=accelerator.device)
        self.flat_maps_total = 0
        self.last_logged_step = global_step
        self.non_finite_losses = NonFiniteLossMonitor(accelerator)

    @property
    def finished(self) -> bool:
        return self.global_step >= self.max_train_steps

    def add_micro_batch(
        self, losses: dict[str, torch.Tensor], num_images: int, flat_maps: torch.Tensor | None = None
    ) -> None:
        """`flat_maps`: the maps of this micro-batch that the affine-invariant loss left out
        (`objectives.*_flat_maps`); None for losses that drop none (SiLog)."""
        self.running_losses.add({f"loss/{name}": value for name, value in losses.items()})
        self.non_finite_losses.add(losses, self.global_step + 1)
        self.throughput.add(num_images)
        if flat_maps is not None:
            self.flat_maps += flat_maps.detach()

    def check_finite(self, check_weights: bool) -> None:
        """Raise `TrainingDivergedError` if a loss so far (or, with `check_weights`, a weight) is not finite."""
        first_step = self.non_finite_losses.first_non_finite_step()
        bad_parameters = non_finite_parameters(self.model) if check_weights else []
        if first_step is None and not bad_parameters:
            return
        checkpoints = list_checkpoints(self.args.output_dir)
        problems = []
        if first_step is not None:
            problems.append(
                f"the loss became NaN or infinite at step {first_step} (a non-finite prediction, or pseudo-label)"
            )
        if bad_parameters:
            names = ", ".join(bad_parameters[:5]) + (" ..." if len(bad_parameters) > 5 else "")
            problems.append(
                f"{len(bad_parameters)} weight tensors are NaN or infinite at step {self.global_step} ({names})"
            )
        problem = " and ".join(problems)
        last_good = (
            f"the last checkpoint, {checkpoints[-1]}, was saved before and holds finite weights: resume from it"
            if checkpoints
            else "no checkpoint had been saved: start again"
        )
        raise TrainingDivergedError(
            f"Training diverged: {problem}. Nothing was saved after it; {last_good} with a lower learning rate "
            "(--encoder_learning_rate, --decoder_learning_rate), gradient clipping (--max_grad_norm) or "
            "--mixed_precision bf16 instead of fp16."
        )

    def end_step(
        self,
        optimizer: torch.optim.Optimizer,
        depth_examples: Callable[[], tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]],
    ) -> None:
        """After an optimiser step; `depth_examples()` gives (name, images, predicted, target disparity)."""
        args = self.args
        self.global_step += 1
        self.bar.update(1)
        is_checkpoint_step = self.global_step % args.checkpointing_steps == 0
        if self.global_step % args.logging_steps == 0 or is_checkpoint_step or self.finished:
            self.check_finite(check_weights=is_checkpoint_step or self.finished)
        if self.global_step % args.logging_steps == 0 or self.finished:
            logs = {**self.running_losses.reduce(self.accelerator), **learning_rates(optimizer)}
            logs["images_per_second"] = self.throughput.rate()
            flat_maps = int(self.accelerator.reduce(self.flat_maps, reduction="sum"))
            self.flat_maps.zero_()
            self.flat_maps_total += flat_maps
            logs["flat_maps"], logs["flat_maps_total"] = flat_maps, self.flat_maps_total
            if flat_maps:
                logger.warning(
                    f"{flat_maps} map(s) without any spread (a constant prediction or target) were left out of the "
                    f"loss in steps {self.last_logged_step + 1}-{self.global_step}; {self.flat_maps_total} so far"
                )
            self.last_logged_step = self.global_step
            total = logs.get("loss/total", logs.get("loss/labeled", logs.get("loss/silog")))
            self.bar.set_postfix(loss=f"{total:.4f}", images_per_second=f"{logs['images_per_second']:.1f}")
            self.accelerator.log(logs, step=self.global_step)
        if args.image_logging_steps and self.global_step % args.image_logging_steps == 0:
            log_depth_examples(self.accelerator, self.global_step, *depth_examples())

    def close(self) -> None:
        """End the progress bar and report the samples skipped by all processes in this run."""
        self.bar.close()
        report_skipped_samples(self.accelerator)


def report_skipped_samples(accelerator: Accelerator) -> None:
    """Log the distinct samples skipped in this run by every process, in total and per dataset (a warning when
    there are any). Every process must call it."""
    merged: dict[str, set[str]] = {}
    for ids_per_dataset in gather_object([skipped_sample_ids()]):
        for name, ids in ids_per_dataset.items():
            merged.setdefault(name, set()).update(ids)
    summary = skipped_samples_summary(merged)
    if any(merged.values()):
        logger.warning(summary)
    else:
        logger.info(summary)
