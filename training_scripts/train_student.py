"""Stage 2 of Depth Anything: train the student S on labeled and pseudo-labeled images (docs/method.md section 4).

The student is re-initialised from DINOv2 (`--encoder_init`), not from the teacher (`--init_from` starts it from
a whole Depth Anything model instead, to fine-tune a released one). Every batch mixes labeled
and pseudo-labeled images 1:`--unlabeled_ratio` (1:2); each unlabeled image is used once per pass. Pseudo-labels
come from `pseudo_label.py` (`--pseudo_labels`) or from a teacher held in memory (`--teacher` with
`--unlabeled_dataset`), which computes the same targets. The student sees the unlabeled images strongly
perturbed (colour jitter, blur) and CutMixed (p = 0.5), the targets come from the clean images, and the CutMix
loss is area-weighted (eq. 4-6). Feature alignment to a frozen DINOv2 (eq. 7, `--alpha` 0.85) applies to the
unlabeled images. The loss is the mean of L_l, L_u and L_feat; each is logged.

    accelerate launch training_scripts/train_student.py \\
        --dataset ../shared/data/synthetic-rgbd --pseudo_labels runs/pseudo_labels \\
        --model_config v2-small --encoder_init facebook/dinov2-small --resolution 518 \\
        --train_batch_size 6 --max_train_steps 20000 --output_dir runs/student

V2 students: `--unlabeled_ratio inf` (pseudo-labeled images only), `--gradient_matching_weight 2`,
`--ignore_largest_fraction 0.1`. Runs unchanged on one process, on several CPU processes (gloo) and on several
GPUs or nodes; resume a stopped run with `--resume_from_checkpoint latest`.
"""

import argparse

