#!/usr/bin/env python
"""Predict the depth of one image with a trained model and write it as a colour-mapped PNG.

    python training_scripts/predict.py --model runs/student --image photo.jpg --output photo_depth.png

The model is loaded by transformers' `pipeline("depth-estimation")` (this package's subclass, which reads 16-bit
and float images at their full depth); the map is its relative depth (disparity, min-max scaled), red = near,
blue = far, at the size of the input image.
"""

import argparse
from pathlib import Path

from PIL import ImageOps
from transformers import PretrainedConfig, pipeline
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from depth_anything_hf import DepthAnythingHFConfig  # importing the package registers it with the Auto classes

# Spectral_r end and middle colours (ColorBrewer): far, middle, near.
FAR_COLOUR, MIDDLE_COLOUR, NEAR_COLOUR = "#5e4fa2", "#ffffbf", "#9e0142"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (save_pretrained output) or Hub id")
    parser.add_argument("--image", required=True, help="image file or URL")
    parser.add_argument("--output", required=True, help="where to write the PNG")
    parser.add_argument("--device", default=None, help="torch device, e.g. cuda:0 (default: the CPU)")
    return parser.parse_args(argv)


def check_model_type(model: str) -> None:
    """Refuse a checkpoint whose config names a model type transformers does not know, before `pipeline` would
    read its `auto_map` and ask to run the code saved with it (which cannot help: it needs a known type too)."""
    model_type = PretrainedConfig.get_config_dict(model)[0].get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"{model}: config.json has model_type {model_type!r}, which neither transformers nor depth_anything_hf "
            f"defines (this package's is {DepthAnythingHFConfig.model_type!r}); correct config.json, or install "
            "the package that defines it"
        )


def main(argv=None) -> None:
    args = parse_args(argv)
    check_model_type(args.model)
    # The package registers the model, so the code saved next to the weights is not needed.
    estimator = pipeline("depth-estimation", model=args.model, device=args.device, trust_remote_code=False)
    depth = estimator(args.image)["depth"]
    coloured = ImageOps.colorize(depth, black=FAR_COLOUR, white=NEAR_COLOUR, mid=MIDDLE_COLOUR)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    coloured.save(output, format="PNG")
    print(f"Wrote the depth map of {args.image} ({depth.width}x{depth.height}) to {output}")


if __name__ == "__main__":
    main()
