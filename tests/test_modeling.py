"""The model against transformers' own DepthAnythingForDepthEstimation and the official layouts."""

from pathlib import Path

import pytest
import torch
from transformers import DepthAnythingForDepthEstimation

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, checkpoints
from depth_anything_hf.losses import affine_invariant_loss


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def transformers_twin(model: DepthAnythingHFForDepthEstimation, directory) -> DepthAnythingForDepthEstimation:
    model.export_to_transformers(directory)
    return DepthAnythingForDepthEstimation.from_pretrained(directory).eval()


@pytest.mark.parametrize(
    "size, expected",
    [("small", 24_785_089), ("base", 97_470_785), ("large", 335_315_649), ("giant", 1_258_132_225)],
)
def test_parameter_counts_match_the_released_models(size, expected):
    with torch.device("meta"):
        model = DepthAnythingHFForDepthEstimation(DepthAnythingHFConfig.from_variant("v2", size))
    # The released count includes DINOv2's mask token and the deepest fusion block's first residual unit, which
    # has no input: both are buffers here (loaded and exported, never trained).
    assert sum(tensor.numel() for tensor in model.state_dict().values()) == expected
    dead_unit = 2 * (model.config.fusion_hidden_size**2 * 9 + model.config.fusion_hidden_size)
    untrained = dead_unit + model.config.hidden_size
    assert sum(parameter.numel() for parameter in model.parameters()) == expected - untrained


def test_variants_carry_their_tapped_layers(tiny_config):
    assert DepthAnythingHFConfig.from_variant("v1", "small").out_indices == [8, 9, 10, 11]
    assert DepthAnythingHFConfig.from_variant("v1", "large").out_indices == [20, 21, 22, 23]
    assert DepthAnythingHFConfig.from_variant("v2", "base").out_indices == [2, 5, 8, 11]
    assert DepthAnythingHFConfig.from_variant("v2", "large").out_indices == [4, 11, 17, 23]
    assert DepthAnythingHFConfig.from_variant("v2", "giant").out_indices == [9, 19, 29, 39]
    metric = DepthAnythingHFConfig.from_variant_name("v2-small-metric-20")
    assert (metric.depth_estimation_type, metric.max_depth) == ("metric", 20.0)
    with pytest.raises(ValueError, match="size must be one of"):
        DepthAnythingHFConfig.from_variant("v1", "giant")
    with pytest.raises(ValueError, match="max_depth"):
        DepthAnythingHFConfig.from_variant("v2", "small", depth_estimation_type="metric")
    with pytest.raises(ValueError, match="out_indices"):
        tiny_config(out_indices=[0, 1, 2, 7])


@pytest.mark.parametrize("version, align_corners", [("v1", False), ("v2", True)])
def test_transformers_configs_keep_the_release(version, align_corners):
    """transformers' config does not store V1/V2; the tapped layers tell them apart, and with them how the
    prediction is upsampled (the official V1 code uses align_corners=False, V2 True)."""
    config = DepthAnythingHFConfig.from_variant(version, "small")
    converted = checkpoints.config_from_transformers(checkpoints.config_to_transformers(config))
    assert converted.version == version
    assert converted.out_indices == config.out_indices
    assert converted.upsample_align_corners is align_corners


@pytest.mark.parametrize("taps", [[0, 2, 3, 5], [2, 3, 4, 5]], ids=["v2-style", "v1-style"])
@pytest.mark.parametrize("head", ["relative", "metric"])
@pytest.mark.parametrize("swiglu", [False, True], ids=["mlp", "swiglu"])
def test_parity_with_transformers_at_518(tmp_path, tiny_config, taps, head, swiglu):
    torch.manual_seed(0)
    config = tiny_config(
        num_hidden_layers=6,
        out_indices=taps,
        use_swiglu_ffn=swiglu,
        depth_estimation_type=head,
        max_depth=20 if head == "metric" else None,
    )
    model = DepthAnythingHFForDepthEstimation(config).eval()
    reference = transformers_twin(model, tmp_path)
    pixel_values = torch.randn(2, 3, 518, 518)
    with torch.no_grad():
        ours = model(pixel_values).predicted_depth
        theirs = reference(pixel_values).predicted_depth
    assert ours.shape == (2, 518, 518)
    assert ours.std() > 0
    assert relative_error(ours, theirs) <= 1e-5


