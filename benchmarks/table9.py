"""A toy-scale replication of Table 9 of Depth Anything (the ablation of L_u, strong perturbation S and L_feat).

    python benchmarks/table9.py --output_dir runs/table9 [--seeds 0 1 2] [--quick]

It drives the product scripts, each in its own process, exactly as a user would run them:

1. Splits `../shared/data/synthetic-rgbd` by id: the last 10% is the holdout that nothing trains on, the
   first `--num_labeled` frames are the labeled part (a folder-format copy whose metadata marks zero depth as
   sky), the rest the unlabeled part (images only, depth withheld). Real unlabeled photos found offline
   (mvtb-data, scikit-image's samples except the Middlebury motorcycle, Debian's wallpapers where installed)
   join the unlabeled images, downscaled to at most `--photo_size` px.
2. Per seed: `train_teacher.py` on the labeled part, `pseudo_label.py` on the unlabeled images, and the
   students of Table 9's rows, all from random initialisation (no DINOv2 weights offline):
   `student_ll` (L_l only: `train_teacher.py` with the students' steps and batch), `student_lu` (+ L_u:
   pseudo-labels, no perturbation, no CutMix), `student_lus` (+ S: colour jitter, blur, CutMix p = 0.5) and
   `student_full` (+ L_feat, aligned to the teacher's frozen encoder, the only pre-trained encoder at hand).
3. Scores every model and the ground-plane prior (disparity linear in the image row, fitted per image) with
   the evaluation runner's `compute_metrics`, authors' protocol (disparity space, per-image least-squares
   scale and shift), on the holdout and on scikit-image's Middlebury frame, at the training resolution.

Writes `OUTPUT_DIR/seed{S}/{teacher,student_ll,student_lu,student_lus,student_full}` (`save_pretrained`
folders that `pipeline("depth-estimation")` loads), `OUTPUT_DIR/results.json` and `OUTPUT_DIR/table9.md`
(AbsRel and delta1, mean +- std over seeds), and prints the table. `--quick` trains the teacher and the full
student of the first seed only, `--rows` trains the named student rows only. A finished model folder is reused,
so a stopped run continues where it was, and rows trained by separate commands add up.
"""

import argparse
import concurrent.futures
import importlib
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from depth_anything_hf.data import sample_to_tensors
from depth_anything_hf.data.unlabeled import IMAGE_EXTENSIONS
from depth_anything_hf.evaluation.metrics import MetricsAverager, compute_metrics
from depth_anything_hf.evaluation.presets import get_preset
from depth_anything_hf.evaluation.runner import (
    MIDDLEBURY_SKIMAGE,
    evaluate_model,
    load_evaluation_samples,
)

