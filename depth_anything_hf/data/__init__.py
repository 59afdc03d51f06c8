"""Data: the labeled-sample schema and dataset-format decoders, image decoding, unlabeled image streams, the
pseudo-labeled schema and reader (`pseudo_labels`), mixing, the `--dataset` grammar (`specs`), loading a dataset
named by the user (`sources`), counted skips (`skipping`) and the training transforms (`transforms`)."""

from .formats import LABELED_FORMATS, load_labeled_dataset, middlebury_motorcycle_sample
from .images import decode_rgb, to_rgb
from .mixing import mix_labeled_datasets, shard_for_process, shuffle_and_shard
from .schema import DEPTH_KINDS, LABELED_FEATURES, make_labeled_sample, sample_to_tensors
from .skipping import skipped_sample_counts
from .unlabeled import IMAGE_EXTENSIONS, load_unlabeled_images, unlabeled_images

__all__ = [
    "DEPTH_KINDS",
    "IMAGE_EXTENSIONS",
    "LABELED_FEATURES",
    "LABELED_FORMATS",
    "decode_rgb",
    "load_labeled_dataset",
    "load_unlabeled_images",
    "make_labeled_sample",
    "middlebury_motorcycle_sample",
    "mix_labeled_datasets",
    "sample_to_tensors",
    "shard_for_process",
    "shuffle_and_shard",
    "skipped_sample_counts",
    "to_rgb",
    "unlabeled_images",
]
