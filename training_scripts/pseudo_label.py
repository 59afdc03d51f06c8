#!/usr/bin/env python
"""The Depth Anything data engine (docs/method.md section 4): label unlabeled images with the teacher's disparity.

Streams every image of the `--unlabeled_dataset` sources through the `--teacher` on the CLEAN image and writes
a `datasets` parquet dataset to `--output_dir` (`data/*.parquet` + README.md): the original image bytes, the
float16 disparity at the teacher's input resolution, the original size, the image id and the teacher's id.

The teacher's input resolution is that of the image processor saved with it, i.e. the `--resolution` the
teacher was trained at (`train_teacher.py`): aspect kept, each side at least it and a multiple of 14.

    python training_scripts/pseudo_label.py --teacher runs/teacher --unlabeled_dataset photos/ \
        --output_dir runs/pseudo_labels
    accelerate launch --num_processes 8 training_scripts/pseudo_label.py ...   # each process labels its part
    torchrun --standalone --nproc_per_node 2 training_scripts/pseudo_label.py ...   # without a GPU: CPUs, gloo

The images are labelled in a `--seed`ed order (a permutation of the files of folder sources, of the shards of
tar and `datasets` sources), so that the rows of a shard, which the student reads in order, are not neighbouring
(often same-scene) files. Images that cannot be decoded, or that the teacher's processor refuses (more elongated
than its `max_aspect_ratio`), are skipped with a warning and counted; the total is logged and written to the card.

Killed at any moment, the same command continues where it stopped: each process writes shards of
`--shard_size` images atomically under fixed names and records its position after each shard. A resume refuses
other arguments, and sources whose listing changed in between (a file added, removed or resized), which would
shift the position and duplicate or miss images.
"""

import argparse
import itertools
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.data import decode_rgb
from depth_anything_hf.data.pseudo_labels import DATA_DIRECTORY
from depth_anything_hf.data.skipping import skipped_sample_ids, skipped_samples_summary
from depth_anything_hf.data.unlabeled import unlabeled_images, unlabeled_sources_fingerprint
from depth_anything_hf.data_engine.labeling import label_images, teacher_sha256
from depth_anything_hf.data_engine.publishing import push_pseudo_labels_to_hub, write_dataset_card
from depth_anything_hf.data_engine.shards import (
    ProgressRecord,
    ShardWriter,
    load_skipped_images,
    pseudo_label_table,
    save_skipped_images,
    shard_name,
)
from depth_anything_hf.image_processing_depth_anything_hf import DepthAnythingHFImageProcessor
from depth_anything_hf.mixed_precision import MIXED_PRECISION_CHOICES, autocast_dtype
from depth_anything_hf.training.arguments import positive_int
from depth_anything_hf.training.runtime import configure_logging

