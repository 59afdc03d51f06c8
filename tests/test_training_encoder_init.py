"""Encoder initialisation from DINOv2 (transformers' Dinov2Model in memory and on disk, official .pth) and the
frozen feature-alignment encoder: the same patch features as transformers' own DINOv2."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import Dinov2Config, Dinov2Model

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.checkpoints import CheckpointMismatchError, load_checked_state_dict
from depth_anything_hf.training.encoder_init import (
    FrozenFeatureEncoder,
    dinov2_to_encoder_state_dict,
    initialize_encoder,
    resolve_model_config,
)

# The stored position embeddings cover the input grid, so neither model interpolates them: 518 / 14 = 37, the
# grid of the released DINOv2 checkpoints (their configs say image_size 518).
IMAGE_SIZE = 518


def tiny_dinov2(layerscale_value: float = 1.0) -> Dinov2Model:
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=14,
        layerscale_value=layerscale_value,
    )
    dinov2 = Dinov2Model(config).eval()
    # Away from the initialisation (LayerScale 1, zero biases), so that a misplaced tensor changes the output.
    with torch.no_grad():
        for parameter in dinov2.parameters():
            parameter.normal_(0.0, 0.2)
    return dinov2


def our_model(tiny_config) -> DepthAnythingHFForDepthEstimation:
    return DepthAnythingHFForDepthEstimation(tiny_config(image_size=IMAGE_SIZE)).eval()


def reference_patch_features(dinov2: Dinov2Model, pixel_values: torch.Tensor) -> torch.Tensor:
    """transformers' DINOv2: the last layer's normed tokens, class token dropped."""
    with torch.no_grad():
        return dinov2(pixel_values).last_hidden_state[:, 1:]


def our_patch_features(model: DepthAnythingHFForDepthEstimation, pixel_values: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values, output_encoder_features=True).encoder_features


@pytest.fixture(scope="module")
def pixel_values():
    return torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))


def test_in_memory_names_are_the_attention_projections():
    # The mapping below relies on these names; a transformers release that renames them must fail here.
    keys = set(tiny_dinov2().state_dict())
    assert {"encoder.layer.0.attention.q_proj.weight", "encoder.layer.0.attention.o_proj.bias"} <= keys


def test_mapping_from_a_live_dinov2_model_gives_its_features(pixel_values, tiny_config):
    dinov2 = tiny_dinov2()
    model = our_model(tiny_config)
    assert not torch.allclose(our_patch_features(model, pixel_values), reference_patch_features(dinov2, pixel_values))
    load_checked_state_dict(model.encoder, dinov2_to_encoder_state_dict(dinov2.state_dict(), model.encoder), "test")
    torch.testing.assert_close(
        our_patch_features(model, pixel_values), reference_patch_features(dinov2, pixel_values), atol=1e-5, rtol=1e-5
    )


def test_mapping_from_a_saved_file_and_from_a_directory(tmp_path, pixel_values, tiny_config):
    dinov2 = tiny_dinov2()
    dinov2.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert "encoder.layer.0.attention.attention.query.weight" in saved  # the on-disk names
    model = our_model(tiny_config)
    load_checked_state_dict(model.encoder, dinov2_to_encoder_state_dict(saved, model.encoder), "test")
    expected = reference_patch_features(dinov2, pixel_values)
    torch.testing.assert_close(our_patch_features(model, pixel_values), expected, atol=1e-5, rtol=1e-5)

    from_directory = our_model(tiny_config)
    decoder_before = from_directory.head.conv3.weight.clone()
    initialize_encoder(from_directory, str(tmp_path))
    torch.testing.assert_close(our_patch_features(from_directory, pixel_values), expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(from_directory.head.conv3.weight, decoder_before)  # only the encoder is touched


def test_official_dinov2_pth_and_depth_anything_encoder(tmp_path, pixel_values, tiny_config):
    source = our_model(tiny_config)
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.normal_(0.0, 0.2)
    official = {key: value.clone() for key, value in source.encoder.state_dict().items()}  # cls_token, blocks.i...
    torch.save(official, tmp_path / "dinov2_vits14_pretrain.pth")
    torch.save({f"pretrained.{key}": value for key, value in official.items()}, tmp_path / "depth_anything.pth")
    expected = our_patch_features(source, pixel_values)
    for name in ("dinov2_vits14_pretrain.pth", "depth_anything.pth"):
        model = our_model(tiny_config)
        initialize_encoder(model, str(tmp_path / name))
        torch.testing.assert_close(our_patch_features(model, pixel_values), expected)


def test_frozen_feature_encoder_matches_dinov2_and_takes_no_gradient(tmp_path, pixel_values, tiny_config):
    dinov2 = tiny_dinov2(layerscale_value=0.5)
    dinov2.save_pretrained(tmp_path)
    frozen = FrozenFeatureEncoder(tiny_config(image_size=IMAGE_SIZE), str(tmp_path)).train()
    features = frozen(pixel_values)
    torch.testing.assert_close(features, reference_patch_features(dinov2, pixel_values), atol=1e-5, rtol=1e-5)
    assert not features.requires_grad
    assert not frozen.training and all(not parameter.requires_grad for parameter in frozen.parameters())


def test_frozen_feature_encoder_from_one_of_our_checkpoints(tmp_path, pixel_values, tiny_config):
    """Without DINOv2 weights (table9.py), L_feat aligns to a trained teacher's encoder: its save_pretrained folder."""
    teacher = our_model(tiny_config)
    with torch.no_grad():
        for parameter in teacher.parameters():
            parameter.normal_(0.0, 0.2)
    teacher.save_pretrained(tmp_path)
    frozen = FrozenFeatureEncoder(tiny_config(image_size=IMAGE_SIZE), str(tmp_path))
    torch.testing.assert_close(frozen(pixel_values), our_patch_features(teacher, pixel_values))


def test_a_checkpoint_of_another_size_or_grid_is_refused(tmp_path, tiny_config):
    tiny_dinov2().save_pretrained(tmp_path)
    model = DepthAnythingHFForDepthEstimation(tiny_config(image_size=28))  # a 2x2 position-embedding grid
    with pytest.raises(CheckpointMismatchError, match="pos_embed"):
        initialize_encoder(model, str(tmp_path))
    with pytest.raises(ValueError, match="--encoder_init"):
        initialize_encoder(model, str(tmp_path / "missing"))


def test_encoder_init_none_keeps_the_random_encoder(tiny_config):
    model = our_model(tiny_config)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    initialize_encoder(model, "none")
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_model_config_from_a_variant_name_or_a_json_file(tmp_path, tiny_config):
    assert resolve_model_config("v2-small").out_indices == [2, 5, 8, 11]
    assert resolve_model_config("v1-base").out_indices == [8, 9, 10, 11]
    tiny_config(image_size=28).to_json_file(tmp_path / "tiny.json")
    assert resolve_model_config(str(tmp_path / "tiny.json")).hidden_size == 32
    assert json.loads((tmp_path / "tiny.json").read_text())["model_type"] == "depth_anything_hf"
    with pytest.raises(ValueError, match="--model_config"):
        resolve_model_config("v3-tiny")
    with pytest.raises(ValueError, match="no such config JSON"):
        resolve_model_config(str(tmp_path / "absent.json"))
