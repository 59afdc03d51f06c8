"""Where training starts: `--init_from` (a whole Depth Anything model: ours, transformers' or an official .pth) and
`--encoder_init` from a Depth Anything checkpoint, exact to the tensor or refused; metric models refused by the
relative scripts; the SiLog loss of `forward(labels=...)` on metric models; the metric evaluation cap."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import DepthAnythingForDepthEstimation, Dinov2Config, Dinov2Model

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.checkpoints import CheckpointMismatchError, ours_to_official
from depth_anything_hf.evaluation.presets import get_preset
from depth_anything_hf.evaluation.runner import evaluation_depth_cap
from depth_anything_hf.training.encoder_init import initialize_encoder, model_from_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training_scripts"))
import train_student  # noqa: E402
import train_teacher  # noqa: E402

IMAGE_SIZE = 28
KINDS = ("ours", "transformers", "official_pth")


def source_model(tiny_config, **overrides) -> DepthAnythingHFForDepthEstimation:
    """A tiny V2 model away from its initialisation, so that any tensor left unloaded shows."""
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config(image_size=IMAGE_SIZE, version="v2", **overrides)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    return model


def save_as(model: DepthAnythingHFForDepthEstimation, kind: str, directory: Path) -> Path:
    if kind == "ours":
        model.save_pretrained(directory)
        return directory
    if kind == "transformers":
        model.export_to_transformers(directory)
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "depth_anything_v2_tiny.pth"
    torch.save(ours_to_official(model.state_dict()), path)  # pretrained.* and depth_head.*, as released
    return path


@pytest.fixture
def tiny_config_file(tmp_path, tiny_config) -> Path:
    path = tmp_path / "tiny_v2.json"
    tiny_config(image_size=IMAGE_SIZE, version="v2").to_json_file(path)
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_init_from_gives_every_tensor_of_the_source(kind, tmp_path, tiny_config, tiny_config_file):
    source = source_model(tiny_config)
    path = save_as(source, kind, tmp_path / kind)
    # A .pth needs the variant for its release; directories carry their own configuration.
    model = model_from_checkpoint(path, tiny_config_file if kind == "official_pth" else None)
    expected = source.state_dict()
    assert model.state_dict().keys() == expected.keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert model.config.out_indices == source.config.out_indices


def test_init_from_a_transformers_checkpoint_predicts_what_transformers_does(tmp_path, tiny_config):
    source = source_model(tiny_config)
    source.export_to_transformers(tmp_path)
    pixel_values = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = DepthAnythingForDepthEstimation.from_pretrained(tmp_path).eval()(pixel_values).predicted_depth
        ours = model_from_checkpoint(tmp_path).eval()(pixel_values).predicted_depth
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_init_from_an_official_pth_needs_the_release(tmp_path, tiny_config):
    path = save_as(source_model(tiny_config), "official_pth", tmp_path)
    with pytest.raises(ValueError, match="V1 or V2"):
        model_from_checkpoint(path)
    no_version = tmp_path / "no_version.json"
    tiny_config(image_size=IMAGE_SIZE).to_json_file(no_version)
    with pytest.raises(ValueError, match="V1 or V2"):
        model_from_checkpoint(path, no_version)


def test_init_from_refuses_other_taps_other_sizes_and_other_models(tmp_path, tiny_config, tiny_config_file):
    save_as(source_model(tiny_config), "ours", tmp_path / "ours")
    v1_taps = tmp_path / "v1_taps.json"
    tiny_config(image_size=IMAGE_SIZE, version="v1", out_indices=[0, 1, 2, 2]).to_json_file(v1_taps)
    with pytest.raises(CheckpointMismatchError, match="taps encoder blocks"):
        model_from_checkpoint(tmp_path / "ours", v1_taps)

    save_as(source_model(tiny_config, hidden_size=48, num_attention_heads=3), "official_pth", tmp_path / "wide")
    with pytest.raises(CheckpointMismatchError, match="wrong shape"):
        model_from_checkpoint(tmp_path / "wide" / "depth_anything_v2_tiny.pth", tiny_config_file)

    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2)).save_pretrained(tmp_path / "dinov2")
    with pytest.raises(ValueError, match="'dinov2' checkpoint, not Depth Anything"):
        model_from_checkpoint(tmp_path / "dinov2")


@pytest.mark.parametrize("kind", KINDS)
def test_encoder_init_takes_the_encoder_out_of_a_depth_anything_checkpoint(kind, tmp_path, tiny_config):
    source = source_model(tiny_config)
    path = save_as(source, kind, tmp_path / kind)
    torch.manual_seed(1)
    model = DepthAnythingHFForDepthEstimation(tiny_config(image_size=IMAGE_SIZE, version="v2"))
    decoder_before = {name: tensor.clone() for name, tensor in model.state_dict().items() if not name.startswith("encoder.")}
    initialize_encoder(model, str(path))
    for name, tensor in model.encoder.state_dict().items():
        assert torch.equal(tensor, source.encoder.state_dict()[name]), name
    for name, tensor in decoder_before.items():
        assert torch.equal(model.state_dict()[name], tensor), name  # the decoder is not touched


def test_encoder_init_refuses_a_dinov2_that_does_not_fill_the_encoder(tmp_path, tiny_config):
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=IMAGE_SIZE)).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["encoder.layer.3.mlp.fc2.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = DepthAnythingHFForDepthEstimation(tiny_config(image_size=IMAGE_SIZE))
    with pytest.raises(CheckpointMismatchError, match="missing_keys"):
        initialize_encoder(model, str(tmp_path))


def teacher_arguments(*model_arguments: str) -> list[str]:
    return ["--dataset", "data", "--output_dir", "out", *model_arguments]


def test_relative_scripts_refuse_metric_models(tmp_path, capsys, tiny_config):
    metric_source = DepthAnythingHFForDepthEstimation(
        tiny_config(image_size=IMAGE_SIZE, version="v2", depth_estimation_type="metric", max_depth=20)
    )
    metric_source.save_pretrained(tmp_path / "metric")
    for arguments in (["--model_config", "v2-small-metric-20"], ["--init_from", str(tmp_path / "metric")]):
        with pytest.raises(SystemExit):
            train_teacher.parse_args(teacher_arguments(*arguments))
        assert "is metric: fine-tune metric depth with training_scripts/train_metric.py" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            train_student.parse_args([*teacher_arguments(*arguments), "--pseudo_labels", "labels", "--no_feature_alignment"])
        assert "is metric" in capsys.readouterr().err
    relative = train_teacher.parse_args(teacher_arguments("--model_config", "v2-small"))
    assert relative.encoder_init == "facebook/dinov2-small" and relative.init_from is None
    with pytest.raises(SystemExit):
        train_teacher.parse_args(teacher_arguments("--init_from", "x", "--encoder_init", "y"))
    assert "drop --encoder_init" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_teacher.parse_args(teacher_arguments("--init_from", "depth_anything_v2_vits.pth"))
    assert "does not say whether it is V1 or V2" in capsys.readouterr().err


def test_forward_with_labels_is_silog_in_metres_for_metric_models(tiny_config):
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(
        tiny_config(depth_estimation_type="metric", max_depth=10.0, version="v2")
    ).eval()
    pixel_values = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    labels = torch.rand(2, 28, 28, generator=torch.Generator().manual_seed(3)) * 14.0
    labels[0, :3] = 0.0  # no depth
    with torch.no_grad():
        outputs = model(pixel_values, labels=labels)
    prediction = outputs.predicted_depth.numpy().astype(np.float64)
    assert 0 < prediction.min() and prediction.max() <= 10.0
    target = labels.numpy().astype(np.float64)
    counted = (target >= 1e-3) & (target <= 10.0)  # deeper than max_depth: not supervised
    log_ratio = np.log(target[counted]) - np.log(prediction[counted])
    expected = math.sqrt(np.mean(log_ratio**2) - 0.5 * np.mean(log_ratio) ** 2)
    assert outputs.loss.item() == pytest.approx(expected, rel=1e-5)


def test_metric_models_are_evaluated_up_to_their_max_depth(tiny_config):
    kitti = get_preset("kitti")  # 80 m
    assert evaluation_depth_cap(kitti, tiny_config(depth_estimation_type="metric", max_depth=20)) == 20
    assert evaluation_depth_cap(get_preset("nyu"), tiny_config(depth_estimation_type="metric", max_depth=20)) == 10
    assert evaluation_depth_cap(kitti, tiny_config()) == 80
