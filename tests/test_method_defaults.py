"""The paper's settings where users meet them: the loss functions' defaults, the student's loss settings, the
flags the training scripts parse, the strong perturbation's defaults (docs/method.md section 4) and the released
configurations (section 1). Each default is checked by its effect where one can be seen, not only by its value."""

import importlib.util
from pathlib import Path

import pytest
import torch

from depth_anything_hf import DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation
from depth_anything_hf.data.transforms import StrongPerturbation
from depth_anything_hf.losses import feature_alignment_loss
from depth_anything_hf.training.batches import DepthBatch
from depth_anything_hf.training.objectives import StudentLossSettings, student_losses

SCRIPTS = Path(__file__).resolve().parents[1] / "training_scripts"
PAPER_ALPHA = 0.85


def features_with_cosines(cosines: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Student and frozen features [1, N, 2] whose patch i has cosine similarity `cosines[i]`."""
    angles = torch.tensor(cosines, dtype=torch.float64).acos()
    student = torch.tensor([[1.0, 0.0]]).expand(len(cosines), 2)
    frozen = torch.stack([angles.cos(), angles.sin()], dim=1).float()
    return student[None].clone(), frozen[None]


def parse_script_args(name: str, argv: list[str]):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_args(argv)


# Patches just inside and just outside the margin 0.85, and one far from it: only a margin in (0.84, 0.86]
# keeps exactly the first and the last, giving L_feat = 1 - mean(0.84, 0.2) = 0.48.
STRADDLING_COSINES = [0.84, 0.86, 0.2]
LOSS_WITH_THE_PAPER_MARGIN = 1 - (0.84 + 0.2) / 2


def test_feature_alignment_default_margin_is_the_papers():
    student, frozen = features_with_cosines(STRADDLING_COSINES)
    torch.testing.assert_close(feature_alignment_loss(student, frozen), torch.tensor(LOSS_WITH_THE_PAPER_MARGIN))
    # The case tells margins apart: 0.5 or 0.9 would give other values.
    assert feature_alignment_loss(student, frozen, alpha=0.5).item() == pytest.approx(0.8)
    assert feature_alignment_loss(student, frozen, alpha=0.9).item() == pytest.approx(1 - (0.84 + 0.86 + 0.2) / 3)


def test_student_loss_settings_default_to_the_papers_margin():
    assert StudentLossSettings().alpha == PAPER_ALPHA
    student, frozen = features_with_cosines(STRADDLING_COSINES)
    maps = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0))
    pseudo_labeled = DepthBatch(torch.rand(1, 3, 8, 8), maps, torch.ones(1, 8, 8, dtype=torch.bool))
    losses = student_losses(maps, None, pseudo_labeled, torch.ones(1, 8, 8), StudentLossSettings(), student, frozen)
    torch.testing.assert_close(losses["feature_alignment"], torch.tensor(LOSS_WITH_THE_PAPER_MARGIN))


def test_train_student_flags_default_to_the_paper():
    args = parse_script_args(
        "train_student", ["--output_dir", "out", "--dataset", "d", "--pseudo_labels", "p", "--encoder_init", "none",
                          "--feature_alignment_encoder", "dinov2"],
    )  # fmt: skip
    assert args.alpha == PAPER_ALPHA
    assert args.cutmix_probability == 0.5
    assert args.unlabeled_ratio == 2.0 and (args.num_labeled, args.num_unlabeled) == (2, 4)
    assert (args.encoder_learning_rate, args.decoder_learning_rate) == (5e-6, 5e-5)
    assert (args.gradient_matching_weight, args.ignore_largest_fraction) == (0.0, 0.0)  # V1 unless asked for V2
    assert not args.no_feature_alignment


def test_train_teacher_flags_default_to_the_paper():
    args = parse_script_args("train_teacher", ["--output_dir", "out", "--dataset", "d", "--encoder_init", "none"])
    assert (args.encoder_learning_rate, args.decoder_learning_rate) == (5e-6, 5e-5)
    assert args.num_train_epochs == 20 and args.lr_scheduler == "linear"
    assert args.resolution == 518


def test_strong_perturbation_defaults_are_unimatchs():
    # UniMatch's strong view: ColorJitter(0.5, 0.5, 0.5, 0.25) with p = 0.8, grayscale p = 0.2, blur p = 0.5 with
    # sigma in [0.1, 2].
    perturbation = StrongPerturbation()
    assert perturbation.jitter_probability == 0.8
    assert (perturbation.brightness, perturbation.contrast, perturbation.saturation, perturbation.hue) == (
        0.5, 0.5, 0.5, 0.25
    )  # fmt: skip
    assert (perturbation.grayscale_probability, perturbation.blur_probability) == (0.2, 0.5)
    assert tuple(perturbation.blur_sigma) == (0.1, 2.0)


def test_released_configurations_follow_the_method(tiny_config):
    # docs/method.md section 1: patch 14, position embeddings stored for a 37x37 grid, LayerScale initialised to 1, qkv
    # bias, LayerNorm eps 1e-6; a model built from a config without overrides uses that eps in every LayerNorm.
    for version, size in (("v1", "small"), ("v2", "large")):
        config = DepthAnythingHFConfig.from_variant(version, size)
        assert (config.patch_size, config.image_size // config.patch_size) == (14, 37)
        assert (config.layerscale_value, config.qkv_bias, config.layer_norm_eps) == (1.0, True, 1e-6)
    model = DepthAnythingHFForDepthEstimation(tiny_config())
    layer_norms = [module for module in model.modules() if isinstance(module, torch.nn.LayerNorm)]
    assert layer_norms and all(layer_norm.eps == 1e-6 for layer_norm in layer_norms)
