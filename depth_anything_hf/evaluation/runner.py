"""`depth-anything eval`: run a checkpoint over datasets and write results.json.

The model sees each image through the official pre-processing (docs/method.md section 3: lower-bound
resize to 518, multiples of 14, bicubic, ImageNet normalisation), whatever processor the
checkpoint ships, so that results are comparable across checkpoints. Images are batched when
consecutive images share a size; the prediction (optionally averaged with the flipped image's,
flipped back) is resized bilinearly to the ground-truth size by the processor's post-processing
and scored per image with `compute_metrics` under each requested protocol.
"""

import datetime
import json
import subprocess
from pathlib import Path

import torch
from accelerate import PartialState
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.specs import DatasetSpec, parse_dataset_spec
from ..mixed_precision import autocast_dtype
from .metrics import MetricsAverager, compute_metrics
from .presets import PRESETS, DatasetPreset, get_preset

PREDICTION_TYPE_OF_ESTIMATION_TYPE = {"relative": "disparity", "metric": "depth"}
DEFAULT_PROTOCOLS = {"relative": ("disparity",), "metric": ("metric",)}
MIDDLEBURY_SKIMAGE = "skimage"
RESULTS_FILE = "results.json"


class EvaluationError(RuntimeError):
    """At least one dataset could not be evaluated; `results` holds what was computed (also in results.json)."""

    def __init__(self, message: str, results: dict):
        super().__init__(message)
        self.results = results


def code_version() -> str:
    """The package version, plus the git commit when the package runs from a git checkout."""
    from .. import __version__

    package_dir = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+git.{commit}"


def evaluation_dataset(spec: DatasetSpec | str) -> tuple[DatasetPreset, str]:
    """A `--dataset` value (`depth_anything_hf.data.specs`) -> (preset, path). Evaluation needs the preset as
    KIND and takes no weight: each dataset is scored alone."""
    if isinstance(spec, str):
        spec = parse_dataset_spec(spec)
    if spec.kind is None:
        raise ValueError(f"--dataset expects PRESET=PATH (presets: {', '.join(sorted(PRESETS))}), got {spec.path!r}")
    if spec.weight != 1.0:
        raise ValueError(f"--dataset {spec}: a weight only mixes training data; evaluation scores each dataset alone")
    return get_preset(spec.kind), spec.path


def load_evaluation_samples(preset: DatasetPreset, path: str, split: str = "train"):
    """The labeled samples of one dataset: a `datasets.IterableDataset`, or a list for Middlebury 'skimage'."""
    from ..data import load_labeled_dataset, middlebury_motorcycle_sample

    if preset.name == "middlebury" and path == MIDDLEBURY_SKIMAGE:
        return [middlebury_motorcycle_sample()]
    return load_labeled_dataset(path, format=preset.data_format, split=split, streaming=True)


def _tensor_sample(sample: dict) -> dict:
    from ..data import sample_to_tensors

    tensors = sample_to_tensors(sample)
    if tensors["depth_kind"] != "depth":
        raise ValueError(
            f"sample {tensors['id']!r} of {tensors['dataset']!r} has {tensors['depth_kind']} ground truth; "
            "evaluation needs depth in metres"
        )
    return tensors


def size_runs(samples, batch_size: int):
    """Consecutive samples grouped into lists of at most `batch_size` sharing one image size."""
    batch = []
    for sample in samples:
        if batch and (len(batch) == batch_size or sample["image"].shape != batch[0]["image"].shape):
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch


@torch.inference_mode()
def predict(model, pixel_values: torch.Tensor, flip_average: bool, dtype: torch.dtype | None) -> torch.Tensor:
    """`predicted_depth` [B, H, W] in float32, averaged with the horizontally flipped input's if asked; the
    forward runs under autocast to `dtype` (None: no autocast)."""
    device_type = pixel_values.device.type
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
        prediction = model(pixel_values).predicted_depth.float()
        if flip_average:
            flipped_prediction = model(pixel_values.flip(-1)).predicted_depth.float().flip(-1)
            prediction = (prediction + flipped_prediction) / 2
    return prediction


def evaluation_row(
    preset: DatasetPreset,
    path: str,
    split: str,
    protocol: str,
    averager: MetricsAverager,
    depth_cap: float,
    min_depth: float | None = None,
) -> dict:
    """One entry of results.json's `evaluations` (which model cards read), with the depth range used."""
    return {
        "dataset": preset.name,
        "title": preset.title,
        "path": path,
        "split": split,
        "protocol": protocol,
        "settings": {**preset.to_dict(), "min_depth": min_depth or preset.min_depth, "max_depth": depth_cap},
        **averager.compute(),
    }


