"""Metric-depth fine-tuning of Depth Anything V2 (docs/method.md section 4, "Metric fine-tuning"), on Accelerate.

The official V2 `metric_depth` recipe: the encoder of a relative model (`--init_from`: ours, transformers'
`depth_anything` or an official `.pth`), a new DPT decoder whose head outputs Sigmoid x `--max_depth` metres, the
SiLog loss (lambda 0.5) on the pixels with ground truth in [`--min_depth`, `--max_depth`], AdamW with 5e-6 on the
encoder and 10x on the decoder, polynomial decay with power 0.9 (`--lr_power`), and the official augmentation:
short side resized to `--resolution`, a random square crop, a horizontal flip.

Every `--validation_steps` the model is scored on `--validation_dataset` with the metric protocol of
`depth_anything_hf.evaluation` (no alignment; ground truth within the preset's range and `--max_depth`); the best
model by AbsRel is kept in `OUTPUT_DIR/best`, and the final model's metrics go to `OUTPUT_DIR/results.json`,
which its model card shows.

    accelerate launch training_scripts/train_metric.py --init_from runs/teacher \\
        --dataset ../shared/data/synthetic-rgbd --dataset_split "train[:-10%]" \\
        --validation_dataset rgbd_folder=../shared/data/synthetic-rgbd --validation_split "train[-10%:]" \\
        --max_depth 20 --resolution 518 --train_batch_size 4 --max_train_steps 20000 --output_dir runs/metric

Labels must be depth in metres (disparity-only datasets are refused). Runs unchanged on one process, on several
CPU processes (gloo) and on several GPUs or nodes; resume a stopped run with `--resume_from_checkpoint latest`.
"""

import argparse
import copy
import math
from pathlib import Path

from accelerate.logging import get_logger
from accelerate.utils import gather_object

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.data import shard_for_process
from depth_anything_hf.data.transforms import PairedResizeCropFlip
from depth_anything_hf.evaluation.metrics import MetricsAverager
from depth_anything_hf.evaluation.runner import (
    evaluation_dataset,
    evaluation_row,
    load_evaluation_samples,
    results_document,
    score_samples,
    write_results,
)
from depth_anything_hf.training.arguments import (
    check_training_arguments,
    positive_int,
    tracker_config,
    training_arguments,
    training_parser,
)
from depth_anything_hf.training.batches import metric_depth_batch, normalize_images
from depth_anything_hf.training.checkpointing import (
    checkpoint_folder,
    register_process_states,
    resume_from_checkpoint,
)
from depth_anything_hf.training.encoder_init import model_from_checkpoint
from depth_anything_hf.training.export import save_final_model, write_model_folder
from depth_anything_hf.training.runtime import (
    end_training,
    optimizer_step,
    prepare_for_training,
    prepare_optimization,
    resolve_max_train_steps,
    start_accelerator,
)
from depth_anything_hf.training.streams import labeled_stream_from_arguments
from depth_anything_hf.training.tracking import TrainingProgress

logger = get_logger(__name__)

