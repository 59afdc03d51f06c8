"""The inference fast paths of the model compute what the plain formulas say (docs/method.md section 1)."""

import pytest
import torch

from depth_anything_hf import DepthAnythingHFForDepthEstimation


def test_block_residuals_match_the_layer_scale_formula(tiny_model):
    """x + gamma_1 * attn(norm1(x)), then + gamma_2 * mlp(norm2(.)): the fused residual adds are the same sums."""
    block = tiny_model.encoder.blocks[1]
    with torch.no_grad():
        block.ls1.gamma.uniform_(0.5, 2.0)
        block.ls2.gamma.uniform_(-2.0, -0.5)
        hidden_states = torch.randn(2, 13, 32)
        after_attention = hidden_states + block.attn(block.norm1(hidden_states))[0] * block.ls1.gamma
        expected = after_attention + block.mlp(block.norm2(after_attention)) * block.ls2.gamma
        torch.testing.assert_close(block(hidden_states)[0], expected)


def test_drop_path_in_training_drops_residual_branches_per_sample(tiny_config):
    """Training with stochastic depth keeps the plain path: each sample's branch is kept (scaled by 1 / keep) or
    dropped, so a sample's output is one of four sums; in eval mode both branches are always added."""
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config(drop_path_rate=0.5)).train()
    block = model.encoder.blocks[-1]  # drop probability 0.5
    hidden_states = torch.randn(64, 13, 32)
    with torch.no_grad():
        attention = block.ls1(block.attn(block.norm1(hidden_states))[0]) / 0.5
        candidates = []
        for after_attention in (hidden_states, hidden_states + attention):
            mlp = block.ls2(block.mlp(block.norm2(after_attention))) / 0.5
            candidates += [after_attention, after_attention + mlp]
        output = block(hidden_states)[0]
    matches = torch.stack([(output - candidate).abs().amax(dim=(1, 2)) < 1e-5 for candidate in candidates])
    assert matches.any(dim=0).all()
    assert (matches.sum(dim=1) > 0).sum() >= 3  # 64 samples: the four outcomes are all but sure to occur


def test_final_norm_runs_once_per_tapped_block(tiny_model):
    """The last block is tapped (out_indices [0, 1, 2, 3]): its normed tokens serve as encoder features too."""
    calls = []
    tiny_model.encoder.norm.register_forward_hook(lambda module, inputs, output: calls.append(output))
    with torch.no_grad():
        outputs = tiny_model(torch.randn(1, 3, 42, 56), output_encoder_features=True)
    assert len(calls) == len(tiny_model.config.out_indices)
    torch.testing.assert_close(outputs.encoder_features, calls[-1][:, 1:])


@pytest.mark.parametrize("batch_size", [1, 2])
def test_decoder_convolutions_get_channels_last_maps(tiny_model, batch_size):
    """The token grid enters the decoder as a channels-last view (no NCHW transpose copy); the layout is kept."""
    layouts = {}

    def record(name):
        def hook(module, inputs):
            layouts[name] = inputs[0].is_contiguous(memory_format=torch.channels_last)

        return hook

    tiny_model.neck.projections[0].register_forward_pre_hook(record("projection"))
    tiny_model.neck.fusion_blocks[0].residual_unit2.conv2.register_forward_pre_hook(record("fusion"))
    tiny_model.head.conv2.register_forward_pre_hook(record("head"))
    pixel_values = torch.randn(batch_size, 3, 42, 56)
    with torch.no_grad():
        tiny_model(pixel_values)
    assert layouts == {"projection": batch_size == 1, "fusion": True, "head": True}