def test_other_input_sizes_follow_the_official_pos_embed_interpolation(tmp_path, tiny_model):
    """The one known difference from transformers: DINOv2 resizes position embeddings by the scale factor
    (n + 0.1) / 37, transformers to the target size. Same outputs at 518x518, not at other sizes."""
    reference = transformers_twin(tiny_model, tmp_path)
    pixel_values = torch.randn(1, 3, 364, 518)
    with torch.no_grad():
        theirs = reference(pixel_values).predicted_depth
        official = tiny_model(pixel_values).predicted_depth
        tiny_model.config.pos_embed_interpolation = "transformers"
        transformers_like = tiny_model(pixel_values).predicted_depth
    assert relative_error(transformers_like, theirs) <= 1e-5
    assert relative_error(official, theirs) > 1e-4

    # The official grid: bicubic with the +0.1 scale factor on the stored 37x37 grid.
    tiny_model.config.pos_embed_interpolation = "official"
    stored = tiny_model.encoder.pos_embed[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(stored, scale_factor=(26.1 / 37, 37.1 / 37), mode="bicubic")
    interpolated = tiny_model.encoder.interpolate_pos_encoding(26, 37)[:, 1:]
    torch.testing.assert_close(interpolated, expected.flatten(2).transpose(1, 2))


def official_state_dict_for(config) -> dict[str, torch.Tensor]:
    """Random weights under the official key names, written out from docs/method.md section 2 (independently of
    the converter)."""
    generator = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.randn(*shape, generator=generator) * 0.1

    dim, hidden, channels, features = (
        config.hidden_size,
        config.mlp_hidden_size,
        config.neck_hidden_sizes,
        config.fusion_hidden_size,
    )
    state = {
        "pretrained.cls_token": rand(1, 1, dim),
        "pretrained.pos_embed": rand(1, 37 * 37 + 1, dim),
        "pretrained.mask_token": rand(1, dim),
        "pretrained.patch_embed.proj.weight": rand(dim, 3, 14, 14),
        "pretrained.patch_embed.proj.bias": rand(dim),
        "pretrained.norm.weight": 1 + rand(dim),
        "pretrained.norm.bias": rand(dim),
    }
    for i in range(config.num_hidden_layers):
        block = f"pretrained.blocks.{i}."
        state.update(
            {
                block + "norm1.weight": 1 + rand(dim),
                block + "norm1.bias": rand(dim),
                block + "attn.qkv.weight": rand(3 * dim, dim),
                block + "attn.qkv.bias": rand(3 * dim),
                block + "attn.proj.weight": rand(dim, dim),
                block + "attn.proj.bias": rand(dim),
                block + "ls1.gamma": rand(dim),
                block + "norm2.weight": 1 + rand(dim),
                block + "norm2.bias": rand(dim),
                block + "mlp.fc1.weight": rand(hidden, dim),
                block + "mlp.fc1.bias": rand(hidden),
                block + "mlp.fc2.weight": rand(dim, hidden),
                block + "mlp.fc2.bias": rand(dim),
                block + "ls2.gamma": rand(dim),
            }
        )
    for i, c in enumerate(channels):
        state[f"depth_head.projects.{i}.weight"] = rand(c, dim, 1, 1)
        state[f"depth_head.projects.{i}.bias"] = rand(c)
        state[f"depth_head.scratch.layer{i + 1}_rn.weight"] = rand(features, c, 3, 3)
        refinenet = f"depth_head.scratch.refinenet{i + 1}."
        for unit in ("resConfUnit1", "resConfUnit2"):
            for conv in ("conv1", "conv2"):
                state[f"{refinenet}{unit}.{conv}.weight"] = rand(features, features, 3, 3)
                state[f"{refinenet}{unit}.{conv}.bias"] = rand(features)
        state[refinenet + "out_conv.weight"] = rand(features, features, 1, 1)
        state[refinenet + "out_conv.bias"] = rand(features)
    for i, kernel in ((0, 4), (1, 2)):
        state[f"depth_head.resize_layers.{i}.weight"] = rand(channels[i], channels[i], kernel, kernel)
        state[f"depth_head.resize_layers.{i}.bias"] = rand(channels[i])
    state["depth_head.resize_layers.3.weight"] = rand(channels[3], channels[3], 3, 3)
    state["depth_head.resize_layers.3.bias"] = rand(channels[3])
    state["depth_head.scratch.output_conv1.weight"] = rand(features // 2, features, 3, 3)
    state["depth_head.scratch.output_conv1.bias"] = rand(features // 2)
    state["depth_head.scratch.output_conv2.0.weight"] = rand(32, features // 2, 3, 3)
    state["depth_head.scratch.output_conv2.0.bias"] = rand(32)
    state["depth_head.scratch.output_conv2.2.weight"] = rand(1, 32, 1, 1)
    state["depth_head.scratch.output_conv2.2.bias"] = rand(1) + 1
    return state


@pytest.fixture
def official_small_layout(monkeypatch, tiny_config):
    """Official key names at a tiny width: `from_variant` is shrunk so size inference still runs."""
    tiny = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, neck_hidden_sizes=[8, 16, 32, 32],
                fusion_hidden_size=16)
    monkeypatch.setitem(checkpoints.SIZE_OF_HIDDEN_SIZE, 32, "small")
    original = DepthAnythingHFConfig.from_variant.__func__

    def tiny_variant(cls, version, size, **kwargs):
        config = original(cls, version, size, **kwargs)
        config.update(tiny)
        config.out_indices = [0, 1, 2, 3]
        return config

    monkeypatch.setattr(DepthAnythingHFConfig, "from_variant", classmethod(tiny_variant))
    return tiny_config(head_hidden_size=32)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "metric-training-wrapper"])
def test_official_checkpoint_round_trip_through_plain_transformers(tmp_path, official_small_layout, wrapped):
    official = official_state_dict_for(official_small_layout)
    saved = {"model": {"module." + k: v for k, v in official.items()}} if wrapped else official
    torch.save(saved, tmp_path / "depth_anything_v2_vits.pth")

    model = DepthAnythingHFForDepthEstimation.from_official_checkpoint(tmp_path / "depth_anything_v2_vits.pth", "v2")
    model.export_to_transformers(tmp_path / "hf")
    plain = DepthAnythingForDepthEstimation.from_pretrained(tmp_path / "hf").eval()

    from safetensors.torch import load_file

    exported = load_file(tmp_path / "hf" / "model.safetensors")
    # docs/method.md section 2: q, k, v are rows [:C], [C:2C], [2C:] of qkv; refinenet4 (deepest) is fusion layer 0.
    qkv = official["pretrained.blocks.1.attn.qkv.weight"]
    torch.testing.assert_close(exported["backbone.encoder.layer.1.attention.attention.key.weight"], qkv[32:64])
    torch.testing.assert_close(
        exported["neck.fusion_stage.layers.0.projection.weight"], official["depth_head.scratch.refinenet4.out_conv.weight"]
    )
    torch.testing.assert_close(
        exported["neck.fusion_stage.layers.3.residual_layer1.convolution2.bias"],
        official["depth_head.scratch.refinenet1.resConfUnit1.conv2.bias"],
    )
    torch.testing.assert_close(exported["head.conv3.weight"], official["depth_head.scratch.output_conv2.2.weight"])
    # The deepest block's first residual unit has no input; its weights still travel unchanged.
    torch.testing.assert_close(
        exported["neck.fusion_stage.layers.0.residual_layer1.convolution1.weight"],
        official["depth_head.scratch.refinenet4.resConfUnit1.conv1.weight"],
    )
    assert checkpoints.ours_to_official(model.state_dict()).keys() == official.keys()

    pixel_values = torch.randn(1, 3, 518, 518)
    with torch.no_grad():
        assert relative_error(model(pixel_values).predicted_depth, plain(pixel_values).predicted_depth) <= 1e-5

    # And back: transformers' layout loads into ours through from_pretrained.
    reloaded = DepthAnythingHFForDepthEstimation.from_pretrained(tmp_path / "hf")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)


