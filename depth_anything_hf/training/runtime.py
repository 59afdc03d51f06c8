"""Accelerate set-up, logging, and model and optimiser construction for the training scripts."""

import argparse
import logging
import math
import os

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from transformers import get_scheduler

from ..modeling_depth_anything_hf import DepthAnythingHFForDepthEstimation
from .encoder_init import initialize_encoder, model_from_checkpoint, resolve_model_config


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


def initial_model(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """The model training starts from: the whole model of `--init_from`, or the model of `--model_config` with
    its encoder initialised from `--encoder_init` (DINOv2, the encoder of a Depth Anything checkpoint, or
    "none")."""
    if args.init_from is not None:
        return model_from_checkpoint(args.init_from, args.model_config)
    model = DepthAnythingHFForDepthEstimation(resolve_model_config(args.model_config))
    initialize_encoder(model, args.encoder_init)
    return model


def create_model(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """`initial_model`, with the parameters no forward pass uses frozen and `--gradient_checkpointing` applied."""
    return prepare_for_training(initial_model(args), args)


def prepare_for_training(
    model: DepthAnythingHFForDepthEstimation, args: argparse.Namespace
) -> DepthAnythingHFForDepthEstimation:
    freeze_unused_parameters(model)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model.train()


def freeze_unused_parameters(model: DepthAnythingHFForDepthEstimation) -> list[str]:
    """Freeze the parameters that no forward pass uses, and return their names.

    Every parameter of the model gets a gradient (DINOv2's mask token and the input-less residual unit of the
    deepest fusion block are buffers); this guards encoders or heads that leave one unused, which
    DistributedDataParallel refuses. Such parameters are found by one small forward and backward pass.
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
    `decoder_learning_rate` (docs/method.md section 4: 5e-6 and 10x)."""
    encoder_parameters = [p for p in model.encoder.parameters() if p.requires_grad]
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    decoder_parameters = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
    return [
        {"params": encoder_parameters, "lr": encoder_learning_rate, "name": "encoder"},
        {"params": decoder_parameters, "lr": decoder_learning_rate, "name": "decoder"},
    ]


# Devices with torch's fused AdamW kernel (torch >= 2.4).
FUSED_ADAMW_DEVICES = ("cpu", "cuda", "mps", "xpu")


def prepare_optimization(
    accelerator: Accelerator,
    model: DepthAnythingHFForDepthEstimation,
    args: argparse.Namespace,
    max_train_steps: int,
    scheduler_specific_kwargs: dict | None = None,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over `parameter_groups` and the `--lr_scheduler` (linear decay by default; `scheduler_specific_kwargs`
    as `transformers.get_scheduler` takes them) over `max_train_steps`, prepared with the model by `accelerator`
    (DDP, mixed precision, gradient accumulation).

    The prepared scheduler steps once per process and optimiser step, as in the diffusers scripts, hence the
    step counts scaled by the number of processes.
    """
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.encoder_learning_rate, args.decoder_learning_rate),
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
        # One fused kernel per parameter instead of about ten operator calls each (torch's CPU and GPU kernels).
        fused=accelerator.device.type in FUSED_ADAMW_DEVICES,
    )
    scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
        scheduler_specific_kwargs=scheduler_specific_kwargs,
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


def end_training(accelerator: Accelerator) -> None:
    """Finish the trackers and destroy the process group, once every process has arrived here and the prepared
    model (DistributedDataParallel) is gone. Call it after dropping your own reference to the prepared model
    (keep `accelerator.unwrap_model(model)`).

    A DDP wrapper holds the process group: left alive, it frees the group later (at interpreter exit at the
    latest), and gloo's destructor, joining its worker threads there, was seen to hang a CPU process that had
    finished training. Released here, the group is freed inside `end_training` while every worker is idle.
    """
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    accelerator.end_training()


def resolve_max_train_steps(args: argparse.Namespace, examples_per_epoch, examples_per_step: int) -> int:
    """`--max_train_steps`, or `--num_train_epochs` passes of `examples_per_epoch()` examples, `examples_per_step`
    (all processes, all accumulation steps) per optimiser step. `examples_per_epoch` is only called (it may
    count a stream) when `--max_train_steps` is not given."""
    if args.max_train_steps is not None:
        return args.max_train_steps
    return args.num_train_epochs * math.ceil(examples_per_epoch() / examples_per_step)

