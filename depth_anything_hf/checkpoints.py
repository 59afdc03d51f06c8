"""Conversion between our parameter layout and the two layouts users have (docs/method.md section 2):

- the official `.pth` state dicts of Depth Anything V1/V2 (`pretrained.*` encoder, `depth_head.*` DPT head),
  whose names our encoder mirrors;
- transformers' `depth_anything` checkpoints as stored on disk (the Hub's `*-hf` repos): split q/k/v,
  `neck.fusion_stage.layers.{3,2,1,0}` holding `refinenet{1,2,3,4}`.

`DepthAnythingHFForDepthEstimation.from_official_checkpoint`, `from_pretrained` (on a transformers checkpoint)
and `export_to_transformers` call the loaders and the exporter at the end of this file. This file stays in the
package: it does not travel with the remote code.
"""

import json
import os
import re
import zipfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import DepthAnythingConfig, Dinov2Config
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.utils import cached_file

from .configuration_depth_anything_hf import SIZE_OF_HIDDEN_SIZE, TAPPED_LAYERS, DepthAnythingHFConfig

# (pattern in our layout, replacement in the official layout); applied to our keys in order.
_OFFICIAL_RENAMES = [
    (r"^encoder\.", "pretrained."),
    (r"^neck\.projections\.", "depth_head.projects."),
    (r"^neck\.resize_layers\.", "depth_head.resize_layers."),
    (r"^neck\.convs\.(\d)\.", lambda m: f"depth_head.scratch.layer{int(m.group(1)) + 1}_rn."),
    (r"^neck\.fusion_blocks\.(\d)\.", lambda m: f"depth_head.scratch.refinenet{int(m.group(1)) + 1}."),
    (r"\.residual_unit(\d)\.", r".resConfUnit\1."),
    (r"^head\.conv1\.", "depth_head.scratch.output_conv1."),
    (r"^head\.conv2\.", "depth_head.scratch.output_conv2.0."),
    (r"^head\.conv3\.", "depth_head.scratch.output_conv2.2."),
]

# Same idea for transformers' on-disk layout; qkv is handled separately (one fused matrix vs three).
_TRANSFORMERS_RENAMES = [
    (r"^encoder\.cls_token$", "backbone.embeddings.cls_token"),
    (r"^encoder\.mask_token$", "backbone.embeddings.mask_token"),
    (r"^encoder\.pos_embed$", "backbone.embeddings.position_embeddings"),
    (r"^encoder\.patch_embed\.proj\.", "backbone.embeddings.patch_embeddings.projection."),
    (r"^encoder\.blocks\.(\d+)\.", r"backbone.encoder.layer.\1."),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.ls(\d)\.gamma$", r".layer_scale\1.lambda1"),
    (r"\.mlp\.w12\.", ".mlp.weights_in."),
    (r"\.mlp\.w3\.", ".mlp.weights_out."),
    (r"^encoder\.norm\.", "backbone.layernorm."),
    (r"^neck\.projections\.(\d)\.", r"neck.reassemble_stage.layers.\1.projection."),
    (r"^neck\.resize_layers\.(\d)\.", r"neck.reassemble_stage.layers.\1.resize."),
    (r"^neck\.fusion_blocks\.(\d)\.", lambda m: f"neck.fusion_stage.layers.{3 - int(m.group(1))}."),
    (r"\.residual_unit(\d)\.conv(\d)\.", r".residual_layer\1.convolution\2."),
    (r"(fusion_stage\.layers\.\d)\.out_conv\.", r"\1.projection."),
]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: lists the keys that are missing, unexpected or of the wrong shape."""


def _rename(key: str, renames) -> str:
    for pattern, replacement in renames:
        key = re.sub(pattern, replacement, key)
    return key


def load_checked_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load `state_dict` strictly, raising one readable error that lists every mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if state_dict[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        lines = [f"{source} does not match the model {model.config.version or ''} {model.config.hidden_size}d:"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) + (" ..." if len(items) > 20 else ""))
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict(state_dict, strict=True)


def unreadable_files(folder: str | os.PathLike) -> list[str]:
    """The files of a model or training-checkpoint folder that do not load (a save or download cut short, a
    corrupt file), each with the reason: what names the culprit when a loader's own error does not.

    safetensors files are read in full; `torch.save` files (zip archives: accelerate's `.bin` and `.pkl`) have
    every member's checksum verified, which runs no pickle code; JSON files are parsed."""
    found = []
    for path in sorted(Path(folder).iterdir()):
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as weights:
                    for name in weights.keys():
                        weights.get_tensor(name)
            elif path.suffix in (".bin", ".pt", ".pth", ".pkl"):
                with zipfile.ZipFile(path) as archive:
                    corrupt_member = archive.testzip()
                if corrupt_member is not None:
                    raise zipfile.BadZipFile(f"member {corrupt_member} fails its checksum")
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
        except Exception as error:
            found.append(f"{path}: {type(error).__name__}: {error}")
    return found


# ----------------------------------------------------------------------------------------------------------
# Official .pth
# ----------------------------------------------------------------------------------------------------------


def read_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official `.pth` safely (`weights_only=True`), unwrapping `{"model": ...}` and `module.` prefixes
    (as the official metric training saves them)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"No checkpoint file at {path!s}") from None
    except Exception as error:
        raise ValueError(f"{path!s} is not a readable PyTorch checkpoint: {error}") from error
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, dict) or not all(torch.is_tensor(v) for v in checkpoint.values()):
        raise ValueError(f"{path!s} does not hold a state dict of tensors (got {type(checkpoint).__name__})")
    return {key.removeprefix("module."): value for key, value in checkpoint.items()}


