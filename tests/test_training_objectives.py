"""Training batches and objectives of both stages: targets, batch composition, CutMix input and losses, the
losses going down on a fixed batch, and online and precomputed pseudo-labels giving the same student loss."""

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from accelerate import Accelerator

from depth_anything_hf import DepthAnythingHFForDepthEstimation, DepthAnythingHFImageProcessor
from depth_anything_hf.data import load_unlabeled_images, make_labeled_sample, sample_to_tensors
from depth_anything_hf.data.pseudo_labels import load_pseudo_labels
from depth_anything_hf.data.transforms import PairedResizeCropFlip, StrongPerturbation
from depth_anything_hf.data_engine.labeling import label_images, teacher_sha256
from depth_anything_hf.data_engine.shards import pseudo_label_table
from depth_anything_hf.losses import affine_invariant_loss, cutmix_gradient_matching_loss, gradient_matching_loss
from depth_anything_hf.training.batches import (
    DepthBatch,
    labeled_batch,
    metric_depth_batch,
    normalize_images,
    online_pseudo_labeled_samples,
    pseudo_labeled_batch,
    split_batch_size,
)
from depth_anything_hf.training.objectives import (
    StudentLossSettings,
    depth_loss,
    perturb_and_mix,
    student_flat_maps,
    student_losses,
    teacher_flat_maps,
)
from depth_anything_hf.training.runtime import parameter_groups
from depth_anything_hf.training.tracking import TrainingProgress

RESOLUTION = 28
NO_PERTURBATION = StrongPerturbation(jitter_probability=0.0, grayscale_probability=0.0, blur_probability=0.0)


def seeded_tiny_model(tiny_config, seed: int = 0) -> DepthAnythingHFForDepthEstimation:
    torch.manual_seed(seed)
    model = DepthAnythingHFForDepthEstimation(tiny_config(image_size=RESOLUTION))
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)  # most pixels past the final ReLU
    return model


def synthetic_examples(synthetic_rgbd: Path, count: int) -> list[dict]:
    from depth_anything_hf.data import load_labeled_dataset

    return list(load_labeled_dataset(synthetic_rgbd, split=f"train[:{count}]"))


def test_batch_split_follows_the_ratio():
    assert split_batch_size(3, 2.0) == (1, 2)
    assert split_batch_size(6, 2.0) == (2, 4)
    assert split_batch_size(4, 1.0) == (2, 2)
    assert split_batch_size(5, 1.5) == (2, 3)
    assert split_batch_size(5, math.inf) == (0, 5)
    for batch_size, ratio in ((2, 2.0), (4, 2.0), (1, 1.0)):
        with pytest.raises(ValueError, match=f"--train_batch_size {batch_size} cannot"):
            split_batch_size(batch_size, ratio)


