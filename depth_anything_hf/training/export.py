"""The final model of a training run: `save_pretrained` weights (safetensors), the image processor and the
run's arguments, which `pipeline("depth-estimation", model=OUTPUT_DIR)` loads; optionally pushed to the Hub
with its model card (`depth_anything_hf.hub`)."""

import argparse
import json
from pathlib import Path

from accelerate import Accelerator

from ..hub import push_to_hub
from ..image_processing_depth_anything_hf import DepthAnythingHFImageProcessor
from .encoder_init import NO_ENCODER_INIT
from .tracking import dataset_names, tracker_config

TRAINING_ARGS_FILE = "training_args.json"


def save_final_model(accelerator: Accelerator, model, args: argparse.Namespace) -> None:
    """Write the model, an image processor at the training resolution and `training_args.json` (which the
    model card reads: `base_model` decides the licence) to `--output_dir`; push with `--push_to_hub`."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    output_dir = Path(args.output_dir)
    trained_model = accelerator.unwrap_model(model)
    trained_model.save_pretrained(output_dir, safe_serialization=True)
    DepthAnythingHFImageProcessor.from_model_config(trained_model.config, size=args.resolution).save_pretrained(
        output_dir
    )
    training_args = tracker_config(args)
    training_args["datasets"] = dataset_names(args)
    if args.encoder_init != NO_ENCODER_INIT:
        training_args["base_model"] = args.encoder_init
    (output_dir / TRAINING_ARGS_FILE).write_text(json.dumps(training_args, indent=2), encoding="utf-8")
    if args.push_to_hub:
        commit = push_to_hub(output_dir, args.hub_model_id or output_dir.name)
        print(f"Pushed {output_dir} to {commit.commit_url}")