def config_from_official_state_dict(
    state_dict: dict[str, torch.Tensor], version: str, depth_estimation_type: str = "relative", max_depth=None
) -> DepthAnythingHFConfig:
    """The official configuration of the size the weights have (inferred from the encoder width)."""
    if "pretrained.cls_token" not in state_dict:
        raise CheckpointMismatchError(
            "Not an official Depth Anything state dict: no 'pretrained.cls_token' key "
            f"(first keys: {list(state_dict)[:5]})"
        )
    hidden_size = state_dict["pretrained.cls_token"].shape[-1]
    if hidden_size not in SIZE_OF_HIDDEN_SIZE:
        raise CheckpointMismatchError(f"Unknown encoder width {hidden_size}; expected one of {list(SIZE_OF_HIDDEN_SIZE)}")
    return DepthAnythingHFConfig.from_variant(
        version, SIZE_OF_HIDDEN_SIZE[hidden_size], depth_estimation_type=depth_estimation_type, max_depth=max_depth
    )


def official_to_ours(official_state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename an official state dict into `model`'s layout (keys of `model` not found stay missing)."""
    ours_by_official = {_rename(key, _OFFICIAL_RENAMES): key for key in model.state_dict()}
    return {ours_by_official.get(key, key): value for key, value in official_state_dict.items()}


def ours_to_official(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {_rename(key, _OFFICIAL_RENAMES): value for key, value in state_dict.items()}


def load_official_checkpoint(model: torch.nn.Module, official_state_dict: dict[str, torch.Tensor], source: str) -> None:
    load_checked_state_dict(model, official_to_ours(official_state_dict, model), source)


# ----------------------------------------------------------------------------------------------------------
# transformers' depth_anything layout
# ----------------------------------------------------------------------------------------------------------


def ours_to_transformers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in transformers' on-disk `depth_anything` layout (q, k, v split: rows [:C], [C:2C], [2C:])."""
    converted = {}
    for key, value in state_dict.items():
        match = re.match(r"^encoder\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", key)
        if match:
            layer, kind = match.groups()
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                converted[f"backbone.encoder.layer.{layer}.attention.attention.{name}.{kind}"] = part.contiguous()
        else:
            converted[_rename(key, _TRANSFORMERS_RENAMES)] = value
    return converted


def transformers_to_ours(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Inverse of [`ours_to_transformers`] for the keys of `model`."""
    converted = {}
    for our_key in model.state_dict():
        match = re.match(r"^encoder\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", our_key)
        if match:
            layer, kind = match.groups()
            names = [f"backbone.encoder.layer.{layer}.attention.attention.{n}.{kind}" for n in ("query", "key", "value")]
            if all(name in state_dict for name in names):
                converted[our_key] = torch.cat([state_dict.pop(name) for name in names], dim=0)
            continue
        their_key = _rename(our_key, _TRANSFORMERS_RENAMES)
        if their_key in state_dict:
            converted[our_key] = state_dict.pop(their_key)
    converted.update(state_dict)  # leftovers surface as "unexpected" in load_checked_state_dict
    return converted


def config_from_transformers(config: DepthAnythingConfig | dict) -> DepthAnythingHFConfig:
    """Our configuration for a transformers `DepthAnythingConfig` (or its `config.json` dict)."""
    if not isinstance(config, dict):
        config = config.to_dict()
    backbone = config.get("backbone_config") or {}
    if backbone.get("model_type", "dinov2") != "dinov2" or config.get("backbone") not in (None, ""):
        raise ValueError(
            f"Only DINOv2 backbones are supported, got backbone {config.get('backbone') or backbone.get('model_type')}"
        )
    if config.get("reassemble_factors", [4, 2, 1, 0.5]) != [4, 2, 1, 0.5] or config.get("head_in_index", -1) != -1:
        raise ValueError("Only the standard DPT decoder (reassemble_factors [4, 2, 1, 0.5], head_in_index -1) is supported")
    # transformers counts the embeddings as stage 0, so block i is stage i + 1.
    out_indices = [index - 1 for index in backbone.get("out_indices", [9, 10, 11, 12])]
    depth_estimation_type = config.get("depth_estimation_type", "relative")
    # The release is not stored in transformers' config; its tapped layers tell V1 from V2.
    versions = [version for version, taps in TAPPED_LAYERS.items() if out_indices in taps.values()]
    return DepthAnythingHFConfig(
        version=versions[0] if len(versions) == 1 else None,
        hidden_size=backbone.get("hidden_size", 384),
        num_hidden_layers=backbone.get("num_hidden_layers", 12),
        num_attention_heads=backbone.get("num_attention_heads", 6),
        mlp_ratio=backbone.get("mlp_ratio", 4),
        use_swiglu_ffn=backbone.get("use_swiglu_ffn", False),
        layer_norm_eps=backbone.get("layer_norm_eps", 1e-6),
        layerscale_value=backbone.get("layerscale_value", 1.0),
        qkv_bias=backbone.get("qkv_bias", True),
        image_size=backbone.get("image_size", 518),
        patch_size=backbone.get("patch_size", 14),
        out_indices=out_indices,
        neck_hidden_sizes=config.get("neck_hidden_sizes", [48, 96, 192, 384]),
        fusion_hidden_size=config.get("fusion_hidden_size", 64),
        head_hidden_size=config.get("head_hidden_size", 32),
        depth_estimation_type=depth_estimation_type,
        max_depth=config.get("max_depth") if depth_estimation_type == "metric" else None,
    )


def config_to_transformers(config: DepthAnythingHFConfig) -> DepthAnythingConfig:
    if config.max_depth != int(config.max_depth):
        raise ValueError(f"transformers' DepthAnythingConfig needs an integer max_depth, got {config.max_depth}")
    backbone_config = Dinov2Config(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        mlp_ratio=config.mlp_ratio,
        use_swiglu_ffn=config.use_swiglu_ffn,
        layer_norm_eps=config.layer_norm_eps,
        layerscale_value=config.layerscale_value,
        qkv_bias=config.qkv_bias,
        image_size=config.image_size,
        patch_size=config.patch_size,
        out_indices=[index + 1 for index in config.out_indices],
        reshape_hidden_states=False,
        apply_layernorm=True,
    )
    return DepthAnythingConfig(
        backbone_config=backbone_config,
        patch_size=config.patch_size,
        reassemble_hidden_size=config.hidden_size,
        neck_hidden_sizes=list(config.neck_hidden_sizes),
        fusion_hidden_size=config.fusion_hidden_size,
        head_hidden_size=config.head_hidden_size,
        depth_estimation_type=config.depth_estimation_type,
        max_depth=int(config.max_depth),
        architectures=["DepthAnythingForDepthEstimation"],
    )


def load_official_model(model_class, path: str | os.PathLike, version: str, depth_estimation_type: str, max_depth):
    """`model_class` (our model) built and filled from an official `.pth`; see `from_official_checkpoint`."""
    official_state_dict = read_official_state_dict(path)
    config = config_from_official_state_dict(
        official_state_dict, version, depth_estimation_type=depth_estimation_type, max_depth=max_depth
    )
    model = model_class(config)
    load_official_checkpoint(model, official_state_dict, source=str(path))
    return model.eval()


def load_transformers_model(model_class, name_or_path, config_dict: dict, hub_kwargs: dict, dtype=None):
    """`model_class` (our model) built and filled from a transformers `depth_anything` checkpoint."""
    model = model_class(config_from_transformers(config_dict))
    weights_file = cached_file(name_or_path, "model.safetensors", **hub_kwargs)
    try:
        weights = load_file(weights_file)
    except Exception as error:  # safetensors' error names no file
        raise OSError(f"Cannot read {weights_file}, it is truncated or corrupt: {error}") from error
    state_dict = transformers_to_ours(weights, model)
    load_checked_state_dict(model, state_dict, source=f"transformers checkpoint {name_or_path}")
    if dtype is not None and dtype != "auto":
        model = model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    return model.eval()


def export_to_transformers(model: torch.nn.Module, save_directory: str | os.PathLike) -> None:
    """Write `model` as a checkpoint that plain transformers loads; see `export_to_transformers` of the model."""
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    os.makedirs(save_directory, exist_ok=True)
    config_to_transformers(model.config).save_pretrained(save_directory)
    state_dict = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(
        ours_to_transformers(state_dict),
        os.path.join(save_directory, "model.safetensors"),
        metadata={"format": "pt"},
    )
    image_size = model.config.image_size
    DPTImageProcessorPil(
        size={"height": image_size, "width": image_size},
        keep_aspect_ratio=True,
        ensure_multiple_of=model.config.patch_size,
        resample=3,  # bicubic
        do_pad=False,
        image_mean=list(IMAGENET_DEFAULT_MEAN),
        image_std=list(IMAGENET_DEFAULT_STD),
    ).save_pretrained(save_directory)