def test_official_checkpoint_mismatch_lists_the_keys(tmp_path, official_small_layout):
    official = official_state_dict_for(official_small_layout)
    del official["depth_head.scratch.refinenet2.out_conv.bias"]
    official["depth_head.extra.weight"] = torch.zeros(1)
    torch.save(official, tmp_path / "broken.pth")
    with pytest.raises(checkpoints.CheckpointMismatchError) as error:
        DepthAnythingHFForDepthEstimation.from_official_checkpoint(tmp_path / "broken.pth", "v1")
    assert "neck.fusion_blocks.1.out_conv.bias" in str(error.value)
    assert "depth_head.extra.weight" in str(error.value)

    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        DepthAnythingHFForDepthEstimation.from_official_checkpoint(tmp_path / "garbage.pth", "v1")


def test_safetensors_save_and_load(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = DepthAnythingHFForDepthEstimation.from_pretrained(tmp_path).eval()
    pixel_values = torch.randn(1, 3, 70, 98)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values).predicted_depth, tiny_model(pixel_values).predicted_depth)


def test_sdpa_matches_eager_attention(tiny_model):
    pixel_values = torch.randn(2, 3, 56, 84)
    with torch.no_grad():
        sdpa = tiny_model(pixel_values).predicted_depth
        tiny_model.config._attn_implementation = "eager"
        eager = tiny_model(pixel_values).predicted_depth
    assert relative_error(sdpa, eager) <= 1e-5