SCRIPTS = REPO_ROOT / "training_scripts"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "synthetic-rgbd"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "table9_config.json"
HOLDOUT_SPLIT = "train[-10%:]"
WALLPAPERS = Path("/usr/share/wallpapers")  # Debian's plasma-workspace-wallpapers
STUDENT_ROWS = ("student_ll", "student_lu", "student_lus", "student_full")
ROW_TITLES = {
    "prior": "ground-plane prior (disparity linear in the row)",
    "teacher": "teacher T (L_l, labeled part)",
    "student_ll": "student: L_l",
    "student_lu": "student: L_l + L_u",
    "student_lus": "student: L_l + L_u + S",
    "student_full": "student: L_l + L_u + S + L_feat",
}
EVALUATIONS = {"holdout": "rgbd_folder", "middlebury": "middlebury"}
REPORTED_METRICS = ("abs_rel", "delta1")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="teacher and full student of the first seed only")
    parser.add_argument(
        "--rows",
        nargs="*",
        choices=STUDENT_ROWS,
        default=list(STUDENT_ROWS),
        help="the student rows to train and score (the teacher always is; none: the teacher only); --quick: "
        "student_full",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the synthetic-rgbd folder")
    parser.add_argument("--model_config", type=Path, default=DEFAULT_CONFIG, help="config JSON of every model")
    parser.add_argument("--resolution", type=int, default=112, help="training crop and evaluation input size")
    parser.add_argument("--num_labeled", type=int, default=360, help="labeled frames: the first training ids")
    parser.add_argument("--num_unlabeled", type=int, help="unlabeled frames: the next ids (default: all the rest)")
    parser.add_argument("--teacher_steps", type=int, default=1000)
    parser.add_argument("--student_steps", type=int, default=1000, help="also the steps of the L_l-only row")
    parser.add_argument("--teacher_batch_size", type=int, default=4)
    parser.add_argument("--student_batch_size", type=int, default=6, help="1 : 2 labeled : pseudo-labeled")
    parser.add_argument("--encoder_learning_rate", type=float, default=2e-4)
    parser.add_argument("--decoder_learning_rate", type=float, default=4e-4)
    parser.add_argument("--lr_warmup_steps", type=int, default=20)
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping of every run; 0: none")
    parser.add_argument("--photo_size", type=int, default=320, help="long side of the real photos")
    parser.add_argument("--max_photos", type=int, help="use at most this many real photos (smoke tests)")
    parser.add_argument("--max_holdout_images", type=int, help="score at most this many holdout frames")
    parser.add_argument(
        "--in_process",
        action="store_true",
        help="call the scripts' main() in this process instead of one process each (no interpreter start-up: "
        "for smoke tests; the scripts' output then goes to this process's console)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many seeds at once, one process each, with os.cpu_count() // jobs intra-op threads (at "
        "least 1) unless OMP_NUM_THREADS is set",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.jobs > 1 and args.in_process:
        parser.error("--jobs > 1 runs the scripts in their own processes; it cannot be combined with --in_process")
    if args.quick:
        args.seeds, args.rows = args.seeds[:1], ["student_full"]
    return args


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


def pixel_count(path: Path) -> int:
    with Image.open(path) as image:  # reads the header only
        return image.width * image.height


def real_photo_paths() -> list[Path]:
    """The real photographs available offline, in a fixed order (never the Middlebury frame scored on)."""
    roots = []
    for package in ("mvtbdata", "skimage"):
        spec = importlib.util.find_spec(package)
        if spec is not None:
            roots.append(Path(spec.origin).parent / ("images" if package == "mvtbdata" else "data"))
    paths = []
    for root in roots:
        if root.is_dir():
            paths += sorted(
                path
                for path in root.rglob("*")
                if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and "motorcycle" not in path.name
            )
    # A wallpaper ships one picture at several sizes, a dark variant and a screenshot: take its largest picture once.
    for wallpaper in sorted(WALLPAPERS.glob("*/contents/images")):
        sizes = [path for path in wallpaper.iterdir() if path.suffix.lower() in IMAGE_EXTENSIONS]
        if sizes:
            paths.append(max(sizes, key=pixel_count))
    return paths


def prepare_data(args: argparse.Namespace) -> dict:
    """The labeled folder, the unlabeled synthetic images and the photos under OUTPUT_DIR/data."""
    rows = [json.loads(line) for line in (args.data / "metadata.jsonl").read_text().splitlines() if line.strip()]
    rows.sort(key=lambda row: row["file_name"])
    num_holdout = len(rows) - math.floor(len(rows) * 0.9)  # the frames of HOLDOUT_SPLIT
    training_rows = rows[: len(rows) - num_holdout]
    if not 0 < args.num_labeled < len(training_rows):
        raise ValueError(f"--num_labeled must be in [1, {len(training_rows) - 1}], got {args.num_labeled}")
    data_dir = args.output_dir / "data"
    labeled_dir, unlabeled_dir, photos_dir = data_dir / "labeled", data_dir / "unlabeled_synthetic", data_dir / "photos"
    for folder in (labeled_dir, unlabeled_dir, photos_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    source = args.data.resolve()
    metadata = []
    for row in training_rows[: args.num_labeled]:
        for name in (row["file_name"], row["depth_file_name"]):
            (labeled_dir / name).symlink_to(source / name)
        # synthetic-rgbd leaves the environment (sky) at depth 0: train it as sky.
        metadata.append(json.dumps({**row, "zero_depth_is_sky": True}))
    (labeled_dir / "metadata.jsonl").write_text("\n".join(metadata) + "\n")
    unlabeled_rows = training_rows[args.num_labeled :][: args.num_unlabeled]
    for row in unlabeled_rows:
        (unlabeled_dir / row["file_name"]).symlink_to(source / row["file_name"])

    photos, skipped = [], []
    for path in real_photo_paths():
        if args.max_photos is not None and len(photos) == args.max_photos:
            break
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except OSError as error:  # PIL's UnidentifiedImageError too
            skipped.append(f"{path}: {error}")
            continue
        image.thumbnail((args.photo_size, args.photo_size), Image.Resampling.LANCZOS)
        image.save(photos_dir / f"{len(photos):03d}_{path.stem}.jpg", quality=92)
        photos.append(path)
    if skipped:
        print(f"{len(skipped)} photo file(s) could not be read and are not used:\n  " + "\n  ".join(skipped))
    return {
        "labeled": str(labeled_dir),
        "unlabeled": [str(unlabeled_dir), str(photos_dir)],
        "num_labeled": args.num_labeled,
        "num_unlabeled_synthetic": len(unlabeled_rows),
        "num_photos": len(photos),
        "photo_sources": sorted({str(path.parent) for path in photos}),
        "unreadable_photo_files": skipped,
        "holdout_ids": [rows[-num_holdout]["file_name"], rows[-1]["file_name"]],
    }


# --------------------------------------------------------------------------------------------------------------
# Training: the product scripts, one process each
# --------------------------------------------------------------------------------------------------------------


def is_trained(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def run_script(
    script: str, arguments: list[str], log_path: Path, in_process: bool = False, threads: int | None = None
) -> float:
    """Run `training_scripts/<script>` with `arguments`, its output to `log_path` (or, `in_process`, its `main`
    here), with `threads` intra-op threads unless OMP_NUM_THREADS is set; returns the seconds taken."""
    command = [sys.executable, str(SCRIPTS / script), *arguments]
    start = time.perf_counter()
    if in_process:
        log_path.write_text(" ".join(command) + "\n")
        if str(SCRIPTS) not in sys.path:
            sys.path.insert(0, str(SCRIPTS))
        module = importlib.import_module(Path(script).stem)
        # pseudo_label.main parses its argv; the training scripts' main takes parsed arguments.
        module.main(arguments) if script == "pseudo_label.py" else module.main(module.parse_args(arguments))
        return time.perf_counter() - start
    environment = dict(os.environ)
    if threads is not None:
        environment.setdefault("OMP_NUM_THREADS", str(threads))
    with open(log_path, "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        completed = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=environment, check=False
        )
    if completed.returncode != 0:
        raise RuntimeError(f"{script} failed (exit code {completed.returncode}); see {log_path}")
    return time.perf_counter() - start


def common_training_arguments(
    args: argparse.Namespace, seed: int, output_dir: Path, steps: int, batch: int
) -> list[str]:
    return [
        "--model_config", str(args.model_config),
        "--encoder_init", "none",
        "--resolution", str(args.resolution),
        "--train_batch_size", str(batch),
        "--max_train_steps", str(steps),
        "--encoder_learning_rate", str(args.encoder_learning_rate),
        "--decoder_learning_rate", str(args.decoder_learning_rate),
        "--lr_warmup_steps", str(args.lr_warmup_steps),
        "--max_grad_norm", str(args.max_grad_norm),
        "--seed", str(seed),
        "--checkpointing_steps", str(steps),
        "--checkpoints_total_limit", "1",
        "--report_to", "tensorboard",
        "--logging_steps", "50",
        "--image_logging_steps", "0",
        "--output_dir", str(output_dir),
    ]  # fmt: skip


def train_seed(args: argparse.Namespace, data: dict, seed: int, rows: tuple[str, ...]) -> dict[str, float]:
    """Teacher, pseudo-labels and the students of `rows` for one seed; returns the seconds of each step."""
    seed_dir = args.output_dir / f"seed{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    seconds = {}
    labeled = ["--dataset", data["labeled"]]
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None

    def train(name: str, script: str, arguments: list[str]) -> None:
        if is_trained(seed_dir / name):
            print(f"seed {seed}: {name} exists, reused", flush=True)
            return
        print(f"seed {seed}: training {name}", flush=True)
        seconds[name] = run_script(script, arguments, seed_dir / f"{name}.log", args.in_process, threads)

    teacher = seed_dir / "teacher"
    train(
        "teacher",
        "train_teacher.py",
        labeled + common_training_arguments(args, seed, teacher, args.teacher_steps, args.teacher_batch_size),
    )
    pseudo_labels = seed_dir / "pseudo_labels"
    if set(rows) - {"student_ll"} and not (pseudo_labels / "README.md").is_file():
        print(f"seed {seed}: pseudo-labelling", flush=True)
        arguments = ["--teacher", str(teacher), "--output_dir", str(pseudo_labels), "--seed", str(seed)]
        for source in data["unlabeled"]:
            arguments += ["--unlabeled_dataset", source]
        seconds["pseudo_labels"] = run_script(
            "pseudo_label.py", arguments, seed_dir / "pseudo_labels.log", args.in_process, threads
        )

    # Students differ from the teacher only in their seed stream, so the L_l row is not the teacher re-run.
    student_seed = seed + 1000
    student = ["--pseudo_labels", str(pseudo_labels)]
    row_arguments = {
        "student_ll": ("train_teacher.py", []),
        "student_lu": ("train_student.py", student + ["--no_strong_perturbation", "--cutmix_probability", "0",
                                                      "--no_feature_alignment"]),
        "student_lus": ("train_student.py", student + ["--no_feature_alignment"]),
        "student_full": ("train_student.py", student + ["--feature_alignment_encoder", str(teacher)]),
    }  # fmt: skip
    for name in rows:
        script, extra = row_arguments[name]
        common = common_training_arguments(
            args, student_seed, seed_dir / name, args.student_steps, args.student_batch_size
        )
        train(name, script, labeled + extra + common)
    return seconds


# --------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------


def evaluation_datasets(args: argparse.Namespace) -> list:
    return [
        (get_preset(EVALUATIONS["holdout"]), str(args.data)),
        (get_preset(EVALUATIONS["middlebury"]), MIDDLEBURY_SKIMAGE),
    ]


def evaluate_checkpoint(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, float]]:
    """{"holdout": scores, "middlebury": scores} of one model (the evaluation runner, disparity protocol)."""
    scores = {}
    for name, dataset in zip(EVALUATIONS, evaluation_datasets(args)):
        results = evaluate_model(
            str(folder),
            [dataset],
            protocols=["disparity"],
            split=HOLDOUT_SPLIT if name == "holdout" else "train",
            max_images=args.max_holdout_images if name == "holdout" else None,
            input_size=args.resolution,
            device="cpu" if not torch.cuda.is_available() else None,
        )
        evaluation = results["evaluations"][0]
        scores[name] = {key: evaluation[key] for key in ("metrics", "num_images", "num_skipped")}
    return scores


def evaluate_ground_plane_prior(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The "nearer at the bottom" prior: disparity = image row, scale and shift fitted per image by the
    disparity protocol's alignment."""
    scores = {}
    for name, (preset, path) in zip(EVALUATIONS, evaluation_datasets(args)):
        samples = load_evaluation_samples(preset, path, HOLDOUT_SPLIT if name == "holdout" else "train")
        if name == "holdout" and args.max_holdout_images is not None:
            samples = samples.take(args.max_holdout_images)
        averager = MetricsAverager()
        for sample in map(sample_to_tensors, samples):
            height, width = sample["depth"].shape
            rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
            averager.update(
                compute_metrics(
                    rows, sample["depth"], sample["valid_mask"], prediction_type="disparity", protocol="disparity",
                    depth_cap=preset.max_depth, min_depth=preset.min_depth, crop=preset.crop,
                    check_orientation=False,  # a prior, not a user's map: a view of the ceiling anti-correlates
                )
            )  # fmt: skip
        scores[name] = averager.compute()
    return scores


def summary(values: list[float]) -> dict:
    return {
        "values": values,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def markdown_table(rows: dict) -> str:
    header = "| row | holdout AbsRel | holdout delta1 | Middlebury AbsRel | Middlebury delta1 |\n|---|---|---|---|---|"
    lines = [header]
    for name, row in rows.items():
        cells = []
        for evaluation in EVALUATIONS:
            for metric in REPORTED_METRICS:
                stats = row[evaluation][metric]
                spread = f" +- {stats['std']:.3f}" if len(stats["values"]) > 1 else ""
                cells.append(f"{stats['mean']:.3f}{spread}")
        lines.append(f"| {ROW_TITLES[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = prepare_data(args)
    student_rows = tuple(name for name in STUDENT_ROWS if name in args.rows)
    model_rows = ("teacher", *student_rows)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # The threads only wait on the scripts' processes; list() re-raises the first failure.
        trainings = list(pool.map(lambda seed: train_seed(args, data, seed, student_rows), args.seeds))
    seconds = dict(zip(args.seeds, trainings))
    per_seed = {
        seed: {name: evaluate_checkpoint(args, args.output_dir / f"seed{seed}" / name) for name in model_rows}
        for seed in args.seeds
    }
    prior = evaluate_ground_plane_prior(args)

    rows = {
        "prior": {
            evaluation: {m: summary([prior[evaluation]["metrics"][m]]) for m in REPORTED_METRICS}
            for evaluation in EVALUATIONS
        }
    }
    for name in model_rows:
        rows[name] = {
            evaluation: {
                metric: summary([per_seed[seed][name][evaluation]["metrics"][metric] for seed in args.seeds])
                for metric in REPORTED_METRICS
            }
            for evaluation in EVALUATIONS
        }
    table = markdown_table(rows)
    results = {
        "command": "python benchmarks/table9.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "data": data,
        "protocol": "disparity (per-image least-squares scale and shift of disparity; metrics in disparity space)",
        "evaluation_input_size": args.resolution,
        "feature_alignment_target": "the seed's teacher encoder (frozen); no DINOv2 weights offline",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "rows": rows,
        "per_seed": {str(seed): per_seed[seed] for seed in args.seeds},
        "seconds": {str(seed): seconds[seed] for seed in args.seeds},
        "total_seconds": time.perf_counter() - start,
        "table": table,
    }
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output_dir / "table9.md").write_text(table + "\n")
    print(table)
    return results


if __name__ == "__main__":
    main()