BEST_MODEL_DIR = "best"
SELECTION_METRIC = "abs_rel"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = training_parser(__doc__)
    metric = parser.add_argument_group("metric depth")
    metric.add_argument(
        "--max_depth",
        type=float,
        default=20.0,
        help="metres; the head predicts Sigmoid x max_depth (V2: 20 indoor, 80 outdoor) and deeper ground truth "
        "is not supervised",
    )
    metric.add_argument("--min_depth", type=float, default=1e-3, help="metres; shallower ground truth is ignored")
    metric.add_argument("--lr_power", type=float, default=0.9, help="power of the polynomial learning-rate decay")
    metric.add_argument(
        "--validation_dataset",
        action="append",
        default=[],
        metavar="PRESET=PATH",
        help="metric ground truth to validate on, repeatable; an evaluation preset (e.g. rgbd_folder, nyu, kitti) "
        "sets its depth range and crop; the first one selects the best model",
    )
    metric.add_argument(
        "--validation_split", default="train", help='split spec of the validation sets, e.g. "train[-10%%:]"'
    )
    metric.add_argument("--validation_steps", type=positive_int, default=500, help="validate every N steps")
    metric.add_argument("--max_validation_images", type=positive_int, help="at most this many per validation set")
    metric.add_argument("--validation_batch_size", type=positive_int, default=4)
    parser.set_defaults(lr_scheduler="polynomial")
    args = parser.parse_args(argv)

    if args.init_from is None:
        parser.error("metric fine-tuning starts from a Depth Anything checkpoint: give --init_from")
    if not args.dataset:
        parser.error("give at least one --dataset with metric depth")
    if not 0 <= args.min_depth < args.max_depth:
        parser.error(f"expected 0 <= --min_depth < --max_depth, got {args.min_depth} and {args.max_depth}")
    check_training_arguments(parser, args)
    try:
        args.validation_sets = [evaluation_dataset(spec) for spec in args.validation_dataset]
    except ValueError as error:
        parser.error(str(error))
    return args


