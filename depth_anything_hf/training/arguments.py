"""Command-line flags shared by the training scripts, defined once so that they are named the same everywhere.

Each `add_*_arguments(parser)` adds one group and returns the parser; a script takes the groups it needs and
adds its own flags (see `training_scripts/`). Flags follow the diffusers training scripts.
"""

import argparse

from ..data.specs import GRAMMAR, DatasetSpec, parse_dataset_spec
from ..mixed_precision import MIXED_PRECISION_CHOICES

DEFAULT_MODEL_CONFIG = "v2-small"
DEFAULT_ENCODER_INIT = "facebook/dinov2-small"
# `--encoder_init` for a random encoder.
NO_ENCODER_INIT = "none"
# Where `resume_from_checkpoint` keeps the changes made on resuming (see `checkpointing.py`).
RESUME_HISTORY = "resume_history"


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return number


def unlabeled_ratio(value: str) -> float:
    """`--unlabeled_ratio`: a positive number, or "inf" for a student without labeled data (V2)."""
    ratio = float(value)
    if not ratio > 0:
        raise argparse.ArgumentTypeError(f"expected a ratio > 0 or 'inf', got {value!r}")
    return ratio


def add_data_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        type=parse_dataset_spec,
        action="append",
        default=[],
        metavar=GRAMMAR,
        help="labeled RGB-D dataset, repeatable; sampled in proportion to WEIGHT (default 1). KIND is its format, "
        "one of depth_anything_hf.data.LABELED_FORMATS, detected for this project's folder format and Hub datasets",
    )
    group.add_argument(
        "--dataset_split",
        default="train",
        help='datasets split spec applied to every --dataset, e.g. "train[:-10%%]" to hold out the last tenth of '
        "the samples (sorted by id) for validation (default: all)",
    )
    group.add_argument(
        "--zero_depth_is_sky",
        action="store_true",
        help="zero depth in folder-format --dataset folders is sky (target disparity 0), not invalid, whatever their "
        "metadata.jsonl says (its per-row 'zero_depth_is_sky' otherwise decides); an error for other formats",
    )
    group.add_argument(
        "--unlabeled_dataset",
        action="append",
        default=[],
        metavar="NAME_OR_PATH",
        help="unlabeled images, repeatable: a folder, webdataset tar shards (a glob) or a datasets image dataset",
    )
    group.add_argument(
        "--pseudo_labels", action="append", default=[], metavar="DIR", help="output of pseudo_label.py, repeatable"
    )
    group.add_argument(
        "--teacher",
        help="teacher checkpoint directory or Hub id (online pseudo-labels), labelling at the resolution of its saved "
        "processor: the --resolution it was trained at",
    )
    group.add_argument(
        "--resolution",
        type=positive_int,
        default=518,
        help="training crop size in pixels, a multiple of 14 (short side resized to it, then a random square crop). "
        "The image processor saved with the final model resizes to it as well, so the --resolution a teacher is "
        "trained at is the resolution pseudo_label.py labels at",
    )
    group.add_argument(
        "--shuffle_buffer_size",
        type=positive_int,
        default=1,
        help="datasets shuffle buffer on top of the shard-order shuffle; 1 (the default) keeps resuming exact, "
        "larger buffers lose their content on resume (datasets' IterableDataset.state_dict)",
    )
    group.add_argument(
        "--prefetch_examples",
        type=int,
        default=0,
        help="read and decode each data stream in a reader process that stays this many examples ahead of the "
        "training loop, so that decoding overlaps with compute; 0 reads in the training process. Same examples, "
        "same order and same checkpoints either way",
    )
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model_config",
        help="an official variant (v1-small ... v2-giant, v2-base-metric-20) or the path of a config JSON (default: "
        "v2-small, or the architecture of the --init_from checkpoint)",
    )
    group.add_argument(
        "--encoder_init",
        help="DINOv2 to initialise the encoder from: a directory or Hub id of a transformers Dinov2Model, an "
        "official DINOv2 .pth, the encoder of a Depth Anything checkpoint (ours, transformers' or an official "
        "Depth Anything .pth), or 'none' for a random encoder (default: facebook/dinov2-small)",
    )
    group.add_argument(
        "--init_from",
        metavar="CHECKPOINT",
        help="start from a whole Depth Anything model (encoder and decoder): a directory or Hub id of ours or of "
        "transformers' depth_anything, or an official .pth (whose release, V1 or V2, --model_config must name)",
    )
    group.add_argument("--gradient_checkpointing", action="store_true", help="trade compute for memory")
    return parser


