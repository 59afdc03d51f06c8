"""ONNX export of Depth Anything checkpoints (`depth-anything export`), checked against PyTorch.

The graph takes `pixel_values` float32 [batch, 3, height, width] (height and width multiples of 14, all three
dynamic) and returns `predicted_depth` [batch, height, width], as the PyTorch model. It is exported with
torch's `torch.export`-based exporter; the position embeddings are interpolated inside the graph for the
input's grid (see `DinoVisionTransformer.interpolate_pos_encoding`), so one file serves every size.

`export_checkpoint` writes the layout transformers.js and optimum users expect:

    OUTPUT_DIR/config.json, model.safetensors, preprocessor_config.json   (transformers' depth_anything layout)
    OUTPUT_DIR/onnx/model.onnx                                            (float32)
    OUTPUT_DIR/onnx/model_quantized.onnx                                  (int8 weights, dynamic quantisation)
    OUTPUT_DIR/onnx/export_report.json                                    (the measured deviations)
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

ONNX_SUBFOLDER = "onnx"
MODEL_FILE = "model.onnx"
QUANTIZED_MODEL_FILE = "model_quantized.onnx"
REPORT_FILE = "export_report.json"
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "predicted_depth"
# ONNX protobufs cannot exceed 2 GB: larger models keep their weights in an external data file.
_PROTOBUF_LIMIT_BYTES = 2**31 - 2**26
# Acceptance thresholds: float32 ONNX vs PyTorch (max abs difference / max abs value), int8 vs float32.
MAX_RELATIVE_ERROR = 1e-4
MIN_QUANTIZED_PEARSON = 0.99
# Sizes the checks run at by default: portrait and landscape official input sizes, neither the traced one.
DEFAULT_CHECK_SIZES = ((518, 392), (392, 686))


def _require(module: str, extra: str = "onnx"):
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs {module}, which is not installed: pip install 'depth_anything_hf[{extra}]'"
        ) from error


def export_onnx(model, output_path: str | os.PathLike, opset_version: int = 18, trace_size=(266, 350)) -> Path:
    """Export `model` (a `DepthAnythingHFForDepthEstimation`) to `output_path` with dynamic batch, height and
    width, and run `onnx.checker` on the result.

    `trace_size` is the (height, width) of the example batch (2 images, since torch.export specialises sizes
    of 1); the exported graph is not specific to it.
    """
    onnx = _require("onnx")
    _require("onnxscript")
    patch_size = model.config.patch_size
    if trace_size[0] % patch_size or trace_size[1] % patch_size:
        raise ValueError(f"trace_size {trace_size} must be multiples of the patch size {patch_size}")
    if model.dtype != torch.float32:
        raise ValueError(f"export a float32 model (got {model.dtype}); onnxruntime's CPU kernels and the checks are float32")
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.randn(2, model.config.num_channels, *trace_size, device=model.device)
    batch = torch.export.Dim("batch", min=1)
    patch_height = torch.export.Dim("patch_height", min=1)
    patch_width = torch.export.Dim("patch_width", min=1)
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            output_path,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"pixel_values": {0: batch, 2: patch_size * patch_height, 3: patch_size * patch_width}},
            opset_version=opset_version,
            dynamo=True,
            external_data=parameter_bytes > _PROTOBUF_LIMIT_BYTES,
            verbose=False,
        )
    # The path form of the checker also reads external data files.
    onnx.checker.check_model(str(output_path), full_check=True)
    return output_path


def quantize_onnx(model_path: str | os.PathLike, quantized_path: str | os.PathLike) -> Path:
    """int8 dynamic quantisation (onnxruntime's `quantize_dynamic`): int8 weights, activations quantised at run
    time. Only the encoder's matrix products (qkv, projections, MLPs: most of the compute) are quantised; the
    DPT decoder's convolutions stay float32, since quantising them too lowered the correlation with float32
    (Pearson r 0.9998 -> 0.994 on the test model)."""
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        Path(model_path), Path(quantized_path), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
    )
    return Path(quantized_path)


def onnx_session(model_path: str | os.PathLike, num_threads: int | None = None):
    """An onnxruntime CPU session; `num_threads` caps its intra-op threads."""
    onnxruntime = _require("onnxruntime")
    options = onnxruntime.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def relative_error(prediction: np.ndarray, reference: np.ndarray) -> float:
    """max |prediction - reference| / max |reference|."""
    return float(np.abs(prediction - reference).max() / max(np.abs(reference).max(), np.finfo(np.float32).tiny))


def pearson_r(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation of two maps, over all pixels."""
    return float(np.corrcoef(prediction.ravel().astype(np.float64), reference.ravel().astype(np.float64))[0, 1])


def compare_with_pytorch(model, session, sizes, batch_size: int = 1, seed: int = 0) -> list[dict]:
    """Run PyTorch and an onnxruntime session on the same seeded random `pixel_values` at each (height, width);
    per size the relative error (`relative_error`) and the Pearson r of the two predictions."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for height, width in sizes:
        pixel_values = torch.randn(batch_size, model.config.num_channels, height, width, generator=generator)
        with torch.no_grad():
            reference = model(pixel_values.to(model.device)).predicted_depth.float().cpu().numpy()
        prediction = session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values.numpy()})[0]
        if prediction.shape != reference.shape:
            raise ValueError(f"ONNX output shape {prediction.shape} != PyTorch's {reference.shape} at {height}x{width}")
        rows.append(
            {
                "height": height,
                "width": width,
                "batch_size": batch_size,
                "relative_error": relative_error(prediction, reference),
                "pearson_r": pearson_r(prediction, reference),
            }
        )
    return rows


def export_checkpoint(
    model_name_or_path: str,
    output_dir: str | os.PathLike,
    quantize: bool = False,
    check_sizes=DEFAULT_CHECK_SIZES,
    opset_version: int = 18,
) -> dict:
    """Export a checkpoint (ours or transformers' depth_anything) to `output_dir` in the transformers.js /
    optimum layout (module docstring), check it and return the report written to `onnx/export_report.json`.

    The float32 model must match PyTorch to `MAX_RELATIVE_ERROR` at every check size (batch 2 at the first,
    batch 1 at the others) and the int8 model must reach Pearson r >= `MIN_QUANTIZED_PEARSON` against PyTorch;
    otherwise a ValueError says by how much it missed, and the failing file is removed.
    """
    from .modeling_depth_anything_hf import DepthAnythingHFForDepthEstimation

    model = DepthAnythingHFForDepthEstimation.from_pretrained(model_name_or_path, dtype=torch.float32).eval()
    patch_size = model.config.patch_size
    bad_sizes = [size for size in check_sizes if size[0] % patch_size or size[1] % patch_size]
    if bad_sizes:
        raise ValueError(f"check sizes {bad_sizes} are not multiples of the patch size {patch_size}")
    output_dir = Path(output_dir)
    model.export_to_transformers(output_dir)
    onnx_dir = output_dir / ONNX_SUBFOLDER
    model_path = export_onnx(model, onnx_dir / MODEL_FILE, opset_version=opset_version)

    check_sizes = [tuple(size) for size in check_sizes]
    checks = compare_with_pytorch(model, onnx_session(model_path), check_sizes[:1], batch_size=2)
    checks += compare_with_pytorch(model, onnx_session(model_path), check_sizes[1:])
    report = {"model": str(model_name_or_path), "opset_version": opset_version, "float32": checks}
    worst = max(row["relative_error"] for row in checks)
    if worst > MAX_RELATIVE_ERROR:
        model_path.unlink()
        raise ValueError(
            f"The ONNX export of {model_name_or_path} deviates from PyTorch by {worst:.3g} (relative), more than "
            f"{MAX_RELATIVE_ERROR}: {checks}"
        )
    if quantize:
        quantized_path = quantize_onnx(model_path, onnx_dir / QUANTIZED_MODEL_FILE)
        quantized_checks = compare_with_pytorch(model, onnx_session(quantized_path), check_sizes)
        report["int8"] = quantized_checks
        lowest = min(row["pearson_r"] for row in quantized_checks)
        if not lowest >= MIN_QUANTIZED_PEARSON:
            quantized_path.unlink()
            raise ValueError(
                f"The int8 model of {model_name_or_path} correlates with PyTorch at Pearson r = {lowest:.4f}, below "
                f"{MIN_QUANTIZED_PEARSON}; it was not kept: {quantized_checks}"
            )
    (onnx_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


__all__ = [
    "DEFAULT_CHECK_SIZES",
    "compare_with_pytorch",
    "export_checkpoint",
    "export_onnx",
    "onnx_session",
    "pearson_r",
    "quantize_onnx",
    "relative_error",
]
