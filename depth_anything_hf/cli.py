"""The `depth-anything` command line: every subcommand is defined here.

    depth-anything predict CHECKPOINT photos/ --outputs colormap png16 npy --output_dir depth/
    depth-anything predict METRIC_CHECKPOINT room.jpg --outputs ply --hfov 70
    depth-anything predict CHECKPOINT clip.mp4 --outputs colormap npy
    depth-anything export CHECKPOINT onnx_dir --quantize
    depth-anything convert depth_anything_v2_vits.pth out_dir --version v2
    depth-anything convert depth-anything/Depth-Anything-V2-Small-hf out_dir
    depth-anything convert our_checkpoint_dir out_dir --to transformers
    depth-anything eval CHECKPOINT --dataset middlebury=skimage --dataset synthetic=PATH
    depth-anything push-to-hub CHECKPOINT_DIR user/repo
"""

import argparse
import os
import sys
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)


def _height_by_width(text: str) -> tuple[int, int]:
    height, separator, width = text.lower().partition("x")
    if not separator or not height.isdigit() or not width.isdigit():
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 518x686, got {text!r}")
    return int(height), int(width)


def add_predict_parser(subparsers) -> argparse.ArgumentParser:
    from .mixed_precision import MIXED_PRECISION_CHOICES
    from .prediction import OUTPUT_KINDS

    parser = subparsers.add_parser(
        "predict",
        help="depth maps, 16-bit PNGs, .npy arrays and point clouds of images, folders, globs, lists and videos",
        description="Predict depth with a checkpoint. Relative models give affine-invariant DISPARITY (larger = "
        "nearer, unknown scale and shift); metric models depth in metres; every output is named accordingly.",
    )
    parser.add_argument("model", help="checkpoint folder or Hub id (ours or transformers' depth_anything)")
    parser.add_argument(
        "inputs", nargs="+",
        help="image or video files, folders (searched recursively), glob patterns, or .txt files listing paths",
    )
    parser.add_argument("--output_dir", default="depth_predictions", help="where the outputs are written")
    parser.add_argument(
        "--outputs", nargs="+", choices=OUTPUT_KINDS, default=["colormap"],
        help="colormap: Spectral_r PNG (red = near); grayscale (white = near); side_by_side: input | colour map; "
        "png16: 16-bit PNG + JSON with the min/max that dequantise it; npy: the raw prediction (.npz of all "
        "frames for videos); ply: coloured point cloud in metres (images only)",
    )
    parser.add_argument("--batch_size", type=int, default=4, help="images per forward pass")
    parser.add_argument("--device", help="default: the accelerator when there is one")
    parser.add_argument(
        "--mixed_precision", default="no", choices=MIXED_PRECISION_CHOICES, help="autocast of the forward pass"
    )
    camera = parser.add_argument_group("point clouds (--outputs ply)")
    for name in ("fx", "fy", "cx", "cy"):
        camera.add_argument(f"--{name}", type=float, help="intrinsics in pixels of the original image")
    camera.add_argument("--hfov", type=float, help="horizontal field of view in degrees, instead of the intrinsics")
    camera.add_argument("--disparity_scale", type=float,
                        help="relative models: 1 / depth = scale * disparity + shift (with --disparity_shift)")
    camera.add_argument("--disparity_shift", type=float)
    camera.add_argument("--align_points", help="relative models: CSV image,x,y,depth (metres) to fit scale and shift to")
    parser.set_defaults(func=run_predict)
    return parser


def run_predict(args: argparse.Namespace) -> dict:
    from .prediction import expand_inputs, predict_inputs

    point_cloud_kwargs = {
        "fx": args.fx, "fy": args.fy, "cx": args.cx, "cy": args.cy, "horizontal_fov": args.hfov,
        "disparity_scale": args.disparity_scale, "disparity_shift": args.disparity_shift,
        "align_points": args.align_points,
    }
    try:
        files = expand_inputs(args.inputs)
        summary = predict_inputs(
            args.model, files, args.output_dir, outputs=args.outputs, batch_size=args.batch_size,
            device=args.device, mixed_precision=args.mixed_precision, point_cloud_kwargs=point_cloud_kwargs,
        )
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    print(
        f"Wrote {', '.join(args.outputs)} for {summary['images']} images and {summary['videos']} videos "
        f"({summary['frames']} frames) to {args.output_dir}; skipped {len(summary['skipped'])}"
    )
    for skipped in summary["skipped"]:
        print(f"  skipped {skipped['path']}: {skipped['reason']}")
    return summary


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    from .onnx import DEFAULT_CHECK_SIZES

    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (dynamic batch, height, width) in the transformers.js / optimum layout",
        description="Write OUTPUT_DIR/{config.json, model.safetensors, preprocessor_config.json} (transformers' "
        "depth_anything layout) and OUTPUT_DIR/onnx/model.onnx, checked against PyTorch at sizes other than the "
        "traced one; --quantize adds onnx/model_quantized.onnx (int8 weights).",
    )
    parser.add_argument("model", help="checkpoint folder or Hub id")
    parser.add_argument("output_dir", help="directory to write (created if missing)")
    parser.add_argument("--quantize", action="store_true", help="also write an int8 model (dynamic quantisation)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset version")
    parser.add_argument(
        "--check_sizes", nargs="+", type=_height_by_width, default=list(DEFAULT_CHECK_SIZES), metavar="HxW",
        help="sizes (multiples of 14) at which onnxruntime must match PyTorch to 1e-4 (relative)",
    )
    parser.set_defaults(func=run_export)
    return parser


