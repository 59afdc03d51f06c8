import os
from pathlib import Path

# Tests never reach the Hub: fail fast instead of retrying network calls.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from depth_anything_hf import DepthAnythingHFConfig  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


# The shared data sit beside the repository: `../shared/data/` from its root.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _tiny_config(**overrides) -> DepthAnythingHFConfig:
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


@pytest.fixture(scope="session")
def tiny_config():
    """`tiny_config(**overrides)`: the configuration of a 4-block, 32-wide model, with `overrides` applied."""
    return _tiny_config


@pytest.fixture(scope="session")
def synthetic_rgbd() -> Path:
    """The shared 1,200-scene RGB-D folder (`../shared/data/synthetic-rgbd`); tests that need it are skipped,
    naming the path, where it is missing."""
    path = SHARED_DATA / "synthetic-rgbd"
    if not path.is_dir():
        pytest.skip(f"the shared synthetic RGB-D frames are missing: expected them at {path}")
    return path


@pytest.fixture(scope="session")
def write_unlabeled_photos(synthetic_rgbd):
    """`write_unlabeled_photos(directory, count, longest_side=64)`: `count` JPEG photos for the unlabeled streams,
    cut from the last shared RGB-D frames in turn landscape (3:2), portrait (2:3) and square, at most
    `longest_side` pixels (core dependencies only). Returns `directory`."""

    def write(directory: Path, count: int, longest_side: int = 64) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(sorted(synthetic_rgbd.glob("*.jpg"))[-count:]):
            with Image.open(frame) as image:
                width, height = image.size
                crops = [(width, height * 2 // 3), (width * 2 // 3, height), (width, height)]
                photo = image.convert("RGB").crop((0, 0, *crops[index % 3]))
            photo.thumbnail((longest_side, longest_side))
            photo.save(directory / f"{frame.stem}.jpg", quality=95)
        return directory

    return write


@pytest.fixture
def tiny_model(tiny_config):
    from depth_anything_hf import DepthAnythingHFForDepthEstimation

    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config()).eval()
    # Lift the head so that most pixels are past the final ReLU.
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    return model
