import os

# Tests never reach the Hub: fail fast instead of retrying network calls.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from depth_anything_hf import DepthAnythingHFConfig  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_config(**overrides) -> DepthAnythingHFConfig:
    """A 4-block, 32-wide model: the same code paths as the released sizes in milliseconds."""
    settings = dict(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        # Wider than the default 0.02 so that random outputs vary visibly after a dozen layers.
        initializer_range=0.15,
    )
    settings.update(overrides)
    return DepthAnythingHFConfig(**settings)


@pytest.fixture
def tiny_model():
    from depth_anything_hf import DepthAnythingHFForDepthEstimation

    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    # Lift the head so that most pixels are past the final ReLU.
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    return model