def metric_model(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """The `--init_from` architecture with a metric head (Sigmoid x `--max_depth`): its encoder from the
    checkpoint, its DPT decoder new, as the official recipe (the relative head predicts disparity, the metric
    one depth)."""
    source = model_from_checkpoint(args.init_from, args.model_config)
    config = copy.deepcopy(source.config)
    config.depth_estimation_type = "metric"
    config.max_depth = float(args.max_depth)
    model = DepthAnythingHFForDepthEstimation(config)
    model.encoder.load_state_dict(source.encoder.state_dict())
    return model


class BestValidation:
    """The best validation AbsRel so far and its step, checkpointed so that a resumed run keeps `best/` right."""

    def __init__(self):
        self.value = math.inf
        self.step = None

    def state_dict(self) -> dict:
        return {"value": self.value, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.step = state["value"], state["step"]


def validate(accelerator, model, args: argparse.Namespace, processor, step: int) -> dict:
    """Score the model on every `--validation_dataset` (each process its share of the images, gathered) with the
    metric protocol; returns the results.json content (identical on every process)."""
    unwrapped = accelerator.unwrap_model(model)
    was_training = unwrapped.training
    unwrapped.eval()
    evaluations = []
    for preset, path in args.validation_sets:
        samples = load_evaluation_samples(preset, path, args.validation_split)
        if isinstance(samples, list):
            samples = samples[: args.max_validation_images][accelerator.process_index :: accelerator.num_processes]
        else:
            if args.max_validation_images is not None:
                samples = samples.take(args.max_validation_images)
            samples = shard_for_process(samples, accelerator.process_index, accelerator.num_processes)
        depth_cap = min(preset.max_depth, args.max_depth)
        min_depth = max(preset.min_depth, args.min_depth)
        averager = score_samples(
            unwrapped,
            processor,
            samples,
            ["metric"],
            prediction_type="depth",
            min_depth=min_depth,
            depth_cap=depth_cap,
            crop=preset.crop,
            batch_size=args.validation_batch_size,
            description=f"validation {preset.name}",
            disable_progress=not accelerator.is_local_main_process,
        )["metric"]
        combined = MetricsAverager.combined(gather_object([averager]))
        evaluations.append(
            evaluation_row(preset, path, args.validation_split, "metric", combined, depth_cap, min_depth)
        )
    unwrapped.train(was_training)
    results = results_document(args.output_dir, unwrapped.config, evaluations, args.resolution, False, "no")
    results["step"] = step
    accelerator.log(
        {f"validation/{row['dataset']}/{name}": value for row in evaluations for name, value in row["metrics"].items()},
        step=step,
    )
    return results


def main(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """Fine-tune, save the final model to `--output_dir`, and return it (this process's copy)."""
    accelerator = start_accelerator(args)
    model = prepare_for_training(metric_model(args), args)
    processor = DepthAnythingHFImageProcessor.from_model_config(model.config, size=args.resolution)
    stream = labeled_stream_from_arguments(args, accelerator)
    max_train_steps = resolve_max_train_steps(
        args,
        examples_per_epoch=lambda: sum(gather_object([stream.count_examples()])),
        examples_per_step=args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps,
    )
    # transformers' polynomial schedule decays to lr_end; 0 gives the official lr x (1 - step / steps) ** power.
    polynomial = {"power": args.lr_power, "lr_end": 0.0} if args.lr_scheduler == "polynomial" else None
    model, optimizer, scheduler = prepare_optimization(accelerator, model, args, max_train_steps, polynomial)
    geometry = PairedResizeCropFlip(args.resolution)
    generator = register_process_states(accelerator, args.seed, labeled=stream)
    best = BestValidation()
    accelerator.register_for_checkpointing(best)
    global_step = resume_from_checkpoint(accelerator, args.output_dir, args.resume_from_checkpoint, args)
    accelerator.init_trackers("train_metric", config=tracker_config(args))
    if not args.validation_sets:
        logger.warning("No --validation_dataset: the run is not validated and no best model is kept")
    last_results = None

    def validate_and_keep_best(step: int) -> None:
        nonlocal last_results
        last_results = validate(accelerator, model, args, processor, step)
        value = last_results["evaluations"][0]["metrics"][SELECTION_METRIC]
        logger.info(f"Step {step}: validation {SELECTION_METRIC} {value:.4f} (best {best.value:.4f})")
        if value < best.value:
            best.value, best.step = value, step
            if accelerator.is_main_process:
                best_dir = Path(args.output_dir) / BEST_MODEL_DIR
                write_model_folder(accelerator.unwrap_model(model), args, best_dir)
                write_results(last_results, best_dir)
                logger.info(f"Kept the model of step {step} in {best_dir}")
        accelerator.wait_for_everyone()

    progress = TrainingProgress(accelerator, args, max_train_steps, global_step, "metric", model)
    model.train()
    while not progress.finished:
        with accelerator.accumulate(model):
            batch = metric_depth_batch(
                stream.take(args.train_batch_size),
                geometry,
                accelerator.device,
                generator,
                args.min_depth,
                args.max_depth,
            )
            # forward(labels=...) of a metric model is the SiLog loss (depth_anything_hf.losses).
            outputs = model(normalize_images(batch.images), labels=batch.depth, valid_mask=batch.valid_mask)
            accelerator.backward(outputs.loss)
            optimizer_step(accelerator, model, optimizer, scheduler, args.max_grad_norm)
        progress.add_micro_batch({"silog": outputs.loss}, len(batch))
        if accelerator.sync_gradients:
            progress.end_step(optimizer, lambda: ("metric", batch.images, outputs.predicted_depth, batch.depth))
            step = progress.global_step
            # Before the checkpoint, so that a checkpoint holds the best AbsRel up to its own step.
            if args.validation_sets and (step % args.validation_steps == 0 or step == max_train_steps):
                validate_and_keep_best(step)
            if step % args.checkpointing_steps == 0:
                with checkpoint_folder(
                    accelerator, args.output_dir, step, args.checkpoints_total_limit, training_arguments(args)
                ) as save_path:
                    accelerator.save_state(save_path)

    progress.close()
    if args.validation_sets and (last_results is None or last_results["step"] != max_train_steps):
        last_results = validate(accelerator, model, args, processor, max_train_steps)
    if last_results is not None and accelerator.is_main_process:
        write_results(last_results, args.output_dir)
    save_final_model(accelerator, model, args)
    model = accelerator.unwrap_model(model)
    end_training(accelerator)
    return model


if __name__ == "__main__":
    main(parse_args())
