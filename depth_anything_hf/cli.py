"""The `depth-anything` command line.

    depth-anything convert depth_anything_v2_vits.pth out_dir --version v2
    depth-anything convert depth-anything/Depth-Anything-V2-Small-hf out_dir
    depth-anything convert our_checkpoint_dir out_dir --to transformers
    depth-anything eval CHECKPOINT --dataset middlebury=skimage --dataset synthetic=PATH
    depth-anything push-to-hub CHECKPOINT_DIR user/repo
"""

import argparse
import os
import sys

from transformers.utils import logging

from .evaluation.runner import add_eval_parser
from .hub import add_push_parser

logger = logging.get_logger(__name__)


def add_convert_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official .pth, a transformers depth_anything checkpoint or ours, to ours or to transformers",
        description="Convert a checkpoint. SOURCE: an official Depth Anything .pth (needs --version), or a "
        "directory / Hub id of a transformers `depth_anything` or a `depth_anything_hf` checkpoint.",
    )
    parser.add_argument("source", help="official .pth file, checkpoint directory or Hub id")
    parser.add_argument("output_dir", help="directory to write (created if missing)")
    parser.add_argument("--to", choices=["depth_anything_hf", "transformers"], default="depth_anything_hf",
                        help="layout to write: ours (safetensors + remote code) or plain transformers'")
    parser.add_argument("--version", choices=["v1", "v2"],
                        help="official .pth only: which release the weights come from (decides the tapped layers)")
    parser.add_argument("--depth_estimation_type", choices=["relative", "metric"], default="relative")
    parser.add_argument("--max_depth", type=float, help="metric models: 20 (indoor) or 80 (outdoor)")
    parser.set_defaults(func=run_convert)


def run_convert(args) -> None:
    from . import DepthAnythingHFForDepthEstimation
    from .image_processing_depth_anything_hf import DepthAnythingHFImageProcessor

    if str(args.source).endswith((".pth", ".pt")):
        if args.version is None:
            raise SystemExit(
                "error: --version v1|v2 is required for an official .pth: V1 and V2 weights have the same shapes "
                "but feed different encoder blocks to the decoder"
            )
        model = DepthAnythingHFForDepthEstimation.from_official_checkpoint(
            args.source, args.version, depth_estimation_type=args.depth_estimation_type, max_depth=args.max_depth
        )
    else:
        model = DepthAnythingHFForDepthEstimation.from_pretrained(args.source)

    if os.path.isfile(args.output_dir):
        raise SystemExit(f"error: output_dir {args.output_dir} is an existing file, expected a directory")
    if args.to == "transformers":
        model.export_to_transformers(args.output_dir)
    else:
        model.save_pretrained(args.output_dir)
        DepthAnythingHFImageProcessor.from_model_config(model.config).save_pretrained(args.output_dir)
    logger.warning(f"Wrote a {args.to} checkpoint to {args.output_dir}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth-anything", description="Depth Anything for the Hugging Face stack")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(subparsers)
    add_eval_parser(subparsers)
    add_push_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
