"""End to end: a JPEG file to a depth map through `pipeline("depth-estimation")`, ours against transformers'.

    python benchmarks/pipeline.py                        # ViT-S, a 640x480 photo, fp32 and bf16
    python benchmarks/pipeline.py --image my_photo.jpg --dtypes fp32 --iterations 5

Both pipelines load the same random weights from a directory as a user would (`pipeline(model=...)`): ours
with its image processor (official pre-processing on tensors), transformers' with the DPTImageProcessor that
`export_to_transformers` configures. Each call reads and decodes the JPEG, pre-processes, runs the model and
post-processes (resize back to the photo's size, 8-bit depth image). Calls are interleaved in one process; the
table has the median milliseconds per photo, end to end and per stage, and the ratio transformers / ours.
The two pre-processings differ by design (DPT antialiases uint8 images, the official recipe does not), so the
outputs are not compared here; `benchmarks/inference.py` checks the models agree.
"""

import argparse
import tempfile
from pathlib import Path

import PIL.Image
import torch
from harness import DTYPES, add_model_arguments, build_config, interleaved_median_seconds, save_model_pair
from transformers import pipeline

# A real photo from the repository's sample data, resized to the benchmark's size and saved as a JPEG.
DEFAULT_PHOTO = Path(__file__).resolve().parents[1] / "training_scripts" / "sample_data" / "holdout" / "P1070502.jpg"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--image", type=Path, help="a JPEG to use as it is (default: the sample photo at --photo_size)")
    parser.add_argument("--photo_size", type=int, nargs=2, default=[480, 640], metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args(argv)


def stage_runs(depth_estimator, image: str) -> dict[str, object]:
    """The pipeline's stages on their own inputs, so that each can be timed separately."""
    model_inputs = depth_estimator.preprocess(image)
    model_outputs = depth_estimator.forward(model_inputs)
    return {
        "pre-processing": lambda: depth_estimator.preprocess(image),
        "model": lambda: depth_estimator.forward(model_inputs),
        "post-processing": lambda: depth_estimator.postprocess(model_outputs),
    }


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    device = torch.device(args.device)
    config = build_config(args)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        if args.image is None:
            height, width = args.photo_size
            image = str(Path(directory, f"photo_{width}x{height}.jpg"))
            PIL.Image.open(DEFAULT_PHOTO).convert("RGB").resize((width, height), PIL.Image.BICUBIC).save(
                image, quality=90
            )
        else:
            image = str(args.image)
        with PIL.Image.open(image) as photo:
            photo_size = f"{photo.width}x{photo.height}"
        name = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
        )
        print(f"{args.variant}, a {photo_size} JPEG on {name}, torch {torch.__version__}")
        ours_directory, theirs_directory = save_model_pair(config, directory)
        for dtype_name in args.dtypes:
            ours, theirs = (
                pipeline("depth-estimation", model=str(model_directory), dtype=DTYPES[dtype_name], device=device)
                for model_directory in (ours_directory, theirs_directory)
            )
            runs, failures = {}, {}
            for label, depth_estimator in (("ours", ours), ("transformers", theirs)):
                try:
                    stages = {"end to end": lambda depth_estimator=depth_estimator: depth_estimator(image)}
                    stages.update(stage_runs(depth_estimator, image))
                    for run in stages.values():
                        run()
                except Exception as error:  # noqa: BLE001 - reported in the table instead of ending the run
                    failures[label] = f"fails: {type(error).__name__}: {error}"
                    # Time what runs before the failing stage.
                    stages = {stage: run for stage, run in stages.items() if stage in ("pre-processing", "model")}
                runs.update({(stage, label): run for stage, run in stages.items()})
            seconds = interleaved_median_seconds(runs, args.iterations, args.warmup, device)
            for stage in ("end to end", "pre-processing", "model", "post-processing"):
                ours_seconds, theirs_seconds = seconds.get((stage, "ours")), seconds.get((stage, "transformers"))
                rows.append(
                    {
                        "dtype": dtype_name,
                        "stage": stage,
                        "ours_ms": 1000 * ours_seconds if ours_seconds else None,
                        "transformers_ms": 1000 * theirs_seconds if theirs_seconds else None,
                        "ratio": theirs_seconds / ours_seconds if ours_seconds and theirs_seconds else None,
                    }
                )
            for label, failure in failures.items():
                print(f"{dtype_name}: {label} {failure}")

    print("| dtype | stage | ours ms | transformers ms | transformers / ours |")
    print("|---|---|---|---|---|")
    for row in rows:
        ours_ms, theirs_ms, ratio = (
            "-" if row[key] is None else f"{row[key]:.2f}" for key in ("ours_ms", "transformers_ms", "ratio")
        )
        print(f"| {row['dtype']} | {row['stage']} | {ours_ms} | {theirs_ms} | {ratio} |")
    return rows


if __name__ == "__main__":
    main()
