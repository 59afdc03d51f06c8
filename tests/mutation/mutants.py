"""Planted bugs in the modules that hold the method, for `run_mutants.py`.

Each mutant replaces one snippet (which must occur exactly once in its file) with a plausible wrong version: a
changed paper default, a wrong sign or direction, a dropped term, an off-by-one, the wrong statistic. Each names
the fast tests that should catch it; the runner stops a mutant's run at the first failing test.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]


# Fast test subsets per area (the overfitting and end-to-end tests are left out: minutes each).
LOSSES = ("tests/test_losses.py", "tests/test_training_student_losses.py", "tests/test_method_defaults.py")
OBJECTIVES = (
    "tests/test_training_objectives.py", "-k", "not goes_down and not online_and_precomputed",
    "tests/test_training_student_losses.py", "tests/test_method_defaults.py",
)  # fmt: skip
TRANSFORMS = ("tests/test_data_transforms.py", "tests/test_data_transforms_statistics.py", "tests/test_method_defaults.py")
METRICS = ("tests/test_evaluation_metrics.py", "tests/test_evaluation_reference.py")
CONFIGURATION = (
    "tests/test_modeling.py::test_parameter_counts_match_the_released_models",
    "tests/test_modeling.py::test_variants_carry_their_tapped_layers",
    "tests/test_modeling.py::test_transformers_configs_keep_the_release",
    "tests/test_method_defaults.py",
)
ARGUMENTS = ("tests/test_method_defaults.py", "tests/test_training_checkpointing.py::test_the_scripts_share_their_flags")

LOSSES_FILE = "depth_anything_hf/losses.py"
OBJECTIVES_FILE = "depth_anything_hf/training/objectives.py"
TRANSFORMS_FILE = "depth_anything_hf/data/transforms.py"
METRICS_FILE = "depth_anything_hf/evaluation/metrics.py"
ALIGNMENT_FILE = "depth_anything_hf/evaluation/alignment.py"
CONFIGURATION_FILE = "depth_anything_hf/configuration_depth_anything_hf.py"
STUDENT_SCRIPT = "training_scripts/train_student.py"
ARGUMENTS_FILE = "depth_anything_hf/training/arguments.py"

MUTANTS = [
    # --- losses (eq. 1-2, 4-7, gradient matching, SiLog) ---
    Mutant("loss: feature-alignment margin default 0.5", LOSSES_FILE,
           "frozen_features: Tensor, alpha: float = 0.85)", "frozen_features: Tensor, alpha: float = 0.5)", LOSSES),
    Mutant("loss: feature alignment keeps the patches above the margin", LOSSES_FILE,
           "kept = cosine <= alpha", "kept = cosine >= alpha", LOSSES),
    Mutant("loss: feature alignment without the margin", LOSSES_FILE,
           "kept = cosine <= alpha", "kept = cosine <= 1.0", LOSSES),
    Mutant("loss: upper instead of lower median", LOSSES_FILE,
           "lower_middle = ((count - 1).clamp_min(0) // 2)", "lower_middle = ((count).clamp_min(0) // 2)", LOSSES),
    Mutant("loss: scale s(d) as mean squared deviation", LOSSES_FILE,
           "scale = torch.where(mask, centered.abs(), 0.0)", "scale = torch.where(mask, centered.square(), 0.0)", LOSSES),
    Mutant("loss: target is depth, not disparity", LOSSES_FILE,
           "raw_disparity = torch.where(valid, depth_maps.reciprocal(), 0.0)",
           "raw_disparity = torch.where(valid, depth_maps, 0.0)", LOSSES),
    Mutant("loss: sky not supervised", LOSSES_FILE,
           "return disparity.view_as(depth), (valid | sky).view(depth.shape)",
           "return disparity.view_as(depth), valid.view(depth.shape)", LOSSES),
    Mutant("loss: CutMix regions weighted equally", LOSSES_FILE,
           "losses = area_a * loss_a + (1 - area_a) * loss_b", "losses = 0.5 * loss_a + 0.5 * loss_b", LOSSES),
    Mutant("loss: CutMix region 1-M compared over the whole image", LOSSES_FILE,
           "valid & ~mix)", "valid)", LOSSES),
    Mutant("loss: gradient-matching strides 1, 2, 3, 4", LOSSES_FILE,
           "step = 2**scale", "step = scale + 1", LOSSES),
    Mutant("loss: ignore_largest_fraction drops the smallest losses", LOSSES_FILE,
           "argsort(dim=1, descending=True)", "argsort(dim=1, descending=False)", LOSSES),
    Mutant("loss: SiLog adds the mean term", LOSSES_FILE,
           "- lambd * (log_ratio.sum() / count) ** 2", "+ lambd * (log_ratio.sum() / count) ** 2", LOSSES),
    # --- objectives (the student's and teacher's losses assembled) ---
    Mutant("objectives: student margin default 0.5", OBJECTIVES_FILE,
           "alpha: float = 0.85", "alpha: float = 0.5", OBJECTIVES),
    Mutant("objectives: second CutMix target rolled the other way", OBJECTIVES_FILE,
           "target_b = cutmix_partners(pseudo_labeled.disparity)",
           "target_b = pseudo_labeled.disparity.roll(-1, dims=0)", OBJECTIVES),
    Mutant("objectives: second CutMix target equal to the first", OBJECTIVES_FILE,
           "target_b = cutmix_partners(pseudo_labeled.disparity)", "target_b = pseudo_labeled.disparity", OBJECTIVES),
    Mutant("objectives: V2 gradient matching dropped from L_u", OBJECTIVES_FILE,
           "    if settings.gradient_matching_weight:\n", "    if False:\n", OBJECTIVES),
    Mutant("objectives: V2 gradient matching dropped from L_l", OBJECTIVES_FILE,
           "    if gradient_matching_weight:\n", "    if False:\n", OBJECTIVES),
    Mutant("objectives: total is the sum, not the mean", OBJECTIVES_FILE,
           "torch.stack(list(losses.values())).mean()", "torch.stack(list(losses.values())).sum()", OBJECTIVES),
    Mutant("objectives: feature alignment on the labeled images", OBJECTIVES_FILE,
           "student_features[num_labeled:], frozen_features", "student_features[: len(frozen_features)], frozen_features",
           OBJECTIVES),
    Mutant("objectives: CutMix of the clean images (perturbation lost)", OBJECTIVES_FILE,
           "cutmix_with_partners(perturbed, mix_mask)", "cutmix_with_partners(clean_images, mix_mask)", OBJECTIVES),
    Mutant("objectives: V2 pixel dropping not passed to L_u", OBJECTIVES_FILE,
           "ignore_largest_fraction=settings.ignore_largest_fraction", "ignore_largest_fraction=0.0", OBJECTIVES),
    # --- transforms (strong perturbation, CutMix, paired geometry) ---
    Mutant("transforms: CutMix area U(0.2, 0.4)", TRANSFORMS_FILE,
           "area_range: tuple[float, float] = (0.02, 0.4)", "area_range: tuple[float, float] = (0.2, 0.4)", TRANSFORMS),
    Mutant("transforms: CutMix box never touches the right edge", TRANSFORMS_FILE,
           "left = ((width - box_width + 1)", "left = ((width - box_width)", TRANSFORMS),
    Mutant("transforms: CutMix box never touches the bottom edge", TRANSFORMS_FILE,
           "top = ((height - box_height + 1)", "top = ((height - box_height)", TRANSFORMS),
    Mutant("transforms: CutMix boxes never taller than wide", TRANSFORMS_FILE,
           "aspect_range: tuple[float, float] = (0.3, 1 / 0.3)", "aspect_range: tuple[float, float] = (0.3, 1.0)",
           TRANSFORMS),
    Mutant("transforms: CutMix applied with probability 1 - p", TRANSFORMS_FILE,
           "applied = _uniform(0.0, 1.0, batch_size, generator, device) < probability",
           "applied = _uniform(0.0, 1.0, batch_size, generator, device) < 1 - probability", TRANSFORMS),
    Mutant("transforms: hue shift passed in turns instead of radians", TRANSFORMS_FILE,
           "2 * math.pi * hue_turns", "hue_turns", TRANSFORMS),
    Mutant("transforms: hue jitter default 0.1", TRANSFORMS_FILE,
           "hue: float = 0.25,", "hue: float = 0.1,", TRANSFORMS),
    Mutant("transforms: apply_cutmix swaps u_a and u_b", TRANSFORMS_FILE,
           "torch.where(mask[:, None] > 0.5, images_a, images_b)",
           "torch.where(mask[:, None] > 0.5, images_b, images_a)", TRANSFORMS),
    Mutant("transforms: every image its own CutMix partner", TRANSFORMS_FILE,
           "return batch.roll(1, dims=0)", "return batch", TRANSFORMS),
    Mutant("transforms: flip with probability 1 - p", TRANSFORMS_FILE,
           "< self.flip_probability", "> self.flip_probability", TRANSFORMS),
    Mutant("transforms: long side resized to the resolution", TRANSFORMS_FILE,
           "scale = self.resolution / min(height, width)", "scale = self.resolution / max(height, width)", TRANSFORMS),
    # --- metrics and protocols ---
    Mutant("metrics: midas without its 1/depth_cap clamp", METRICS_FILE,
           "min_disparity = 1.0 / depth_cap if depth_cap is not None else tiny", "min_disparity = tiny", METRICS),
    Mutant("metrics: disparity and midas spaces swapped", METRICS_FILE,
           'if protocol == "disparity" else (', 'if protocol == "midas" else (', METRICS),
    Mutant("metrics: sq_rel divided by g squared", METRICS_FILE,
           '"sq_rel": _mean(difference.square() / target)', '"sq_rel": _mean(difference.square() / target.square())',
           METRICS),
    Mutant("metrics: delta1 counted with <=", METRICS_FILE,
           '"delta1": _mean(ratio < 1.25)', '"delta1": _mean(ratio <= 1.25)', METRICS),
    Mutant("metrics: abs_rel relative to the prediction", METRICS_FILE,
           '"abs_rel": _mean(difference.abs() / target)', '"abs_rel": _mean(difference.abs() / prediction)', METRICS),
    Mutant("metrics: silog with half the mean term", METRICS_FILE,
           "(mean_squared_log_error - _mean(log_error).square())",
           "(mean_squared_log_error - 0.5 * _mean(log_error).square())", METRICS),
    Mutant("metrics: log10 in base 2", METRICS_FILE,
           "_mean(log_error.abs()) / math.log(10)", "_mean(log_error.abs()) / math.log(2)", METRICS),
    Mutant("metrics: ground truth at the cap scored", METRICS_FILE,
           "mask &= gt_depth < depth_cap", "mask &= gt_depth <= 2 * depth_cap", METRICS),
    Mutant("metrics: the median protocol does not scale", METRICS_FILE,
           'if protocol == "median":', 'if protocol == "none":', METRICS),
    # --- alignment ---
    Mutant("alignment: median scaling computed with the mean", ALIGNMENT_FILE,
           "target.median().double() / prediction.median().double()",
           "target.mean().double() / prediction.mean().double()", METRICS),
    Mutant("alignment: least-squares shift with the wrong sign", ALIGNMENT_FILE,
           "mean_target - scale * mean_prediction", "mean_target + scale * mean_prediction", METRICS),
    Mutant("alignment: scale divided by the standard deviation", ALIGNMENT_FILE,
           "scale = covariance / var_prediction", "scale = covariance / var_prediction.sqrt()", METRICS),
    Mutant("alignment: sample covariance against population variance", ALIGNMENT_FILE,
           "covariance = (centered_values * centered_targets).sum(dtype=torch.float64) / count",
           "covariance = (centered_values * centered_targets).sum(dtype=torch.float64) / (count - 1)", METRICS),
    # --- configuration and the settings users meet ---
    Mutant("configuration: V2-small taps the last four blocks", CONFIGURATION_FILE,
           '"v2": {"small": [2, 5, 8, 11]', '"v2": {"small": [8, 9, 10, 11]', CONFIGURATION),
    Mutant("configuration: V1-large taps V2's blocks", CONFIGURATION_FILE,
           '"large": [20, 21, 22, 23]', '"large": [4, 11, 17, 23]', CONFIGURATION),
    Mutant("configuration: V1 upsamples with align_corners=True", CONFIGURATION_FILE,
           'return self.version != "v1"', "return True", CONFIGURATION),
    Mutant("configuration: small decoder with 128 fusion channels", CONFIGURATION_FILE,
           '"small": {"fusion_hidden_size": 64', '"small": {"fusion_hidden_size": 128', CONFIGURATION),
    Mutant("configuration: LayerNorm eps 1e-5", CONFIGURATION_FILE,
           "layer_norm_eps: float = 1e-6,", "layer_norm_eps: float = 1e-5,", CONFIGURATION),
    Mutant("settings: --alpha default 0.5", STUDENT_SCRIPT,
           '"--alpha", type=float, default=0.85', '"--alpha", type=float, default=0.5', ARGUMENTS),
    Mutant("settings: --cutmix_probability default 1.0", STUDENT_SCRIPT,
           '"--cutmix_probability", type=float, default=0.5', '"--cutmix_probability", type=float, default=1.0',
           ARGUMENTS),
    Mutant("settings: --unlabeled_ratio default 1", STUDENT_SCRIPT,
           "type=unlabeled_ratio,\n        default=2.0,", "type=unlabeled_ratio,\n        default=1.0,", ARGUMENTS),
    Mutant("settings: decoder learning rate 1x the encoder's", ARGUMENTS_FILE,
           "args.decoder_learning_rate = 10 * args.encoder_learning_rate",
           "args.decoder_learning_rate = args.encoder_learning_rate", ARGUMENTS),
    Mutant("settings: encoder learning rate 5e-5", ARGUMENTS_FILE,
           '"--encoder_learning_rate", type=float, default=5e-6', '"--encoder_learning_rate", type=float, default=5e-5',
           ARGUMENTS),
]
