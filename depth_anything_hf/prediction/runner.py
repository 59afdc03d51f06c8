"""Run a checkpoint over images and videos and write the chosen outputs (`depth-anything predict`).

Each image goes through the checkpoint's own image processor, the model and `post_process_depth_estimation`
back to the image's size, as `pipeline("depth-estimation")` does, so `.npy` files hold exactly the pipeline's
`predicted_depth`. Consecutive images of one size share a batch. A file that cannot be decoded is skipped,
counted and named in the summary.

Videos: every frame is predicted on its own (this is not Video Depth Anything: there is no temporal model, so
the map can still flicker where the model's per-frame predictions do, and a relative model's unknown scale and
shift may drift between frames). What is done against flicker is the colour mapping: the official
`run_video.py` normalises each frame by its own min/max, which makes the colours pump; here one min/max over the
whole clip maps every frame. The raw frames go to an `.npz` (`frames` [N, H, W] float32, `fps`, `quantity`).
"""

import collections
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from tqdm.auto import tqdm
from transformers import AutoImageProcessor, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import logging

from ..configuration_depth_anything_hf import DepthAnythingHFConfig
from ..data.skipping import UNDECODABLE_ERRORS
from ..evaluation.runner import predict, size_runs
from ..image_processing_depth_anything_hf import (
    DepthAnythingHFImageProcessor,
    _to_unit_float,
    composite_on_white,
    load_image_tensor,
)
from ..mixed_precision import autocast_dtype
from .inputs import is_video
from .outputs import (
    OUTPUT_KINDS,
    SIDE_BY_SIDE_MARGIN,
    colorize,
    grayscale,
    quantity_of,
    save_png,
    save_png16,
    side_by_side,
    write_ply,
)
from .pointcloud import (
    Intrinsics,
    disparity_to_depth,
    fit_disparity_to_points,
    intrinsics_from_fov,
    read_alignment_points,
    unproject,
)

logger = logging.get_logger(__name__)

VIDEO_VIEW_KINDS = ("colormap", "grayscale", "side_by_side")
_VIDEO_UNSUPPORTED_KINDS = ("png16", "ply")


class PointCloudSettings:
    """How depth maps become points: intrinsics (given, or from a field of view) and, for relative models, the
    disparity-to-depth conversion (a given scale/shift, or a per-image fit to sparse metric points)."""

    def __init__(
        self,
        depth_estimation_type: str,
        fx=None, fy=None, cx=None, cy=None,
        horizontal_fov: float | None = None,
        disparity_scale: float | None = None,
        disparity_shift: float | None = None,
        align_points: str | os.PathLike | None = None,
    ):
        given = [value is not None for value in (fx, fy, cx, cy)]
        if any(given) and not all(given):
            raise ValueError("point clouds need all four intrinsics --fx --fy --cx --cy (pixels), or --hfov")
        if all(given) == (horizontal_fov is not None):
            raise ValueError("point clouds need the camera: pass either --fx --fy --cx --cy or --hfov (degrees)")
        self.intrinsics = Intrinsics(fx, fy, cx, cy) if all(given) else None
        self.horizontal_fov = horizontal_fov
        conversion = (disparity_scale is not None, disparity_shift is not None)
        if conversion[0] != conversion[1]:
            raise ValueError("--disparity_scale and --disparity_shift go together (1 / depth = scale * disparity + shift)")
        has_conversion = conversion[0] or align_points is not None
        if conversion[0] and align_points is not None:
            raise ValueError("pass either --disparity_scale/--disparity_shift or --align_points, not both")
        if depth_estimation_type == "metric" and has_conversion:
            raise ValueError("this is a metric model (depth in metres): --disparity_scale/--disparity_shift/"
                             "--align_points apply to relative models only")
        if depth_estimation_type == "relative" and not has_conversion:
            raise ValueError(
                "a relative model predicts affine-invariant DISPARITY (unknown scale and shift), not metres: a point "
                "cloud needs a conversion to depth. Pass --disparity_scale S --disparity_shift T "
                "(1 / depth = S * disparity + T) or --align_points POINTS.csv (image,x,y,depth rows in metres to fit "
                "S and T to), or use a metric model"
            )
        if conversion[0] and not disparity_scale > 0:
            raise ValueError(f"--disparity_scale must be > 0 (larger disparity = nearer), got {disparity_scale}")
        self.scale_and_shift = (disparity_scale, disparity_shift) if conversion[0] else None
        self.align_points = read_alignment_points(align_points) if align_points is not None else None

    def depth(self, prediction: np.ndarray, image_name: str) -> tuple[np.ndarray, str]:
        """Depth in metres of a prediction, and how it was obtained (for the PLY header)."""
        if self.scale_and_shift is None and self.align_points is None:
            return prediction, "metric model output"
        if self.scale_and_shift is not None:
            scale, shift = self.scale_and_shift
            how = "given"
        else:
            scale, shift = fit_disparity_to_points(prediction, self.align_points[image_name])
            how = f"fitted to {len(self.align_points[image_name])} points"
            if not scale > 0:
                raise ValueError(
                    f"{image_name}: the fit to the --align_points gives scale {scale:.4g} <= 0: the points' depths do "
                    "not decrease where the predicted disparity grows"
                )
        return disparity_to_depth(prediction, scale, shift), f"1/depth = {scale:.6g} * disparity + {shift:.6g} ({how})"

    def camera(self, width: int, height: int) -> Intrinsics:
        return self.intrinsics or intrinsics_from_fov(width, height, self.horizontal_fov)


