"""The final model of a training run: `save_pretrained` weights (safetensors), the image processor and the
run's arguments, which `pipeline("depth-estimation", model=OUTPUT_DIR)` loads; optionally pushed to the Hub
with its model card (`depth_anything_hf.hub`)."""

import argparse
import json
from pathlib import Path

from accelerate import Accelerator

from ..hub import push_to_hub
from ..image_processing_depth_anything_hf import DepthAnythingHFImageProcessor
from .arguments import training_arguments
from .checkpointing import TRAINING_ARGS_FILE


def write_model_folder(model, args: argparse.Namespace, directory: str | Path) -> None:
    """Write `model` (unwrapped), an image processor at the training resolution and `training_args.json` (which
    the model card reads: `base_model`, `--init_from` or `--encoder_init`, decides the licence) to `directory`."""
    directory = Path(directory)
    model.save_pretrained(directory, safe_serialization=True)
    DepthAnythingHFImageProcessor.from_model_config(model.config, size=args.resolution).save_pretrained(directory)
    training_args = training_arguments(args)
    (directory / TRAINING_ARGS_FILE).write_text(json.dumps(training_args, indent=2), encoding="utf-8")


def save_final_model(accelerator: Accelerator, model, args: argparse.Namespace) -> None:
    """`write_model_folder` to `--output_dir` (main process); push it with `--push_to_hub`."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    output_dir = Path(args.output_dir)
    write_model_folder(accelerator.unwrap_model(model), args, output_dir)
    if args.push_to_hub:
        commit = push_to_hub(output_dir, args.hub_model_id or output_dir.name)
        print(f"Pushed {output_dir} to {commit.commit_url}")