def test_labeled_targets_are_normalised_disparity_with_sky_at_zero():
    depth = np.linspace(1.0, 4.0, RESOLUTION * RESOLUTION, dtype=np.float32).reshape(RESOLUTION, RESOLUTION)
    valid = np.ones_like(depth, dtype=bool)
    valid[0, :5] = False
    sky = np.zeros_like(valid)
    sky[-1, :] = True
    image = np.random.default_rng(0).integers(0, 256, (RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    example = make_labeled_sample(
        image=image, depth=depth, depth_kind="depth", valid_mask=valid, sky_mask=sky, dataset="d", sample_id="0"
    )
    keep = PairedResizeCropFlip(RESOLUTION, flip_probability=0.0)  # same size: no resize, no crop, no flip
    batch = labeled_batch([example], keep, torch.device("cpu"), torch.Generator().manual_seed(0))

    measured = valid & ~sky
    disparity = 1.0 / depth
    low, high = disparity[measured].min(), disparity[measured].max()
    expected = np.where(measured, (disparity - low) / (high - low), 0.0)
    torch.testing.assert_close(batch.disparity[0], torch.from_numpy(expected).float())
    assert torch.equal(batch.supervised_mask[0], torch.from_numpy(measured | sky))
    torch.testing.assert_close(batch.images[0], torch.from_numpy(image).permute(2, 0, 1).float() / 255)

    # A dataset that stores disparity gets the same target from it.
    as_disparity = make_labeled_sample(
        image=image, depth=disparity, depth_kind="disparity", valid_mask=valid, sky_mask=sky, dataset="d", sample_id="0"
    )
    from_disparity = labeled_batch([as_disparity], keep, torch.device("cpu"), torch.Generator().manual_seed(0))
    torch.testing.assert_close(from_disparity.disparity, batch.disparity)


def test_metric_batch_of_mixed_sizes_crops_each_sample_as_its_own_geometry_call():
    """Each sample, whatever its size, must get the crop and flip that a geometry call of its own,
    in batch order, draws."""
    rng = np.random.default_rng(1)
    examples = []
    for index, (height, width) in enumerate(((40, 40), (40, 40), (30, 50), (40, 40))):
        depth = rng.uniform(0.5, 30.0, (height, width)).astype(np.float32)
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        examples.append(
            make_labeled_sample(
                image=image, depth=depth, depth_kind="depth", valid_mask=depth > 1.0, dataset="d", sample_id=str(index)
            )
        )
    geometry = PairedResizeCropFlip(28)
    batch = metric_depth_batch(examples, geometry, torch.device("cpu"), torch.Generator().manual_seed(5), 0.1, 20.0)

    one_by_one = torch.Generator().manual_seed(5)
    for index, example in enumerate(examples):
        sample = sample_to_tensors(example)
        expected = geometry(sample["image"], sample["depth"], sample["valid_mask"], generator=one_by_one)
        assert torch.equal(batch.images[index], expected.image)
        in_range = expected.valid_mask & (expected.depth >= 0.1) & (expected.depth <= 20.0)
        assert torch.equal(batch.valid_mask[index], in_range)
        assert torch.equal(batch.depth[index], torch.where(in_range, expected.depth, 0.0))


def test_pixel_values_are_imagenet_normalised():
    images = torch.rand(2, 3, 4, 4)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(normalize_images(images), (images - mean) / std)


def test_cutmix_input_pastes_a_box_of_each_image_onto_the_previous_one():
    clean = torch.rand(4, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(0))
    mixed, mix_mask = perturb_and_mix(clean, NO_PERTURBATION, 1.0, torch.Generator().manual_seed(1))
    box = mix_mask[:, None] > 0.5
    assert torch.equal(mixed, torch.where(box, clean, clean.roll(1, dims=0)))
    assert ((mix_mask.flatten(1).mean(1) > 0) & (mix_mask.flatten(1).mean(1) < 1)).all()  # a box in every sample
    unmixed, no_mix = perturb_and_mix(clean, NO_PERTURBATION, 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(unmixed, clean) and bool((no_mix == 1).all())


def test_depth_loss_adds_the_weighted_gradient_matching_term():
    prediction, target = torch.rand(2, 16, 16), torch.rand(2, 16, 16)
    mask = torch.rand(2, 16, 16) > 0.2
    plain = affine_invariant_loss(prediction, target, mask)
    assert torch.equal(depth_loss(prediction, target, mask), plain)
    torch.testing.assert_close(
        depth_loss(prediction, target, mask, 2.0), plain + 2.0 * gradient_matching_loss(prediction, target, mask)
    )


def test_cutmix_gradient_matching_is_area_weighted_per_region():
    generator = torch.Generator().manual_seed(0)
    student, teacher_a, teacher_b = (torch.rand(2, 16, 32, generator=generator) for _ in range(3))
    # The region boundary at column 8 lies on the grid of every scale (strides 1, 2, 4, 8), so each region is
    # the same as its cropped half.
    left_quarter = torch.zeros(2, 16, 32)
    left_quarter[:, :, :8] = 1
    expected = torch.stack(
        [
            0.25 * gradient_matching_loss(student[i : i + 1, :, :8], teacher_a[i : i + 1, :, :8])
            + 0.75 * gradient_matching_loss(student[i : i + 1, :, 8:], teacher_b[i : i + 1, :, 8:])
            for i in range(2)
        ]
    ).mean()
    torch.testing.assert_close(cutmix_gradient_matching_loss(student, teacher_a, teacher_b, left_quarter), expected)


def test_student_losses_are_the_terms_and_their_mean():
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand(3, 16, 16, generator=generator)
    labeled = DepthBatch(torch.rand(1, 3, 16, 16), torch.rand(1, 16, 16, generator=generator), torch.ones(1, 16, 16, dtype=torch.bool))
    pseudo = DepthBatch(torch.rand(2, 3, 16, 16), torch.rand(2, 16, 16, generator=generator), torch.ones(2, 16, 16, dtype=torch.bool))
    no_mix = torch.ones(2, 16, 16)
    student_features, frozen_features = torch.randn(3, 4, 8), torch.randn(2, 4, 8)
    losses = student_losses(prediction, labeled, pseudo, no_mix, StudentLossSettings(alpha=0.85), student_features, frozen_features)

    torch.testing.assert_close(losses["labeled"], affine_invariant_loss(prediction[:1], labeled.disparity))
    torch.testing.assert_close(losses["unlabeled"], affine_invariant_loss(prediction[1:], pseudo.disparity))
    cosine = torch.nn.functional.cosine_similarity(student_features[1:], frozen_features, dim=-1)
    kept = cosine <= 0.85
    torch.testing.assert_close(losses["feature_alignment"], 1 - cosine[kept].mean())
    torch.testing.assert_close(
        losses["total"], (losses["labeled"] + losses["unlabeled"] + losses["feature_alignment"]) / 3
    )

    unlabeled_only = student_losses(prediction[1:], None, pseudo, no_mix, StudentLossSettings())
    assert set(unlabeled_only) == {"unlabeled", "total"}
    torch.testing.assert_close(unlabeled_only["total"], losses["unlabeled"])


def test_flat_maps_left_out_of_the_losses_are_counted():
    """A dead (all-zero) output or a constant target gives no loss: the scripts count and log such maps."""
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand(3, 8, 8, generator=generator)
    prediction[0] = 0.0  # a dead labeled prediction
    labeled = DepthBatch(torch.rand(1, 3, 8, 8), torch.rand(1, 8, 8, generator=generator), torch.ones(1, 8, 8, dtype=torch.bool))
    pseudo_targets = torch.rand(2, 8, 8, generator=generator)
    pseudo_targets[1, :4] = 0.7  # constant inside the CutMix box of the second unlabeled image
    pseudo = DepthBatch(torch.rand(2, 3, 8, 8), pseudo_targets, torch.ones(2, 8, 8, dtype=torch.bool))
    mix = torch.zeros(2, 8, 8)
    mix[:, :4] = 1  # region M: the top half, against T(u_a); the rest against T(u_b), the batch rolled by one
    assert teacher_flat_maps(prediction[:1], labeled.disparity, labeled.supervised_mask).item() == 1
    # Labeled map 0, and region M of unlabeled image 1 (its own target is flat there).
    assert student_flat_maps(prediction, labeled, pseudo, mix).item() == 2
    without_dead = prediction.clone()
    without_dead[0] = torch.rand(8, 8, generator=generator)
    assert student_flat_maps(without_dead, labeled, pseudo, mix).item() == 1
    assert student_flat_maps(without_dead[1:], None, pseudo, torch.ones(2, 8, 8)).item() == 0


def test_ignoring_the_largest_losses_on_pseudo_labels_lowers_the_unlabeled_loss():
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand(2, 16, 16, generator=generator)
    pseudo = DepthBatch(torch.rand(2, 3, 16, 16), torch.rand(2, 16, 16, generator=generator), torch.ones(2, 16, 16, dtype=torch.bool))
    mix = torch.ones(2, 16, 16)
    full = student_losses(prediction, None, pseudo, mix, StudentLossSettings())["unlabeled"]
    trimmed = student_losses(prediction, None, pseudo, mix, StudentLossSettings(ignore_largest_fraction=0.1))["unlabeled"]
    assert trimmed < full


def overfit(model, compute_losses, steps: int = 25) -> list[float]:
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3, 1e-2))
    history = []
    for _ in range(steps):
        loss = compute_losses(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


def test_teacher_loss_goes_down_on_a_fixed_batch(tiny_config, synthetic_rgbd):
    batch = labeled_batch(
        synthetic_examples(synthetic_rgbd, 2), PairedResizeCropFlip(RESOLUTION), torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    history = overfit(
        seeded_tiny_model(tiny_config).train(),
        lambda model: depth_loss(model(normalize_images(batch.images)).predicted_depth, batch.disparity, batch.supervised_mask),
    )
    assert history[-1] < 0.6 * history[0], history


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, tiny_config):
    directory = tmp_path_factory.mktemp("teacher")
    seeded_tiny_model(tiny_config, seed=1).save_pretrained(directory)
    DepthAnythingHFImageProcessor(size=RESOLUTION * 2).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory, write_unlabeled_photos):
    # Landscape, portrait and square photos: the teacher labels them at three input sizes.
    return write_unlabeled_photos(tmp_path_factory.mktemp("photos"), 4)


def test_student_loss_goes_down_on_a_fixed_batch(photos_dir, teacher_dir, tiny_config, synthetic_rgbd):
    teacher = DepthAnythingHFForDepthEstimation.from_pretrained(teacher_dir).eval()
    processor = DepthAnythingHFImageProcessor.from_pretrained(teacher_dir)
    generator = torch.Generator().manual_seed(0)
    examples = list(load_unlabeled_images(photos_dir))[:2]
    pseudo = pseudo_labeled_batch(
        online_pseudo_labeled_samples(examples, teacher, processor), PairedResizeCropFlip(RESOLUTION), torch.device("cpu"), generator
    )
    labeled = labeled_batch(synthetic_examples(synthetic_rgbd, 1), PairedResizeCropFlip(RESOLUTION), torch.device("cpu"), generator)
    mixed, mix_mask = perturb_and_mix(pseudo.images, StrongPerturbation(), 1.0, generator)
    pixel_values = normalize_images(torch.cat([labeled.images, mixed]))
    frozen_features = torch.randn(2, 4, 32, generator=generator)

    def total_loss(model):
        outputs = model(pixel_values, output_encoder_features=True)
        losses = student_losses(
            outputs.predicted_depth, labeled, pseudo, mix_mask, StudentLossSettings(), outputs.encoder_features, frozen_features
        )
        return losses["total"]

    history = overfit(seeded_tiny_model(tiny_config).train(), total_loss)
    assert history[-1] < 0.6 * history[0], history


def test_online_and_precomputed_pseudo_labels_give_the_same_student_loss(photos_dir, teacher_dir, tmp_path, tiny_config):
    teacher = DepthAnythingHFForDepthEstimation.from_pretrained(teacher_dir).eval()
    processor = DepthAnythingHFImageProcessor.from_pretrained(teacher_dir)
    examples = [{**example, "dataset": "photos"} for example in load_unlabeled_images(photos_dir)]

    # Precomputed: the data engine's table written as a parquet shard, read back as student samples.
    disparities = label_images(teacher, processor, [example["image"] for example in examples])
    (tmp_path / "data").mkdir()
    table = pseudo_label_table(examples, disparities, str(teacher_dir), teacher_sha256(teacher))
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001-000000.parquet")
    precomputed = list(load_pseudo_labels(tmp_path))
    online = online_pseudo_labeled_samples(examples, teacher, processor)
    assert [sample["id"] for sample in precomputed] == [sample["id"] for sample in online]
    assert len({tuple(sample["disparity"].shape) for sample in online}) == 3  # three input sizes

    student = seeded_tiny_model(tiny_config, seed=2).eval()

    def student_loss(samples) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        pseudo = pseudo_labeled_batch(samples, PairedResizeCropFlip(RESOLUTION), torch.device("cpu"), generator)
        mixed, mix_mask = perturb_and_mix(pseudo.images, StrongPerturbation(), 0.5, generator)
        with torch.no_grad():
            prediction = student(normalize_images(mixed)).predicted_depth
        return student_losses(prediction, None, pseudo, mix_mask, StudentLossSettings())["total"]

    online_loss, precomputed_loss = student_loss(online), student_loss(precomputed)
    assert online_loss > 0
    assert torch.equal(online_loss, precomputed_loss)


def test_flat_maps_are_logged_with_a_warning(tmp_path, caplog):
    accelerator = Accelerator(cpu=True)
    logged = []
    accelerator.log = lambda values, step: logged.append((step, values))
    args = argparse.Namespace(logging_steps=2, image_logging_steps=0, checkpointing_steps=100, output_dir=str(tmp_path))
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    progress = TrainingProgress(accelerator, args, max_train_steps=4, global_step=0, name="test", model=model)
    with caplog.at_level(logging.WARNING):
        for flat in (0, 3, 0, 0):
            progress.add_micro_batch({"labeled": torch.tensor(0.5)}, 2, torch.tensor(flat))
            progress.end_step(optimizer, lambda: None)
    assert [(step, values["flat_maps"], values["flat_maps_total"]) for step, values in logged] == [(2, 3, 3), (4, 0, 3)]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 map(s) without any spread" in warnings[0] and "steps 1-2" in warnings[0]