def check_model_type(model: str) -> None:
    """Refuse a checkpoint whose config names a model type transformers does not know, before loading would read
    its `auto_map` and ask to run the code saved with it (which cannot help: it needs a known type too)."""
    model_type = PretrainedConfig.get_config_dict(model)[0].get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"{model}: config.json has model_type {model_type!r}, which neither transformers nor depth_anything_hf "
            f"defines (this package's is {DepthAnythingHFConfig.model_type!r}); correct config.json, or install "
            "the package that defines it"
        )


def _output_stems(files: list[Path], output_dir: Path) -> list[Path]:
    """Per input, its output path without suffix: the input's path relative to the inputs' common folder,
    under `output_dir` (so that equal file names in different folders do not overwrite each other)."""
    parents = [os.path.abspath(path.parent) for path in files]
    root = os.path.commonpath(parents) if parents else ""
    return [output_dir / os.path.relpath(parent, root) / path.stem for parent, path in zip(parents, files)]


def write_image_outputs(stem: Path, image: np.ndarray, prediction: np.ndarray, outputs, quantity: dict,
                        metadata: dict, point_clouds: PointCloudSettings | None, image_name: str) -> dict[str, str]:
    """Write `outputs` of one image (uint8 [H, W, 3]) and its prediction [H, W] as `stem` + suffixes; returns
    {output kind: path}."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    tag, name = quantity["file_tag"], quantity["quantity"]
    paths = {
        "colormap": f"{stem}_{tag}.png",
        "grayscale": f"{stem}_{tag}_gray.png",
        "side_by_side": f"{stem}_{tag}_side_by_side.png",
        "png16": f"{stem}_{tag}_16bit.png",
        "npy": f"{stem}_{tag}.npy",
        "ply": f"{stem}_points.ply",
    }
    if "colormap" in outputs:
        save_png(paths["colormap"], colorize(prediction, name), metadata)
    if "grayscale" in outputs:
        save_png(paths["grayscale"], grayscale(prediction, name), metadata)
    if "side_by_side" in outputs:
        save_png(paths["side_by_side"], side_by_side(image, colorize(prediction, name)), metadata)
    if "png16" in outputs:
        save_png16(paths["png16"], prediction, metadata)
    if "npy" in outputs:
        np.save(paths["npy"], prediction)
    if "ply" in outputs:
        depth, conversion = point_clouds.depth(prediction, image_name)
        camera = point_clouds.camera(prediction.shape[1], prediction.shape[0])
        points = unproject(depth, camera).reshape(-1, 3)
        valid = np.isfinite(points).all(axis=1) & (points[:, 2] > 0)
        if not valid.any():
            raise ValueError(f"{image_name}: no pixel has a positive finite depth under {conversion}")
        write_ply(
            paths["ply"], points[valid], image.reshape(-1, 3)[valid],
            comments=[
                f"source {metadata['source']}",
                f"model {metadata['model']}",
                "units metre, OpenCV camera frame (x right, y down, z forward)",
                f"depth {conversion}",
                f"intrinsics fx={camera.fx:.6g} fy={camera.fy:.6g} cx={camera.cx:.6g} cy={camera.cy:.6g}",
                f"dropped {int((~valid).sum())} pixels without a positive finite depth",
            ],
        )
    return {kind: path for kind, path in paths.items() if kind in outputs}


def display_rgb(pixels: torch.Tensor, name: str) -> np.ndarray:
    """uint8 [H, W, 3] of an image as the processor reads it (`load_image_tensor`: [C, H, W], uint8, uint16 or
    float): full scale to [0, 1], transparency composited on white, gray replicated; for views and point colours."""
    image = _to_unit_float(pixels, name)
    if image.shape[0] == 4:
        image = composite_on_white(image)
    image = image.expand(3, -1, -1)
    return (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _decoded_images(files: list[Path], stems: list[Path], processor, skipped: list[dict]):
    """Per file the processor can take, {"pixels": as `pipeline()` reads it (full bit depth), "image": uint8 RGB
    view, "path", "stem"}; the others are skipped, counted and named."""
    for path, stem in zip(files, stems):
        try:
            pixels = load_image_tensor(str(path), str(path))
            image = display_rgb(pixels, str(path))
            if isinstance(processor, DepthAnythingHFImageProcessor):
                processor.processed_size(tuple(pixels.shape[-2:]))  # raises for an image it refuses
        except (*UNDECODABLE_ERRORS, ValueError, TypeError) as error:
            logger.warning(f"Skipped {path}: {type(error).__name__}: {error}")
            skipped.append({"path": str(path), "reason": f"{type(error).__name__}: {error}"})
            continue
        yield {"image": image, "pixels": pixels, "path": path, "stem": stem}


def predict_images(model, processor, images: list, device, dtype: torch.dtype | None) -> list[np.ndarray]:
    """float32 [H, W] predictions at the images' own sizes (the pipeline's `predicted_depth`) of images as the
    processor takes them ([C, H, W] tensors or [H, W, C] arrays); the forward autocasts to `dtype` (None: off)."""
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
    predicted_depth = predict(model, pixel_values, flip_average=False, dtype=dtype)
    sizes = [tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) else image.shape[:2] for image in images]
    results = processor.post_process_depth_estimation({"predicted_depth": predicted_depth}, target_sizes=sizes)
    return [result["predicted_depth"].float().cpu().numpy() for result in results]


def _video_writer(path: str, fps, width: int, height: int):
    """An H.264 mp4 stream (yuv420p needs even sides: odd ones get their last row/column repeated)."""
    import av

    container = av.open(path, mode="w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = width + width % 2, height + height % 2
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "18"}
    return container, stream


def _write_video_frame(container, stream, rgb: np.ndarray) -> None:
    import av

    rgb = np.pad(rgb, ((0, stream.height - rgb.shape[0]), (0, stream.width - rgb.shape[1]), (0, 0)), mode="edge")
    for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
        container.mux(packet)


def _close_video(container, stream) -> None:
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def _video_frames(path: Path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def _predict_video(path: Path, stem: Path, model, processor, device, dtype, batch_size: int, outputs,
                   quantity: dict, metadata: dict) -> int:
    """Predict every frame of a video, then write the views with one clip-wide min/max and the raw `.npz`.
    Returns the number of frames."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps, expected_frames = stream.average_rate or stream.guessed_rate, stream.frames or None
    stem.parent.mkdir(parents=True, exist_ok=True)
    tag, name = quantity["file_tag"], quantity["quantity"]
    frame_shape, count, low, high = None, 0, np.inf, -np.inf
    # The raw predictions are kept on disk, not in memory: a minute of 1080p is 15 GB of float32.
    with tempfile.TemporaryFile(dir=stem.parent) as raw, tqdm(
        desc=path.name, unit="frame", total=expected_frames
    ) as progress:
        for batch in size_runs(({"image": frame} for frame in _video_frames(path)), batch_size):
            predictions = predict_images(model, processor, [sample["image"] for sample in batch], device, dtype)
            for prediction in predictions:
                if frame_shape is not None and prediction.shape != frame_shape:
                    raise ValueError(f"{path}: frame {count} is {prediction.shape}, earlier frames {frame_shape}")
                frame_shape = prediction.shape
                low, high = min(low, float(prediction.min())), max(high, float(prediction.max()))
                raw.write(np.ascontiguousarray(prediction, dtype=np.float32).tobytes())
                count += 1
            progress.update(len(batch))
        if count == 0:
            raise ValueError(f"{path} holds no decodable video frames")
        raw.flush()
        frames = np.memmap(raw, dtype=np.float32, mode="r", shape=(count, *frame_shape))
        if "npy" in outputs:
            np.savez(f"{stem}_{tag}.npz", frames=frames, fps=float(fps), clip_min=low, clip_max=high, **metadata)
        views = [kind for kind in VIDEO_VIEW_KINDS if kind in outputs]
        if views:
            height, width = frame_shape
            suffixes = {"colormap": "", "grayscale": "_gray", "side_by_side": "_side_by_side"}
            widths = {kind: width * 2 + SIDE_BY_SIDE_MARGIN if kind == "side_by_side" else width for kind in views}
            writers = {kind: _video_writer(f"{stem}_{tag}{suffixes[kind]}.mp4", fps, widths[kind], height)
                       for kind in views}
            for image, prediction in zip(_video_frames(path), frames):
                coloured = colorize(prediction, name, (low, high))
                for kind, (container, stream) in writers.items():
                    if kind == "grayscale":
                        view = grayscale(prediction, name, (low, high))
                    elif kind == "side_by_side":
                        view = side_by_side(image, coloured)
                    else:
                        view = coloured
                    _write_video_frame(container, stream, view)
            for container, stream in writers.values():
                _close_video(container, stream)
    return count


