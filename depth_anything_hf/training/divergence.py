"""Stop a diverged run with an error instead of training on, and saving, non-finite numbers.

The losses of `depth_anything_hf.losses` are non-finite exactly when a counted prediction is (a diverged
model), so a non-finite loss is the signal. Checking it on the host after every step would synchronise the
device every step; instead the first step with a non-finite loss is kept on the device and checked, over all
processes at once (so that every process stops together), before each log, each checkpoint and the final
model. A checkpoint or model is only written after that check and a check of the weights themselves, so the
last checkpoint on disk always holds finite weights.
"""

import math

import torch
from accelerate import Accelerator


class TrainingDivergedError(RuntimeError):
    """The loss or the weights of a training run became non-finite (NaN or infinite)."""


def non_finite_parameters(model: torch.nn.Module) -> list[str]:
    """The names of `model`'s parameters that hold a NaN or an infinite value (one synchronisation)."""
    named = list(model.named_parameters())
    finite = torch.stack([parameter.detach().isfinite().all() for _, parameter in named]).tolist()
    return [name for (name, _), is_finite in zip(named, finite) if not is_finite]


class NonFiniteLossMonitor:
    """Remembers, on the device, the first optimiser step whose losses were not all finite."""

    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator
        self.first_step = torch.tensor(math.inf, device=accelerator.device)

    def add(self, losses: dict[str, torch.Tensor], step: int) -> None:
        """Record the `losses` of a micro-batch of optimiser step `step` (1-based), without synchronising."""
        values = torch.stack([value.detach().float() for value in losses.values()])
        step_if_non_finite = torch.where(values.isfinite().all(), math.inf, float(step))
        self.first_step = torch.minimum(self.first_step, step_if_non_finite)

    def first_non_finite_step(self) -> int | None:
        """The first step, over all processes, with a non-finite loss; None if there was none."""
        first = self.accelerator.gather(self.first_step.reshape(1)).min().item()
        return None if math.isinf(first) else int(first)