logger = get_logger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--unlabeled_dataset",
        action="append",
        required=True,
        metavar="NAME_OR_PATH",
        help="unlabeled images, repeatable: a folder, webdataset tar shards (a glob) or a datasets image dataset",
    )
    parser.add_argument(
        "--teacher",
        required=True,
        help="teacher checkpoint directory or Hub id (model + processor); its saved processor, at the --resolution "
        "the teacher was trained at, sets the resolution of the pseudo-labels",
    )
    parser.add_argument("--output_dir", required=True, help="where the pseudo-labeled dataset is written")
    parser.add_argument("--batch_size", type=positive_int, default=16, help="images per teacher forward pass")
    parser.add_argument("--shard_size", type=positive_int, default=1000, help="images per parquet shard")
    parser.add_argument(
        "--mixed_precision",
        choices=MIXED_PRECISION_CHOICES,
        help="autocast dtype of the teacher (default: accelerate's config, else no)",
    )
    parser.add_argument("--split", default="train", help="split of datasets-library sources")
    parser.add_argument("--image_column", default="image", help="image column of datasets-library sources")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the order in which images are labelled (and third-party code)"
    )
    parser.add_argument("--push_to_hub", action="store_true", help="upload the finished dataset to the Hub")
    parser.add_argument("--hub_model_id", help="Hub dataset repository for --push_to_hub (default: the output folder name)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    # Without an accelerator, CPU mode: under torchrun / `accelerate launch` several processes then use gloo.
    accelerator = Accelerator(cpu=not torch.accelerator.is_available(), mixed_precision=args.mixed_precision)
    configure_logging(accelerator)
    set_seed(args.seed)
    rank, world_size = accelerator.process_index, accelerator.num_processes
    output_dir = Path(args.output_dir)
    (output_dir / DATA_DIRECTORY).mkdir(parents=True, exist_ok=True)

    teacher = DepthAnythingHFForDepthEstimation.from_pretrained(args.teacher).to(accelerator.device).eval()
    image_processor = DepthAnythingHFImageProcessor.from_pretrained(args.teacher)
    teacher_autocast_dtype = autocast_dtype(accelerator.mixed_precision)
    run = {
        "sources": args.unlabeled_dataset,
        "source_listing_sha256": unlabeled_sources_fingerprint(args.unlabeled_dataset),
        "split": args.split,
        "image_column": args.image_column,
        "teacher": args.teacher,
        "teacher_sha256": teacher_sha256(teacher),
        "batch_size": args.batch_size,
        "shard_size": args.shard_size,
        "mixed_precision": accelerator.mixed_precision,
        "seed": args.seed,
    }
    progress = ProgressRecord.resume_or_start(output_dir, rank, world_size, run)
    stream = unlabeled_images(
        args.unlabeled_dataset, args.seed, rank, world_size, args.split, args.image_column, image_processor
    )
    if progress.stream_state is not None:
        stream.load_state_dict(progress.stream_state)
        logger.info(f"Resuming after {progress.images_written} images ({progress.shards_written} shards) per process")
    logger.info(f"Labelling with {args.teacher} (sha256 {run['teacher_sha256'][:12]}) on {world_size} process(es)")

    progress_bar = tqdm(
        initial=progress.images_written,
        unit="img",
        desc=f"pseudo-labels (process {rank} of {world_size})",
        disable=not accelerator.is_local_main_process,
    )
    examples = iter(stream)
    recorded_skips: dict[str, set[str]] = {}  # the skips this process has already saved with earlier shards
    while not progress.finished:
        shard_examples = itertools.islice(examples, args.shard_size)
        # Batches never cross shards, so a resumed run forms the same batches as an uninterrupted one.
        batches = iter(lambda: list(itertools.islice(shard_examples, args.batch_size)), [])
        first_batch = next(batches, None)
        if first_batch is None:
            progress.finished = True
            progress.save(output_dir)
            break
        shard = ShardWriter(output_dir / DATA_DIRECTORY / shard_name(rank, world_size, progress.shards_written))
        for batch in itertools.chain([first_batch], batches):
            batch = [{**example, "image": decode_rgb(example["image_bytes"])} for example in batch]
            images = [example["image"] for example in batch]
            disparities = label_images(teacher, image_processor, images, teacher_autocast_dtype)
            shard.write(pseudo_label_table(batch, disparities, args.teacher, run["teacher_sha256"]))
            progress_bar.update(len(batch))
        new_skips = {
            source: ids - recorded_skips.get(source, set()) for source, ids in skipped_sample_ids().items()
        }
        if any(new_skips.values()):
            save_skipped_images(output_dir, rank, world_size, progress.shards_written, new_skips)
            for source, ids in new_skips.items():
                recorded_skips.setdefault(source, set()).update(ids)
        shard.close()
        progress.shards_written += 1
        progress.images_written += shard.num_rows
        progress.stream_state = stream.state_dict()
        progress.finished = shard.num_rows < args.shard_size
        progress.save(output_dir)
    progress_bar.close()

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        num_images = sum(
            ProgressRecord.resume_or_start(output_dir, process, world_size, run).images_written
            for process in range(world_size)
        )
        skipped = load_skipped_images(output_dir)
        write_dataset_card(output_dir, run, num_images, skipped_samples_summary(skipped))
        logger.info(f"Wrote {num_images} pseudo-labeled images to {output_dir}. {skipped_samples_summary(skipped)}")
        if args.push_to_hub:
            commit = push_pseudo_labels_to_hub(output_dir, args.hub_model_id or output_dir.name)
            logger.info(f"Pushed {output_dir} to {commit.commit_url}")
    accelerator.end_training()


if __name__ == "__main__":
    main()