def test_hidden_states_and_encoder_features(tiny_model):
    pixel_values = torch.randn(2, 3, 56, 70)
    with torch.no_grad():
        outputs = tiny_model(pixel_values, output_hidden_states=True, output_encoder_features=True)
    assert len(outputs.hidden_states) == tiny_model.config.num_hidden_layers + 1
    assert outputs.encoder_features.shape == (2, 4 * 5, 32)
    expected = tiny_model.encoder.norm(outputs.hidden_states[-1])[:, 1:]
    torch.testing.assert_close(outputs.encoder_features, expected)
    as_tuple = tiny_model(pixel_values, return_dict=False)
    torch.testing.assert_close(as_tuple[0], outputs.predicted_depth)


def test_labels_give_the_affine_invariant_loss(tiny_model):
    pixel_values = torch.randn(2, 3, 42, 42)
    with torch.no_grad():
        prediction = tiny_model(pixel_values).predicted_depth
        # An affine transform of the prediction is a perfect target under eq. 1-2.
        perfect = tiny_model(pixel_values, labels=3.0 * prediction + 0.5).loss
        target = torch.rand(2, 42, 42)
        valid = torch.rand(2, 42, 42) > 0.3
        loss = tiny_model(pixel_values, labels=target, valid_mask=valid).loss
    assert perfect.item() == pytest.approx(0.0, abs=1e-5)
    assert loss.item() == pytest.approx(affine_invariant_loss(prediction, target, valid).item(), rel=1e-6)
    assert loss.item() > 0.1


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model):
    tiny_model.train()
    pixel_values = torch.randn(1, 3, 42, 42)
    target = torch.rand(1, 42, 42)

    def gradients():
        tiny_model.zero_grad()
        tiny_model(pixel_values, labels=target).loss.backward()
        return [p.grad.clone() for p in tiny_model.parameters() if p.grad is not None]

    plain = gradients()
    tiny_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = gradients()
    assert tiny_model.encoder.blocks[0].gradient_checkpointing
    assert len(plain) == len(checkpointed) > 0
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "name, seeds",
    # With PyTorch's default init alone, seed 3 of v2-small and seed 2 of the tiny model start dead.
    [("v2-small", (0, 3)), ("tiny", range(4)), ("toy", range(4))],
)
def test_a_fresh_model_has_live_outputs_of_healthy_scale(name, seeds, tiny_config):
    """Trained from scratch, the relative head must start with every pixel past its final ReLU and a spread that
    the affine-invariant loss normalises (a 0.02 trunc-normal decoder gave ~1e-5 with a third of the pixels dead;
    PyTorch's default init alone leaves every pixel dead when the last bias is drawn negative)."""
    config = {
        "v2-small": lambda: DepthAnythingHFConfig.from_variant_name("v2-small"),
        "tiny": lambda: tiny_config(initializer_range=0.02),
        "toy": lambda: DepthAnythingHFConfig.from_json_file(
            Path(__file__).parents[1] / "training_scripts" / "sample_data" / "toy_config.json"
        ),
    }[name]()
    pixel_values = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    for seed in seeds:
        torch.manual_seed(seed)
        model = DepthAnythingHFForDepthEstimation(config).eval()
        with torch.no_grad():
            disparity = model(pixel_values).predicted_depth
        assert (disparity > 0).all(), f"seed {seed}: {(disparity <= 0).float().mean():.0%} of the pixels are dead"
        deviation = (disparity - disparity.flatten(1).median(1).values[:, None, None]).abs().mean((1, 2))
        assert (deviation > 1e-4).all() and (disparity.mean() - 1).abs() < 0.5, (seed, deviation, disparity.mean())


