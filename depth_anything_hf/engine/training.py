"""Accelerate set-up, model and optimiser construction, and checkpoint save / resume for the training scripts.

Checkpoints follow the diffusers training scripts: `OUTPUT_DIR/checkpoint-STEP` folders written by
`accelerator.save_state` (model, optimizer, scheduler, every process's random states and the objects registered
with `register_for_checkpointing`), rotated to `--checkpoints_total_limit`, resumed by
`accelerator.load_state` with `--resume_from_checkpoint latest|PATH`.
"""

import argparse
import logging
import math
import os
import re
import shutil
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, gather_object, set_seed
from transformers import get_scheduler

from ..modeling_depth_anything_hf import DepthAnythingHFForDepthEstimation
from .encoder_init import initialize_encoder, resolve_model_config

logger = get_logger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"


def start_accelerator(args: argparse.Namespace) -> Accelerator:
    """An `Accelerator` for `--mixed_precision`, `--gradient_accumulation_steps` and `--report_to` (tracker
    files under `OUTPUT_DIR/--logging_dir`), with logging configured and every library seeded with `--seed`."""
    project_configuration = ProjectConfiguration(
        project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, args.logging_dir)
    )
    report_to = None if args.report_to == "none" else args.report_to
    accelerator = Accelerator(
        # Without an accelerator, CPU mode: under torchrun / `accelerate launch` several processes then use gloo.
        cpu=not torch.accelerator.is_available(),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=report_to,
        project_config=project_configuration,
    )
    configure_logging(accelerator)
    set_seed(args.seed)
    return accelerator


def configure_logging(accelerator: Accelerator) -> None:
    """INFO logs from the main process (accelerate's logger), warnings only from the libraries, errors only
    from the other processes."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%m/%d/%Y %H:%M:%S", level=logging.INFO
    )
    if accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_warning()
        transformers.utils.logging.set_verbosity_warning()
    else:
        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()


def create_model(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """The model of `--model_config` with its encoder initialised from `--encoder_init` (DINOv2 or "none")."""
    model = DepthAnythingHFForDepthEstimation(resolve_model_config(args.model_config))
    initialize_encoder(model, args.encoder_init)
    freeze_unused_parameters(model)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model.train()


def freeze_unused_parameters(model: DepthAnythingHFForDepthEstimation) -> list[str]:
    """Freeze the parameters that no forward pass uses, and return their names.

    DINOv2's mask token serves its masked-image pre-training only, and the deepest DPT fusion block has no skip
    input for its first residual unit (as in the official DPT). Left trainable they never get a gradient, which
    DistributedDataParallel refuses. They are found by one small forward and backward pass.
    """
    patch_size = model.config.patch_size
    pixel_values = torch.zeros(1, model.config.num_channels, 2 * patch_size, 2 * patch_size)
    was_training = model.training
    model.eval()
    model(pixel_values, output_encoder_features=True).predicted_depth.sum().backward()
    unused = [name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None]
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    for name in unused:
        model.get_parameter(name).requires_grad_(False)
    return unused


def parameter_groups(
    model: DepthAnythingHFForDepthEstimation, encoder_learning_rate: float, decoder_learning_rate: float
) -> list[dict]:
    """AdamW groups: the pre-trained encoder at `encoder_learning_rate`, the new DPT decoder (neck and head) at
    `decoder_learning_rate` (METHOD.md section 4: 5e-6 and 10x)."""
    encoder_parameters = [p for p in model.encoder.parameters() if p.requires_grad]
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    decoder_parameters = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
    return [
        {"params": encoder_parameters, "lr": encoder_learning_rate, "name": "encoder"},
        {"params": decoder_parameters, "lr": decoder_learning_rate, "name": "decoder"},
    ]


def prepare_optimization(
    accelerator: Accelerator, model: DepthAnythingHFForDepthEstimation, args: argparse.Namespace, max_train_steps: int
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over `parameter_groups` and the `--lr_scheduler` (linear decay by default) over `max_train_steps`,
    prepared with the model by `accelerator` (DDP, mixed precision, gradient accumulation).

    The prepared scheduler steps once per process and optimiser step, as in the diffusers scripts, hence the
    step counts scaled by the number of processes.
    """
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.encoder_learning_rate, args.decoder_learning_rate),
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )
    return accelerator.prepare(model, optimizer, scheduler)