def run_export(args: argparse.Namespace) -> dict:
    from .onnx import export_checkpoint

    if os.path.isfile(args.output_dir):
        raise SystemExit(f"error: output_dir {args.output_dir} is an existing file, expected a directory")
    try:
        report = export_checkpoint(
            args.model, args.output_dir, quantize=args.quantize, check_sizes=args.check_sizes,
            opset_version=args.opset,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    print("| model | size | batch | max relative error vs PyTorch | Pearson r |\n|---|---|---|---|---|")
    for kind in ("float32", "int8"):
        for row in report.get(kind, []):
            print(f"| {kind} | {row['height']}x{row['width']} | {row['batch_size']} | {row['relative_error']:.2e} | "
                  f"{row['pearson_r']:.5f} |")
    print(f"Wrote {Path(args.output_dir) / 'onnx'}")
    return report


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


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `depth-anything eval` and `training_scripts/evaluate.py`."""
    from .data.specs import parse_dataset_spec
    from .evaluation.presets import PRESETS
    from .mixed_precision import MIXED_PRECISION_CHOICES
    parser.add_argument("model", help="checkpoint folder or Hub id")
    parser.add_argument(
        "--dataset", dest="datasets", type=parse_dataset_spec, action="append", required=True,
        metavar="PRESET=PATH",
        help=f"dataset to evaluate, repeatable; presets: {', '.join(sorted(PRESETS))} "
        "(middlebury=skimage uses scikit-image's frame)",
    )
    parser.add_argument(
        "--protocols", nargs="+", choices=("disparity", "midas", "metric", "median"),
        help="default: disparity for relative models, metric for metric models",
    )
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--flip_average", action="store_true", help="average with the horizontally flipped image")
    parser.add_argument("--split", default="train", help='split spec, e.g. "train[-10%%:]" (default: all)')
    parser.add_argument("--max_images", type=int, help="evaluate at most this many images per dataset")
    parser.add_argument("--device", help="default: the accelerator when there is one")
    parser.add_argument(
        "--mixed_precision", default="no", choices=MIXED_PRECISION_CHOICES, help="autocast of the forward pass"
    )
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers decoding samples")
    parser.add_argument(
        "--input_size", type=int, default=518, help="short side of the model input, a multiple of 14 (official: 518)"
    )
    parser.add_argument("--output_dir", default=".", help="where results.json is written")
    return parser


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register `eval` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on depth datasets and write results.json",
        description="Evaluate a checkpoint with named protocols and per-dataset presets.",
    )
    add_eval_arguments(parser)
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> dict:
    """Run `eval` from parsed arguments: write results.json and print the markdown table (of the datasets that
    were evaluated, when one failed)."""
    from .evaluation.reporting import results_table
    from .evaluation.runner import EvaluationError, evaluate_model, evaluation_dataset

    try:
        results = evaluate_model(
            args.model,
            [evaluation_dataset(spec) for spec in args.datasets],
            protocols=args.protocols,
            batch_size=args.batch_size,
            flip_average=args.flip_average,
            split=args.split,
            max_images=args.max_images,
            device=args.device,
            mixed_precision=args.mixed_precision,
            num_workers=args.num_workers,
            input_size=args.input_size,
            output_dir=args.output_dir,
        )
    except EvaluationError as error:
        if error.results["evaluations"]:
            print(results_table(error.results["evaluations"]))
        raise
    print(results_table(results["evaluations"]))
    print(f"\nWrote {Path(args.output_dir) / 'results.json'}")
    return results


def add_push_parser(subparsers) -> argparse.ArgumentParser:
    """Register `push-to-hub DIR REPO_ID` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "push-to-hub",
        help="upload a checkpoint (safetensors, configs, remote code, generated model card) to the Hub",
        description="Publish a save_pretrained folder with a generated model card.",
    )
    parser.add_argument("checkpoint_dir", help="folder written by save_pretrained")
    parser.add_argument("repo_id", help="Hub repository, e.g. user/depth-anything-v2-small-finetuned")
    parser.add_argument("--results", help="results.json of `depth-anything eval` (default: DIR/results.json)")
    parser.add_argument("--training_args", help="training arguments JSON (default: DIR/training_args.json)")
    parser.add_argument("--base_model", help="what the weights were trained from (decides the licence)")
    parser.add_argument("--license", help="explicit licence (CC-BY-NC-4.0 lineages cannot be relicensed)")
    parser.add_argument("--datasets", nargs="+", help="training datasets for the card metadata")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--token", help="Hub token (default: the logged-in one)")
    parser.add_argument("--commit_message", default="Upload Depth Anything checkpoint")
    parser.add_argument(
        "--local_dir", help="write the files that would be uploaded to this folder instead of uploading"
    )
    parser.set_defaults(func=run_push)
    return parser


def run_push(args: argparse.Namespace):
    """Run `push-to-hub` from parsed arguments; prints what was written or uploaded."""
    from .hub import push_to_hub, stage_for_hub

    card_kwargs = dict(
        results=args.results, training_args=args.training_args, base_model=args.base_model,
        license=args.license, datasets=args.datasets,
    )
    if args.local_dir:
        names = stage_for_hub(args.checkpoint_dir, args.local_dir, args.repo_id, **card_kwargs)
        print(f"Wrote {len(names)} files to {args.local_dir}: {', '.join(names)}")
        return names
    commit = push_to_hub(
        args.checkpoint_dir, args.repo_id, private=args.private, token=args.token,
        commit_message=args.commit_message, **card_kwargs,
    )
    print(f"Uploaded {args.checkpoint_dir} to {commit.commit_url}")
    return commit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth-anything", description="Depth Anything for the Hugging Face stack")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_predict_parser(subparsers)
    add_export_parser(subparsers)
    add_eval_parser(subparsers)
    add_convert_parser(subparsers)
    add_push_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
