"""CPU inference: onnxruntime (float32 and int8) against our PyTorch model, same weights, same threads.

    python benchmarks/onnx.py                          # v2-small, a 480x640 photo -> 518x686, 2 threads
    python benchmarks/onnx.py --variant v2-base --threads 4 --iterations 10

Exports the model with `depth_anything_hf.onnx` (dynamic shapes, traced at another size), quantises it, and
times each at the official input size of the photo (lower-bound 518, multiples of 14). Prints milliseconds per
image, the speed-up over PyTorch, and each ONNX model's deviation from PyTorch on that photo: max relative
error and Pearson r. Weights are random unless --model names a checkpoint: speed does not depend on them, but
the int8 deviation does (trained weights are better conditioned), so read it as indicative only.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# `python benchmarks/onnx.py` puts this folder first on sys.path, where this file would shadow the `onnx` package.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import torch
from PIL import Image

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.onnx import export_onnx, onnx_session, pearson_r, quantize_onnx, relative_error

PHOTO = Path(__file__).resolve().parents[1] / "training_scripts" / "sample_data" / "holdout" / "P1070502.jpg"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="v2-small", help="official variant with random weights, e.g. v2-base")
    parser.add_argument("--model", help="a checkpoint to use instead of random weights")
    parser.add_argument("--image", default=str(PHOTO))
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of torch and onnxruntime")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args()


def milliseconds(run, iterations: int, warmup: int) -> float:
    timings = []
    for step in range(warmup + iterations):
        start = time.perf_counter()
        run()
        if step >= warmup:
            timings.append(time.perf_counter() - start)
    return 1000 * statistics.median(timings)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model:
        model = DepthAnythingHFForDepthEstimation.from_pretrained(args.model, dtype=torch.float32)
    else:
        model = DepthAnythingHFForDepthEstimation(DepthAnythingHFConfig.from_variant_name(args.variant))
    model.eval()
    pixel_values = DepthAnythingHFImageProcessor()(Image.open(args.image).convert("RGB"), return_tensors="pt")[
        "pixel_values"
    ]
    with torch.inference_mode():
        reference = model(pixel_values).predicted_depth.numpy()

    rows = []
    with tempfile.TemporaryDirectory() as directory:
        model_path = export_onnx(model, Path(directory) / "model.onnx")
        quantized_path = quantize_onnx(model_path, Path(directory) / "model_quantized.onnx")
        with torch.inference_mode():
            pytorch_ms = milliseconds(lambda: model(pixel_values), args.iterations, args.warmup)
        rows.append(("PyTorch float32", pytorch_ms, None, None))
        inputs = {"pixel_values": pixel_values.numpy()}
        for name, path in (("onnxruntime float32", model_path), ("onnxruntime int8", quantized_path)):
            run = onnx_session(path, num_threads=args.threads).run
            prediction = run(["predicted_depth"], inputs)[0]
            onnx_ms = milliseconds(lambda run=run: run(["predicted_depth"], inputs), args.iterations, args.warmup)
            rows.append((name, onnx_ms, relative_error(prediction, reference), pearson_r(prediction, reference)))
        size_mb = {name: path.stat().st_size / 2**20 for name, path in (("float32", model_path),
                                                                          ("int8", quantized_path))}

    weights = args.model or f"{args.variant} (random weights)"
    height, width = pixel_values.shape[-2:]
    print(f"{weights}, {Path(args.image).name} at {height}x{width}, batch 1, {args.threads} threads, "
          f"torch {torch.__version__}; ONNX files: float32 {size_mb['float32']:.1f} MB, int8 {size_mb['int8']:.1f} MB")
    print("| runtime | ms/img | speed-up vs PyTorch | max relative error vs PyTorch | Pearson r vs PyTorch |")
    print("|---|---|---|---|---|")
    for name, ms, error, correlation in rows:
        deviation = "- | -" if error is None else f"{error:.2e} | {correlation:.5f}"
        print(f"| {name} | {ms:.1f} | {pytorch_ms / ms:.2f} | {deviation} |")


if __name__ == "__main__":
    main()