def results_document(
    model_name_or_path: str,
    model_config,
    evaluations: list[dict],
    input_size: int,
    flip_average: bool,
    mixed_precision: str,
) -> dict:
    """The content of results.json: what was evaluated, how, with which code, and the `evaluations` rows."""
    estimation_type = model_config.depth_estimation_type
    return {
        "model": model_name_or_path,
        "depth_estimation_type": estimation_type,
        "prediction_type": PREDICTION_TYPE_OF_ESTIMATION_TYPE[estimation_type],
        "code_version": code_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "flip_average": flip_average,
        "input_size": input_size,
        "mixed_precision": mixed_precision,
        "evaluations": evaluations,
    }


def write_results(results: dict, output_dir: str | Path) -> Path:
    """Write results.json to `output_dir` (created if missing) and return its path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RESULTS_FILE
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path


def evaluation_depth_cap(preset: DatasetPreset, model_config) -> float:
    """The ground-truth depth cap: the preset's, and for a metric model at most its `max_depth`, since its
    Sigmoid x max_depth head cannot predict deeper (as the official metric evaluation masks depth > max_depth)."""
    if model_config.depth_estimation_type == "metric":
        return min(preset.max_depth, model_config.max_depth)
    return preset.max_depth


def score_samples(
    model,
    processor,
    samples,
    protocols,
    *,
    prediction_type: str,
    min_depth: float,
    depth_cap: float,
    crop=None,
    batch_size: int = 4,
    flip_average: bool = False,
    dtype: torch.dtype | None = None,
    num_workers: int = 0,
    description: str = "evaluation",
    total: int | None = None,
    disable_progress: bool = False,
) -> dict[str, MetricsAverager]:
    """Score `model` (anything whose output has `predicted_depth`) on labeled-schema `samples` (an iterable
    dataset or a list): `processor` pre-processes each run of same-size images and resizes the predictions back
    to the ground truth's size, and every image is scored under each protocol; the forward runs under autocast
    to `dtype` (None: no autocast). Returns one averager per protocol (this process's images only)."""
    device = next(model.parameters()).device
    averagers = {protocol: MetricsAverager() for protocol in protocols}
    loader = DataLoader(samples, batch_size=None, collate_fn=_tensor_sample, num_workers=num_workers)
    with tqdm(desc=description, unit="image", total=total, disable=disable_progress) as progress:
        for batch in size_runs(loader, batch_size):
            pixel_values = processor(
                images=[sample["image"] for sample in batch], return_tensors="pt", device=device
            )["pixel_values"]
            predictions = processor.post_process_depth_estimation(
                {"predicted_depth": predict(model, pixel_values, flip_average, dtype)},
                target_sizes=[tuple(sample["depth"].shape) for sample in batch],
            )
            for sample, prediction in zip(batch, predictions):
                gt_depth = sample["depth"].to(device)
                valid_mask = sample["valid_mask"].to(device)
                for protocol, averager in averagers.items():
                    try:
                        image_metrics = compute_metrics(
                            prediction["predicted_depth"], gt_depth, valid_mask,
                            prediction_type=prediction_type, protocol=protocol,
                            depth_cap=depth_cap, min_depth=min_depth, crop=crop,
                            check_orientation=False,  # the type comes from the model's config
                        )
                    except ValueError as error:
                        raise ValueError(f"sample {sample['id']!r}: {error}") from error
                    averager.update(image_metrics)
            progress.update(len(batch))
    return averagers


def evaluate_model(
    model_name_or_path: str,
    datasets: list[tuple[DatasetPreset, str]],
    *,
    protocols: list[str] | None = None,
    batch_size: int = 4,
    flip_average: bool = False,
    split: str = "train",
    max_images: int | None = None,
    device: str | torch.device | None = None,
    mixed_precision: str = "no",
    num_workers: int = 0,
    input_size: int = 518,
    output_dir: str | Path | None = None,
) -> dict:
    """Evaluate a checkpoint on datasets; returns the results.json content (and writes it to `output_dir`).

    Metric models are scored without alignment (protocol "metric" by default) with the ground truth capped at
    the smaller of the preset's depth range and the model's `max_depth` (`evaluation_depth_cap`).

    Args:
        model_name_or_path: local folder or Hub id (our layout or transformers' Depth Anything layout).
        datasets: (preset, path) pairs; path "skimage" with the "middlebury" preset is scikit-image's frame.
        protocols: protocols to score under; default "disparity" for relative models, "metric" for metric ones.
        batch_size: images per forward pass (consecutive images of one size are batched).
        flip_average: average the prediction with that of the horizontally flipped image.
        split: `datasets` split spec, e.g. "train[-10%:]" for the held-out last tenth of a folder.
        max_images: evaluate at most this many images per dataset.
        device: default: accelerate's device (the GPU when there is one).
        mixed_precision: "no", or "bf16"/"fp16" autocast for the forward pass (metrics stay float32).
        num_workers: DataLoader workers decoding the samples.
        input_size: the official lower-bound resize's target (518, docs/method.md section 3); a model trained at
            another resolution may be scored at that one (a different test size costs accuracy).
        output_dir: where to write results.json (not written when None).
    """
    from ..image_processing_depth_anything_hf import DepthAnythingHFImageProcessor
    from ..modeling_depth_anything_hf import DepthAnythingHFForDepthEstimation

    forward_dtype = autocast_dtype(mixed_precision)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if input_size < 14 or input_size % 14:
        raise ValueError(f"input_size must be a positive multiple of the patch size 14, got {input_size}")
    if not datasets:
        raise ValueError("datasets is empty: pass at least one (preset, path)")
    device = torch.device(device) if device is not None else PartialState().device
    model = DepthAnythingHFForDepthEstimation.from_pretrained(model_name_or_path).to(device).eval()
    estimation_type = model.config.depth_estimation_type
    prediction_type = PREDICTION_TYPE_OF_ESTIMATION_TYPE[estimation_type]
    protocols = list(protocols or DEFAULT_PROTOCOLS[estimation_type])
    if prediction_type == "disparity" and {"metric", "median"} & set(protocols):
        raise ValueError(f"{model_name_or_path} is a relative (disparity) model: use protocols 'disparity' or 'midas'")
    processor = DepthAnythingHFImageProcessor.from_model_config(model.config, size=input_size)

    evaluations, failures = [], []
    for preset, path in datasets:
        try:
            evaluations += _evaluate_dataset(
                model, processor, preset, path, protocols, prediction_type, batch_size, flip_average, split,
                max_images, forward_dtype, num_workers,
            )
        except Exception as error:  # noqa: BLE001 - reported with the dataset's name once the others are done
            failures.append({"dataset": preset.name, "path": path, "error": f"{type(error).__name__}: {error}"})

    results = results_document(
        model_name_or_path, model.config, evaluations, processor.size["height"], flip_average, mixed_precision
    )
    if failures:
        results["failures"] = failures
    if output_dir is not None:
        write_results(results, output_dir)
    if failures:
        written = f"; the results of the other datasets are in {Path(output_dir) / 'results.json'}" if output_dir else ""
        raise EvaluationError(
            "Evaluation failed on "
            + "; ".join(f"dataset {entry['dataset']!r} ({entry['path']}): {entry['error']}" for entry in failures)
            + written,
            results,
        )
    return results


def _evaluate_dataset(
    model, processor, preset: DatasetPreset, path: str, protocols, prediction_type: str, batch_size: int,
    flip_average: bool, split: str, max_images: int | None, forward_dtype: torch.dtype | None, num_workers: int,
) -> list[dict]:
    """One results.json evaluation per protocol for one dataset; see `evaluate_model`."""
    samples = load_evaluation_samples(preset, path, split)
    if max_images is not None:
        samples = samples[:max_images] if isinstance(samples, list) else samples.take(max_images)
    expected = _expected_sample_count(samples, preset, max_images)
    depth_cap = evaluation_depth_cap(preset, model.config)
    averagers = score_samples(
        model, processor, samples, protocols,
        prediction_type=prediction_type, min_depth=preset.min_depth, depth_cap=depth_cap, crop=preset.crop,
        batch_size=batch_size, flip_average=flip_average, dtype=forward_dtype, num_workers=num_workers,
        description=f"{preset.name} ({path})", total=expected or max_images,
    )  # fmt: skip
    rows = []
    for protocol, averager in averagers.items():
        # Samples whose files failed to decode were skipped by the loader with a warning naming each.
        if expected is not None:
            averager.num_undecodable = expected - averager.num_images - averager.num_skipped
        rows.append(evaluation_row(preset, path, split, protocol, averager, depth_cap))
    return rows


def _expected_sample_count(samples, preset: DatasetPreset, max_images: int | None) -> int | None:
    """How many samples the loader should yield: the list's length, or for the file formats one per record
    (`load_labeled_dataset` gives each record its own shard); None for datasets in the labeled schema, which
    are read as they are."""
    if isinstance(samples, list):
        return len(samples)
    if preset.data_format == "datasets":
        return None
    return samples.n_shards if max_images is None else min(samples.n_shards, max_images)