def predict_inputs(
    model_name_or_path: str,
    files: list[Path],
    output_dir: str | os.PathLike,
    outputs=("colormap",),
    batch_size: int = 4,
    device: str | torch.device | None = None,
    mixed_precision: str = "no",
    point_cloud_kwargs: dict | None = None,
) -> dict:
    """Predict depth for image and video `files` and write `outputs` (of `OUTPUT_KINDS`) under `output_dir`.

    Args:
        model_name_or_path: checkpoint folder or Hub id (ours or transformers' depth_anything).
        files: input files (`expand_inputs` of the command line's inputs).
        outputs: which outputs to write; `png16` and `ply` are for images only.
        batch_size: images per forward pass (consecutive images of one size are batched).
        device: default: accelerate's device (the GPU when there is one).
        mixed_precision: "no", or "bf16"/"fp16" autocast for the forward pass (outputs stay float32).
        point_cloud_kwargs: with `ply`, the keyword arguments of `PointCloudSettings` but the model type.

    Returns:
        `{"images": written, "videos": written, "frames": frames written, "skipped": [{"path", "reason"}]}`.
    """
    from ..modeling_depth_anything_hf import DepthAnythingHFForDepthEstimation

    outputs = tuple(outputs)
    unknown = sorted(set(outputs) - set(OUTPUT_KINDS))
    if not outputs or unknown:
        raise ValueError(f"outputs must be some of {OUTPUT_KINDS}, got {list(outputs)}")
    forward_dtype = autocast_dtype(mixed_precision)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    files = [Path(path) for path in files]
    if not files:
        raise ValueError("no input files")
    videos = [path for path in files if is_video(path)]
    video_unsupported = [kind for kind in _VIDEO_UNSUPPORTED_KINDS if kind in outputs]
    if videos and video_unsupported:
        raise ValueError(f"outputs {video_unsupported} are for images; {videos[0]} is a video (use npy for its .npz)")
    if videos and importlib.util.find_spec("av") is None:
        raise ImportError("video inputs need PyAV: pip install 'depth_anything_hf[predict]'")
    given_point_cloud_options = sorted(name for name, value in (point_cloud_kwargs or {}).items() if value is not None)
    if given_point_cloud_options and "ply" not in outputs:
        raise ValueError(f"{given_point_cloud_options} only apply to point clouds: add ply to the outputs")
    output_dir = Path(output_dir)
    stem_list = _output_stems(files, output_dir)
    stem_counts = collections.Counter(stem_list)
    clashing = [str(path) for path, stem in zip(files, stem_list) if stem_counts[stem] > 1]
    if clashing:
        raise ValueError(f"these inputs would write the same output files (same folder and name stem): {clashing}")
    stems = dict(zip(files, stem_list))

    check_model_type(model_name_or_path)
    device = torch.device(device) if device is not None else PartialState().device
    model = DepthAnythingHFForDepthEstimation.from_pretrained(model_name_or_path).to(device).eval()
    processor = AutoImageProcessor.from_pretrained(model_name_or_path)
    estimation_type = model.config.depth_estimation_type
    quantity = quantity_of(estimation_type)
    point_clouds = None
    if "ply" in outputs:
        point_clouds = PointCloudSettings(estimation_type, **(point_cloud_kwargs or {}))
        if point_clouds.align_points is not None:
            missing = [path.name for path in files if path.name not in point_clouds.align_points]
            if missing:
                raise ValueError(f"--align_points has no points for {missing}")
    metadata = {"quantity": quantity["quantity"], "unit": quantity["unit"], "model": str(model_name_or_path)}
    summary = {"images": 0, "videos": 0, "frames": 0, "skipped": []}

    images = [path for path in files if not is_video(path)]
    if images:
        decoded = _decoded_images(images, [stems[path] for path in images], processor, summary["skipped"])
        with tqdm(desc="images", unit="image", total=len(images)) as progress:
            for batch in size_runs(decoded, batch_size):
                predictions = predict_images(model, processor, [sample["pixels"] for sample in batch], device,
                                             forward_dtype)
                for sample, prediction in zip(batch, predictions):
                    write_image_outputs(
                        sample["stem"], sample["image"], prediction, outputs, quantity,
                        {**metadata, "source": str(sample["path"])}, point_clouds, sample["path"].name,
                    )
                summary["images"] += len(batch)
                progress.update(len(batch))
            progress.update(len(images) - progress.n)

    for path in videos:
        import av

        try:
            frames = _predict_video(path, stems[path], model, processor, device, forward_dtype, batch_size, outputs,
                                    quantity, {**metadata, "source": str(path)})
        except (av.FFmpegError, *UNDECODABLE_ERRORS) as error:
            logger.warning(f"Skipped {path}: {type(error).__name__}: {error}")
            summary["skipped"].append({"path": str(path), "reason": f"{type(error).__name__}: {error}"})
            continue
        summary["videos"] += 1
        summary["frames"] += frames

    if summary["images"] + summary["videos"] == 0:
        raise ValueError(f"none of the {len(files)} inputs could be read: {summary['skipped']}")
    return summary