def add_optimization_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("optimisation")
    group.add_argument("--train_batch_size", type=positive_int, default=4, help="images per process and step")
    group.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    group.add_argument("--max_train_steps", type=positive_int, help="optimiser steps; overrides --num_train_epochs")
    group.add_argument("--num_train_epochs", type=positive_int, default=20, help="passes over the training data")
    group.add_argument("--encoder_learning_rate", type=float, default=5e-6)
    group.add_argument(
        "--decoder_learning_rate",
        type=float,
        help="learning rate of the DPT decoder (default: 10x --encoder_learning_rate)",
    )
    group.add_argument(
        "--lr_scheduler",
        default="linear",
        help="a transformers scheduler name (linear, cosine, constant_with_warmup, polynomial, ...)",
    )
    group.add_argument("--lr_warmup_steps", type=int, default=0)
    group.add_argument("--adam_beta1", type=float, default=0.9)
    group.add_argument("--adam_beta2", type=float, default=0.999)
    group.add_argument("--adam_weight_decay", type=float, default=0.01)
    group.add_argument("--adam_epsilon", type=float, default=1e-8)
    group.add_argument(
        "--max_grad_norm",
        type=float,
        default=1.0,
        help="gradient clipping; 0 disables it. The paper does not clip; benchmarks/table9.py measured no "
        "difference beyond noise, and 1.0 caps the 1/spread gradients of nearly flat maps (docs/benchmarks.md)",
    )
    group.add_argument(
        "--gradient_matching_weight",
        type=float,
        default=0.0,
        help="weight of the V2 multi-scale gradient-matching term added to each depth loss (V2: 2)",
    )
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("run")
    group.add_argument("--output_dir", required=True, help="checkpoints, logs and the final model")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--mixed_precision", choices=MIXED_PRECISION_CHOICES, help="default: accelerate's config")
    group.add_argument(
        "--checkpointing_steps", type=positive_int, default=500, help="save the training state every N steps"
    )
    group.add_argument("--checkpoints_total_limit", type=positive_int, help="keep at most this many checkpoints")
    group.add_argument(
        "--resume_from_checkpoint",
        help="'latest' or the path of a checkpoint-N folder: resumes weights, optimiser, scheduler, random "
        "states and the position in every data stream",
    )
    group.add_argument(
        "--report_to", default="tensorboard", help="tensorboard, wandb, all or none (accelerate trackers)"
    )
    group.add_argument("--logging_dir", default="logs", help="tracker folder, relative to --output_dir")
    group.add_argument("--logging_steps", type=positive_int, default=10, help="log the losses every N steps")
    group.add_argument(
        "--image_logging_steps", type=int, default=500, help="log example depth maps every N steps; 0 disables"
    )
    group.add_argument("--push_to_hub", action="store_true", help="upload the final model with its model card")
    group.add_argument("--hub_model_id", help="Hub repository for --push_to_hub (default: the output folder name)")
    return parser


def training_parser(description: str) -> argparse.ArgumentParser:
    """A parser with every shared group: data, model, optimisation and run flags."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for add_arguments in (add_data_arguments, add_model_arguments, add_optimization_arguments, add_run_arguments):
        add_arguments(parser)
    return parser


def check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks shared by the training scripts (a usage error naming the flag); fills the decoder learning rate
    and, without `--init_from`, the default `--model_config` and `--encoder_init`."""
    if args.init_from is not None and args.encoder_init is not None:
        parser.error("--init_from already gives the encoder: drop --encoder_init")
    if args.init_from is None:
        args.model_config = args.model_config or DEFAULT_MODEL_CONFIG
        args.encoder_init = args.encoder_init or DEFAULT_ENCODER_INIT
    if args.resolution % 14:
        parser.error(f"--resolution must be a multiple of the patch size 14, got {args.resolution}")
    if args.prefetch_examples < 0:
        parser.error(f"--prefetch_examples must be >= 0, got {args.prefetch_examples}")
    if args.decoder_learning_rate is None:
        args.decoder_learning_rate = 10 * args.encoder_learning_rate


def require_relative_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The teacher and the student learn affine-invariant disparity (eq. 1-2); a metric model (depth in metres)
    would be trained on the wrong target and saved with a wrong label, so it is a usage error."""
    from .encoder_init import initial_depth_estimation_type

    try:
        depth_estimation_type = initial_depth_estimation_type(args.model_config, args.init_from)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if depth_estimation_type != "relative":
        parser.error(
            f"{parser.prog} trains relative (affine-invariant disparity) models, and the model of "
            f"{'--model_config ' + str(args.model_config) if args.model_config else '--init_from ' + str(args.init_from)}"
            " is metric: fine-tune metric depth with training_scripts/train_metric.py"
        )


def tracker_config(args: argparse.Namespace) -> dict:
    """The run's arguments as scalars and strings, which every tracker (TensorBoard hparams too) accepts."""
    config = {}
    for name, value in vars(args).items():
        if value is None or name == RESUME_HISTORY:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        elif not isinstance(value, (bool, int, float, str)):
            value = str(value)
        config[name] = value
    return config


def dataset_names(args: argparse.Namespace) -> list[str]:
    """The datasets a run trains on, as given on the command line (for the model card)."""
    specs: list[DatasetSpec] = getattr(args, "dataset", [])
    return (
        [spec.path for spec in specs]
        + list(getattr(args, "unlabeled_dataset", []))
        + list(getattr(args, "pseudo_labels", []))
    )


def training_arguments(args: argparse.Namespace) -> dict:
    """What `training_args.json` records, in every checkpoint and next to the final model: the arguments
    (`tracker_config`), the datasets and `base_model` (`--init_from` or `--encoder_init`, which the model card
    reads: it decides the licence) and, after a resume with
    changed arguments, `resume_history`: every earlier value with the checkpoint it changed at."""
    record = tracker_config(args)
    record["datasets"] = dataset_names(args)
    base_model = getattr(args, "init_from", None) or args.encoder_init
    if base_model != NO_ENCODER_INIT:
        record["base_model"] = base_model
    if getattr(args, RESUME_HISTORY, None):
        record[RESUME_HISTORY] = getattr(args, RESUME_HISTORY)
    return record