def test_bfloat16_stays_close_to_float32(tiny_config):
    """bf16 keeps ~3 significant digits. Random decoders amplify rounding far more than trained ones; the
    default (fan-in scaled) decoder init keeps that in check, as for the official DPT head."""
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config(initializer_range=0.02)).eval()
    pixel_values = torch.randn(1, 3, 70, 70)

    def l2_relative(approximation, reference):
        return ((approximation.float() - reference).norm() / reference.norm()).item()

    with torch.no_grad():
        reference = model(pixel_values, output_encoder_features=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model(pixel_values, output_encoder_features=True)
        bf16 = model.to(torch.bfloat16)(pixel_values.to(torch.bfloat16), output_encoder_features=True)
    for approximation in (autocast, bf16):
        assert l2_relative(approximation.encoder_features, reference.encoder_features) <= 1e-2
        assert relative_error(approximation.predicted_depth.float(), reference.predicted_depth) <= 1e-2
    assert bf16.predicted_depth.dtype == torch.bfloat16


def test_bad_inputs_get_clear_errors(tiny_model):
    with pytest.raises(ValueError, match="multiples of the patch size 14"):
        tiny_model(torch.randn(1, 3, 50, 56))
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch_size, 3"):
        tiny_model(torch.randn(3, 56, 56))
    with pytest.raises(ValueError, match="labels must have the prediction's shape"):
        tiny_model(torch.randn(1, 3, 56, 56), labels=torch.rand(1, 28, 28))


@pytest.mark.slow
@pytest.mark.parametrize("size", ["small", "base"])
def test_released_sizes_match_transformers(tmp_path, size):
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(DepthAnythingHFConfig.from_variant("v2", size)).eval()
    reference = transformers_twin(model, tmp_path)
    pixel_values = torch.randn(1, 3, 518, 518)
    with torch.no_grad():
        assert relative_error(model(pixel_values).predicted_depth, reference(pixel_values).predicted_depth) <= 1e-5


# --- the checks of transformers' ModelTesterMixin, written out (its test utilities are not installed) ------------


def test_eager_attention_returns_the_attention_maps_of_transformers(tmp_path, tiny_model):
    pixel_values = torch.randn(1, 3, 518, 518)  # the stored grid: no pos-embed interpolation
    tiny_model.export_to_transformers(tmp_path)
    plain = DepthAnythingForDepthEstimation.from_pretrained(tmp_path, attn_implementation="eager").eval()
    tiny_model.set_attn_implementation("eager")
    with torch.no_grad():
        expected = plain(pixel_values, output_attentions=True).attentions
        outputs = tiny_model(pixel_values, output_attentions=True)
        as_tuple = tiny_model(pixel_values, output_attentions=True, return_dict=False)
    num_tokens = 37 * 37 + 1
    assert len(outputs.attentions) == len(expected) == tiny_model.config.num_hidden_layers
    for ours, theirs in zip(outputs.attentions, expected):
        assert ours.shape == (1, tiny_model.config.num_attention_heads, num_tokens, num_tokens)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(as_tuple[1], outputs.attentions)

    tiny_model.config.output_attentions = True  # as the mixin does: from the config
    with torch.no_grad():
        assert len(tiny_model(pixel_values[..., :56, :56]).attentions) == tiny_model.config.num_hidden_layers


def test_the_input_embeddings_are_the_patch_embedding(tiny_model):
    assert tiny_model.get_input_embeddings() is tiny_model.encoder.patch_embed


def test_output_attentions_under_sdpa_is_a_clear_error(tiny_model):
    assert tiny_model.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="output_attentions=True is not supported with attn_implementation='sdpa'"):
        tiny_model(torch.randn(1, 3, 28, 28), output_attentions=True)


