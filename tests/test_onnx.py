"""ONNX export: dynamic batch/height/width, parity with PyTorch at sizes other than the traced one, int8."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export tests need onnx: pip install 'depth_anything_hf[onnx]'")
pytest.importorskip("onnxscript", reason="ONNX export tests need onnxscript: pip install 'depth_anything_hf[onnx]'")
pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime: pip install 'depth_anything_hf[onnx]'")

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.cli import main as cli_main
from depth_anything_hf.onnx import onnx_session

# Neither is the traced size (266x350) nor the stored 37x37 grid; 518x518 is the stored grid itself.
CHECK_SIZES = [(154, 308), (518, 518)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_config):
    """A tiny model with the default config's position-embedding settings (518 px, 37x37 grid, official
    interpolation), saved and exported once through the CLI, with the int8 model."""
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    checkpoint = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(checkpoint)
    output_dir = tmp_path_factory.mktemp("exported")
    cli_main([
        "export", str(checkpoint), str(output_dir), "--quantize",
        "--check_sizes", *[f"{height}x{width}" for height, width in CHECK_SIZES],
    ])
    return model, output_dir


def test_export_writes_the_transformers_js_layout_and_its_report(exported):
    import onnx

    _, output_dir = exported
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "onnx/model.onnx",
                 "onnx/model_quantized.onnx"):
        assert (output_dir / name).is_file(), name
    assert json.loads((output_dir / "config.json").read_text())["model_type"] == "depth_anything"
    onnx.checker.check_model(str(output_dir / "onnx" / "model.onnx"), full_check=True)
    graph_input = onnx.load(str(output_dir / "onnx" / "model.onnx")).graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "pixel_values" and [bool(dim.dim_param) for dim in dims] == [True, False, True, True]
    report = json.loads((output_dir / "onnx" / "export_report.json").read_text())
    assert [(row["height"], row["width"]) for row in report["float32"]] == CHECK_SIZES
    assert all(row["relative_error"] <= 1e-4 for row in report["float32"])
    assert all(row["pearson_r"] >= 0.99 for row in report["int8"])


@pytest.mark.parametrize(("batch_size", "height", "width"), [(3, 182, 126), (1, 434, 588)])
def test_onnxruntime_matches_pytorch_at_untraced_sizes(exported, batch_size, height, width):
    """The old graph baked the traced 19x25 patch grid into the position embeddings: onnxruntime failed
    to broadcast at any other size."""
    model, output_dir = exported
    pixel_values = torch.randn(batch_size, 3, height, width, generator=torch.Generator().manual_seed(height))
    with torch.no_grad():
        expected = model(pixel_values).predicted_depth.numpy()
    session = onnx_session(output_dir / "onnx" / "model.onnx")
    predicted = session.run(["predicted_depth"], {"pixel_values": pixel_values.numpy()})[0]
    assert predicted.shape == (batch_size, height, width)
    assert np.abs(predicted - expected).max() <= 1e-4 * np.abs(expected).max()


def test_exported_interpolation_equals_the_eager_one(tiny_config):
    """The matrix form used under torch.export reproduces F.interpolate's bicubic resize (official scale
    factor and plain target size), including the stored grid kept as is."""
    from depth_anything_hf.modeling_depth_anything_hf import DinoVisionTransformer

    torch.manual_seed(0)
    for interpolation in ("official", "transformers"):
        encoder = DinoVisionTransformer(tiny_config(pos_embed_interpolation=interpolation))
        torch.nn.init.normal_(encoder.pos_embed)  # values up to ~4: float32 rounding is ~1e-6 per operation
        for grid in [(37, 37), (37, 20), (9, 50), (1, 1)]:
            torch.testing.assert_close(
                encoder._interpolate_pos_encoding_exportable(*grid),
                encoder.interpolate_pos_encoding(*grid),
                rtol=0, atol=5e-5,
            )