import torch
from accelerate.utils import gather_object

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.data.transforms import PairedResizeCropFlip, StrongPerturbation, cutmix_with_partners
from depth_anything_hf.mixed_precision import autocast_dtype
from depth_anything_hf.training.arguments import (
    check_training_arguments,
    require_relative_model,
    tracker_config,
    training_arguments,
    training_parser,
    unlabeled_ratio,
)
from depth_anything_hf.training.batches import (
    labeled_batch,
    normalize_images,
    online_pseudo_labeled_samples,
    pseudo_labeled_batch,
    split_batch_size,
)
from depth_anything_hf.training.checkpointing import (
    checkpoint_folder,
    register_process_states,
    resume_from_checkpoint,
)
from depth_anything_hf.training.encoder_init import NO_ENCODER_INIT, FrozenFeatureEncoder
from depth_anything_hf.training.export import save_final_model
from depth_anything_hf.training.objectives import (
    StudentLossSettings,
    perturb_and_mix,
    student_flat_maps,
    student_losses,
)
from depth_anything_hf.training.runtime import (
    create_model,
    end_training,
    optimizer_step,
    prepare_optimization,
    resolve_max_train_steps,
    start_accelerator,
)
from depth_anything_hf.training.streams import (
    labeled_stream_from_arguments,
    pseudo_labeled_stream,
    unlabeled_image_stream,
)
from depth_anything_hf.training.tracking import TrainingProgress


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = training_parser(__doc__)
    student = parser.add_argument_group("student")
    student.add_argument(
        "--unlabeled_ratio",
        type=unlabeled_ratio,
        default=2.0,
        help="pseudo-labeled images per labeled image in a batch (1:2 in the paper); 'inf' for no labeled data",
    )
    student.add_argument("--cutmix_probability", type=float, default=0.5, help="CutMix probability (eq. 4)")
    student.add_argument(
        "--no_strong_perturbation",
        action="store_true",
        help="no colour jitter, grayscale or blur on the unlabeled input (Table 9's '+L_u' row; CutMix is "
        "--cutmix_probability)",
    )
    student.add_argument("--alpha", type=float, default=0.85, help="feature-alignment tolerance margin (eq. 7)")
    student.add_argument("--no_feature_alignment", action="store_true", help="train without L_feat")
    student.add_argument(
        "--feature_alignment_encoder",
        help="the frozen DINOv2 of feature alignment, as --encoder_init takes it (default: --encoder_init)",
    )
    student.add_argument(
        "--ignore_largest_fraction",
        type=float,
        default=0.0,
        help="V2: leave out this share of pixels with the largest loss on pseudo-labeled images (V2: 0.1)",
    )
    # Each unlabeled image is seen once (docs/method.md section 4): one pass unless --num_train_epochs says otherwise.
    parser.set_defaults(train_batch_size=6, num_train_epochs=1)
    args = parser.parse_args(argv)

    if bool(args.pseudo_labels) == bool(args.teacher):
        parser.error("give either --pseudo_labels (precomputed) or --teacher with --unlabeled_dataset (online)")
    if args.teacher and not args.unlabeled_dataset:
        parser.error("--teacher labels --unlabeled_dataset images online: give at least one --unlabeled_dataset")
    if args.unlabeled_ratio != float("inf") and not args.dataset:
        parser.error("a student with labeled data needs --dataset (or --unlabeled_ratio inf for none)")
    if not 0.0 <= args.cutmix_probability <= 1.0:
        parser.error(f"--cutmix_probability must be in [0, 1], got {args.cutmix_probability}")
    if not -1.0 <= args.alpha <= 1.0:
        parser.error(f"--alpha is a cosine and must be in [-1, 1], got {args.alpha}")
    if not 0.0 <= args.ignore_largest_fraction < 1.0:
        parser.error(f"--ignore_largest_fraction must be in [0, 1), got {args.ignore_largest_fraction}")
    check_training_arguments(parser, args)
    require_relative_model(parser, args)
    args.feature_alignment_encoder = args.feature_alignment_encoder or args.encoder_init
    if not args.no_feature_alignment and args.feature_alignment_encoder in (None, NO_ENCODER_INIT):
        parser.error("feature alignment needs a DINOv2: give --feature_alignment_encoder or --no_feature_alignment")
    try:
        args.num_labeled, args.num_unlabeled = split_batch_size(args.train_batch_size, args.unlabeled_ratio)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(args: argparse.Namespace) -> DepthAnythingHFForDepthEstimation:
    """Train, save the final model to `--output_dir`, and return it (this process's copy)."""
    accelerator = start_accelerator(args)
    model = create_model(args)
    frozen_encoder = None
    if not args.no_feature_alignment:
        frozen_encoder = FrozenFeatureEncoder(model.config, args.feature_alignment_encoder).to(accelerator.device)
    teacher = teacher_processor = None
    if args.teacher:
        teacher = DepthAnythingHFForDepthEstimation.from_pretrained(args.teacher).to(accelerator.device).eval()
        teacher_processor = DepthAnythingHFImageProcessor.from_pretrained(args.teacher)
        unlabeled = unlabeled_image_stream(
            args.unlabeled_dataset,
            accelerator,
            args.seed,
            args.shuffle_buffer_size,
            teacher_processor,
            prefetch_examples=args.prefetch_examples,
        )
    else:
        unlabeled = pseudo_labeled_stream(
            args.pseudo_labels, accelerator, args.seed, args.shuffle_buffer_size, args.prefetch_examples
        )
    streams = {"unlabeled": unlabeled}
    labeled = None
    if args.num_labeled:
        labeled = streams["labeled"] = labeled_stream_from_arguments(args, accelerator)

    max_train_steps = resolve_max_train_steps(
        args,
        examples_per_epoch=lambda: sum(gather_object([unlabeled.count_examples()])),
        examples_per_step=args.num_unlabeled * accelerator.num_processes * args.gradient_accumulation_steps,
    )
    model, optimizer, scheduler = prepare_optimization(accelerator, model, args, max_train_steps)
    geometry = PairedResizeCropFlip(args.resolution)
    perturbation = (
        StrongPerturbation(jitter_probability=0.0, grayscale_probability=0.0, blur_probability=0.0)
        if args.no_strong_perturbation
        else StrongPerturbation()
    )
    loss_settings = StudentLossSettings(args.alpha, args.gradient_matching_weight, args.ignore_largest_fraction)
    generator = register_process_states(accelerator, args.seed, **streams)
    global_step = resume_from_checkpoint(accelerator, args.output_dir, args.resume_from_checkpoint, args)
    accelerator.init_trackers("train_student", config=tracker_config(args))

    progress = TrainingProgress(accelerator, args, max_train_steps, global_step, "student", model)
    model.train()
    while not progress.finished:
        with accelerator.accumulate(model):
            labeled_part = None
            if labeled is not None:
                labeled_part = labeled_batch(labeled.take(args.num_labeled), geometry, accelerator.device, generator)
            samples = unlabeled.take(args.num_unlabeled)
            if teacher is not None:
                samples = online_pseudo_labeled_samples(
                    samples, teacher, teacher_processor, autocast_dtype(accelerator.mixed_precision)
                )
            pseudo_labeled = pseudo_labeled_batch(samples, geometry, accelerator.device, generator)
            student_images, mix_mask = perturb_and_mix(
                pseudo_labeled.images, perturbation, args.cutmix_probability, generator
            )
            if labeled_part is not None:
                student_images = torch.cat([labeled_part.images, student_images])
            pixel_values = normalize_images(student_images)

            outputs = model(pixel_values, output_encoder_features=frozen_encoder is not None)
            frozen_features = None
            if frozen_encoder is not None:
                with accelerator.autocast():
                    frozen_features = frozen_encoder(pixel_values[args.num_labeled :])
            losses = student_losses(
                outputs.predicted_depth,
                labeled_part,
                pseudo_labeled,
                mix_mask,
                loss_settings,
                outputs.encoder_features,
                frozen_features,
            )
            accelerator.backward(losses["total"])
            optimizer_step(accelerator, model, optimizer, scheduler, args.max_grad_norm)
        progress.add_micro_batch(
            losses,
            len(student_images),
            student_flat_maps(outputs.predicted_depth, labeled_part, pseudo_labeled, mix_mask),
        )
        if accelerator.sync_gradients:
            # Logged: the student's view, its prediction, and the target of each CutMix region.
            progress.end_step(
                optimizer,
                lambda: (
                    "pseudo_labeled",
                    student_images[args.num_labeled :],
                    outputs.predicted_depth[args.num_labeled :],
                    cutmix_with_partners(pseudo_labeled.disparity, mix_mask),
                ),
            )
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