def optimizer_step(
    accelerator: Accelerator, model: torch.nn.Module, optimizer, scheduler, max_grad_norm: float
) -> None:
    """Clip the gradients (`--max_grad_norm`, when they are synchronised), step the optimiser and the
    scheduler, clear the gradients; under `accelerator.accumulate` the optimiser only steps every
    `--gradient_accumulation_steps` micro-batches."""
    if accelerator.sync_gradients and max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def resolve_max_train_steps(args: argparse.Namespace, examples_per_epoch, examples_per_step: int) -> int:
    """`--max_train_steps`, or `--num_train_epochs` passes of `examples_per_epoch()` examples, `examples_per_step`
    (all processes, all accumulation steps) per optimiser step. `examples_per_epoch` is only called (it may
    count a stream) when `--max_train_steps` is not given."""
    if args.max_train_steps is not None:
        return args.max_train_steps
    return args.num_train_epochs * math.ceil(examples_per_epoch() / examples_per_step)


# ------------------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------------------


class ProcessStates:
    """Checkpointable state that differs between processes (data-stream positions, augmentation generators).

    accelerate writes registered objects from the main process only, so `state_dict` gathers every process's
    state (every process calls `save_state`) and `load_state_dict` hands each process its own part.
    """

    def __init__(self, accelerator: Accelerator, **components):
        self.accelerator = accelerator
        self.components = components

    def state_dict(self) -> dict:
        local_state = {name: component.state_dict() for name, component in self.components.items()}
        return {"per_process": gather_object([local_state])}

    def load_state_dict(self, state: dict) -> None:
        per_process = state["per_process"]
        if len(per_process) != self.accelerator.num_processes:
            raise ValueError(
                f"the checkpoint holds the data positions of {len(per_process)} processes; resume it with "
                f"{len(per_process)} processes, not {self.accelerator.num_processes}"
            )
        local_state = per_process[self.accelerator.process_index]
        for name, component in self.components.items():
            component.load_state_dict(local_state[name])


def register_process_states(accelerator: Accelerator, seed: int, **streams) -> torch.Generator:
    """Checkpoint the `streams` positions with every checkpoint, and a generator for the data augmentation
    (seeded per process), which is returned."""
    augmentation = GeneratorState(seed + accelerator.process_index, accelerator.device)
    accelerator.register_for_checkpointing(ProcessStates(accelerator, augmentation=augmentation, **streams))
    return augmentation.generator


class GeneratorState:
    """A `torch.Generator` with the `state_dict` / `load_state_dict` that checkpointing expects."""

    def __init__(self, seed: int, device: torch.device):
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def checkpoint_step(path: str | os.PathLike) -> int:
    match = re.fullmatch(rf"{CHECKPOINT_PREFIX}(\d+)", Path(path).name)
    if match is None:
        raise ValueError(f"{str(path)!r} is not a {CHECKPOINT_PREFIX}STEP folder")
    return int(match.group(1))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The `checkpoint-STEP` folders of `output_dir`, oldest step first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [path for path in output_dir.iterdir() if path.is_dir() and re.fullmatch(rf"{CHECKPOINT_PREFIX}\d+", path.name)]
    return sorted(found, key=checkpoint_step)


def save_checkpoint(accelerator: Accelerator, output_dir: str, step: int, total_limit: int | None) -> Path:
    """Save the full training state to `output_dir/checkpoint-STEP`; every process must call it.

    The state is written to a hidden `.checkpoint-STEP.partial` folder and renamed once every process has
    written its part, so a run killed at any moment leaves only complete checkpoints behind. Afterwards the
    oldest checkpoints are removed so that at most `total_limit` remain.
    """
    output_dir = Path(output_dir)
    save_path = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    partial_path = output_dir / f".{CHECKPOINT_PREFIX}{step}.partial"
    if accelerator.is_main_process and partial_path.exists():
        shutil.rmtree(partial_path)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial_path))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if save_path.exists():
            shutil.rmtree(save_path)  # a later checkpoint of a run resumed from an earlier one
        os.replace(partial_path, save_path)
        if total_limit is not None:
            for stale in list_checkpoints(output_dir)[:-total_limit]:
                logger.info(f"Removing checkpoint {stale} (--checkpoints_total_limit {total_limit})")
                shutil.rmtree(stale)
        logger.info(f"Saved state to {save_path}")
    accelerator.wait_for_everyone()
    return save_path


def resume_from_checkpoint(accelerator: Accelerator, output_dir: str, resume_from: str | None) -> int:
    """Load `--resume_from_checkpoint` ('latest' or a checkpoint folder) and return its step; 0 without one.

    'latest' with no checkpoint yet starts from scratch (so that a job can always be relaunched with it); an
    explicit path that does not exist is an error.
    """
    if resume_from is None:
        return 0
    if resume_from == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            logger.info(f"No checkpoint in {output_dir} to resume from; starting a new run")
            return 0
        path = checkpoints[-1]
    else:
        path = Path(resume_from)
        if not path.is_dir():
            raise ValueError(f"--resume_from_checkpoint {resume_from!r}: no such checkpoint folder")
    step = checkpoint_step(path)
    accelerator.load_state(str(path))
    logger.info(f"Resumed from {path} at step {step}")
    return step