def test_bool_masked_pos_uses_the_mask_token_as_dinov2_does(tiny_config):
    from transformers import Dinov2Config, Dinov2Model

    from depth_anything_hf.training.encoder_init import dinov2_to_encoder_state_dict

    torch.manual_seed(0)
    dinov2_config = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=518)
    dinov2 = Dinov2Model(dinov2_config).eval()
    with torch.no_grad():
        dinov2.embeddings.mask_token.normal_()
    model = DepthAnythingHFForDepthEstimation(tiny_config()).eval()  # the mask token arrives with the weights
    model.encoder.load_state_dict(dinov2_to_encoder_state_dict(dinov2.state_dict(), model.encoder))
    pixel_values = torch.randn(2, 3, 518, 518)
    bool_masked_pos = torch.rand(2, 37 * 37) < 0.4
    with torch.no_grad():
        expected = dinov2(pixel_values, bool_masked_pos=bool_masked_pos).last_hidden_state[:, 1:]
        masked = model(pixel_values, bool_masked_pos=bool_masked_pos, output_encoder_features=True).encoder_features
        unmasked = model(pixel_values, output_encoder_features=True).encoder_features
    torch.testing.assert_close(masked, expected, rtol=1e-4, atol=1e-5)
    assert (masked - unmasked).abs().max() > 0.1
    with pytest.raises(ValueError, match="bool_masked_pos must have shape"):
        model(pixel_values, bool_masked_pos=bool_masked_pos[:, :10])


@pytest.mark.parametrize("checkpointing", [False, True])
def test_every_parameter_gets_a_gradient_in_training(tiny_model, checkpointing):
    # A parameter without a gradient is refused by DistributedDataParallel and kept by no optimiser step.
    tiny_model.train()
    if checkpointing:
        tiny_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    pixel_values, target = torch.randn(2, 3, 42, 42), torch.rand(2, 42, 42)
    for bool_masked_pos in (None, torch.rand(2, 9) < 0.5):
        tiny_model.zero_grad(set_to_none=True)
        tiny_model(pixel_values, labels=target, bool_masked_pos=bool_masked_pos).loss.backward()
        for name, parameter in tiny_model.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert {"encoder.mask_token", "neck.fusion_blocks.3.residual_unit1.conv1.weight"} <= set(tiny_model.state_dict())
