"""Stage 1 of Depth Anything: train the teacher T on labeled RGB-D data (docs/method.md section 4).

The encoder starts from DINOv2 (`--encoder_init`), the DPT decoder from scratch; `--init_from` starts from a
whole Depth Anything model instead (ours, transformers' or an official .pth), to fine-tune it on your data.
Metric models are refused: they are fine-tuned by `train_metric.py`. Targets are disparity
(1/depth normalised per map, sky -> 0), the loss is affine-invariant (eq. 1-2), augmentation is a resize of the
short side to `--resolution`, a random square crop and a horizontal flip. AdamW with 5e-6 on the encoder and
10x on the decoder, linear decay.

    accelerate launch training_scripts/train_teacher.py \\
        --dataset ../shared/data/synthetic-rgbd --model_config v2-small --encoder_init facebook/dinov2-small \\
        --resolution 518 --train_batch_size 4 --max_train_steps 20000 --output_dir runs/teacher

Runs unchanged on one process, on several CPU processes (gloo) and on several GPUs or nodes; resume a stopped
run with `--resume_from_checkpoint latest`. The output folder loads in `pipeline("depth-estimation")`.
"""

import argparse

from accelerate.utils import gather_object

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.data.transforms import PairedResizeCropFlip
from depth_anything_hf.training.arguments import (
    check_training_arguments,
    require_relative_model,
    tracker_config,
    training_arguments,
    training_parser,
)
from depth_anything_hf.training.batches import labeled_batch, normalize_images
from depth_anything_hf.training.checkpointing import (
    checkpoint_folder,
    register_process_states,
    resume_from_checkpoint,
)
from depth_anything_hf.training.export import save_final_model
from depth_anything_hf.training.objectives import depth_loss, teacher_flat_maps
from depth_anything_hf.training.runtime import (
    create_model,
    end_training,
    optimizer_step,
    prepare_optimization,
    resolve_max_train_steps,
    start_accelerator,
)
from depth_anything_hf.training.streams import labeled_stream_from_arguments
from depth_anything_hf.training.tracking import TrainingProgress


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = training_parser(__doc__)
    args = parser.parse_args(argv)
    if not args.dataset:
        parser.error("the teacher trains on labeled data: give at least one --dataset")
    check_training_arguments(parser, args)
    require_relative_model(parser, args)
    return args


def main(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """Train, save the final model to `--output_dir`, and return it (this process's copy)."""
    accelerator = start_accelerator(args)
    model = create_model(args)
    stream = labeled_stream_from_arguments(args, accelerator)
    max_train_steps = resolve_max_train_steps(
        args,
        examples_per_epoch=lambda: sum(gather_object([stream.count_examples()])),
        examples_per_step=args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps,
    )
    model, optimizer, scheduler = prepare_optimization(accelerator, model, args, max_train_steps)
    geometry = PairedResizeCropFlip(args.resolution)
    generator = register_process_states(accelerator, args.seed, labeled=stream)
    global_step = resume_from_checkpoint(accelerator, args.output_dir, args.resume_from_checkpoint, args)
    accelerator.init_trackers("train_teacher", config=tracker_config(args))

    progress = TrainingProgress(accelerator, args, max_train_steps, global_step, "teacher", model)
    model.train()
    while not progress.finished:
        with accelerator.accumulate(model):
            batch = labeled_batch(stream.take(args.train_batch_size), geometry, accelerator.device, generator)
            predicted_disparity = model(normalize_images(batch.images)).predicted_depth
            loss = depth_loss(
                predicted_disparity, batch.disparity, batch.supervised_mask, args.gradient_matching_weight
            )
            accelerator.backward(loss)
            optimizer_step(accelerator, model, optimizer, scheduler, args.max_grad_norm)
        progress.add_micro_batch(
            {"labeled": loss},
            len(batch),
            teacher_flat_maps(predicted_disparity, batch.disparity, batch.supervised_mask),
        )
        if accelerator.sync_gradients:
            progress.end_step(optimizer, lambda: ("labeled", batch.images, predicted_disparity, batch.disparity))
            if progress.global_step % args.checkpointing_steps == 0:
                with checkpoint_folder(
                    accelerator,
                    args.output_dir,
                    progress.global_step,
                    args.checkpoints_total_limit,
                    training_arguments(args),
                ) as save_path:
                    accelerator.save_state(save_path)

    progress.close()
    save_final_model(accelerator, model, args)
    model = accelerator.unwrap_model(model)
    end_training(accelerator)
    return model


if __name__ == "__main__":
    main(parse_args())
