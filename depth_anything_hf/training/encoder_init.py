"""Initialising the encoder from DINOv2, and the frozen DINOv2 used for feature alignment (docs/method.md section 4).

Both stages start the encoder from DINOv2 (the student is re-initialised from DINOv2, not from the teacher).
Sources understood by `read_dinov2_state_dict`:

- a directory or Hub id of transformers' `Dinov2Model` (e.g. `facebook/dinov2-small`), loaded with
  `Dinov2Model.from_pretrained`, which handles every file layout transformers knows;
- an official DINOv2 `.pth` (`dinov2_vits14_pretrain.pth`: `cls_token`, `blocks.i.attn.qkv`, ...), or the
  encoder of an official Depth Anything `.pth` (the same names under `pretrained.`).

`dinov2_to_encoder_state_dict` maps transformers' names in both of their forms (in memory since transformers
5: `attention.q_proj/k_proj/v_proj/o_proj`; in saved files: `attention.attention.query/key/value`,
`attention.output.dense`) and the official names onto our encoder, whose names are the official ones.
"""

import os
import re
from pathlib import Path

import torch
from torch import nn

from .. import checkpoints
from ..configuration_depth_anything_hf import DepthAnythingHFConfig
from ..modeling_depth_anything_hf import DinoVisionTransformer

NO_ENCODER_INIT = "none"

# transformers' in-memory attention names -> the names its files (and our checkpoints module) use.
_IN_MEMORY_TO_SAVED = [
    (r"\.attention\.q_proj\.", ".attention.attention.query."),
    (r"\.attention\.k_proj\.", ".attention.attention.key."),
    (r"\.attention\.v_proj\.", ".attention.attention.value."),
    (r"\.attention\.o_proj\.", ".attention.output.dense."),
]


def _is_official_layout(state_dict: dict[str, torch.Tensor]) -> bool:
    return "cls_token" in state_dict or "pretrained.cls_token" in state_dict


def dinov2_to_encoder_state_dict(
    dinov2_state_dict: dict[str, torch.Tensor], encoder: DinoVisionTransformer
) -> dict[str, torch.Tensor]:
    """Rename a DINOv2 state dict (transformers `Dinov2Model` in memory or on disk, or official) into the keys
    of `encoder`. Keys that have no counterpart keep their names, so that loading reports them."""
    if _is_official_layout(dinov2_state_dict):
        return {key.removeprefix("pretrained."): value for key, value in dinov2_state_dict.items()}
    saved_layout = {}
    for key, value in dinov2_state_dict.items():
        for pattern, replacement in _IN_MEMORY_TO_SAVED:
            key = re.sub(pattern, replacement, key)
        # transformers' depth_anything layout is a Dinov2 backbone under "backbone.": reuse that conversion.
        saved_layout[f"backbone.{key}"] = value
    ours = checkpoints.transformers_to_ours(saved_layout, nn.ModuleDict({"encoder": encoder}))
    return {key.removeprefix("encoder."): value for key, value in ours.items()}


def read_dinov2_state_dict(source: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a DINOv2 checkpoint: a `.pth` file, or a directory / Hub id of a `Dinov2Model`."""
    if str(source).endswith((".pth", ".pt")):
        return checkpoints.read_official_state_dict(source)
    from transformers import Dinov2Model

    try:
        dinov2 = Dinov2Model.from_pretrained(source)
    except OSError as error:
        raise ValueError(
            f"--encoder_init {str(source)!r} is neither a DINOv2 .pth file nor a directory or Hub id of a "
            f"transformers Dinov2Model ({error})"
        ) from error
    return dinov2.state_dict()


def load_dinov2_into_encoder(encoder: DinoVisionTransformer, source: str | os.PathLike) -> None:
    """Fill every parameter of `encoder` from the DINOv2 checkpoint `source`, or raise a
    `CheckpointMismatchError` listing the keys that are missing, unexpected or of the wrong shape (for
    instance a checkpoint of another size, or position embeddings stored for another grid)."""
    state_dict = dinov2_to_encoder_state_dict(read_dinov2_state_dict(source), encoder)
    checkpoints.load_checked_state_dict(encoder, state_dict, source=f"DINOv2 checkpoint {source}")


def initialize_encoder(model: nn.Module, encoder_init: str | os.PathLike | None) -> None:
    """Initialise `model.encoder` from DINOv2 (`--encoder_init`); "none" or None keeps the random init."""
    if encoder_init is None or str(encoder_init) == NO_ENCODER_INIT:
        return
    load_dinov2_into_encoder(model.encoder, encoder_init)


class FrozenFeatureEncoder(nn.Module):
    """A frozen DINOv2 giving the patch features f' of feature alignment (eq. 7): the last block's normed patch
    tokens [B, N, C], computed without gradients, like the student's `encoder_features`."""

    def __init__(self, config: DepthAnythingHFConfig, source: str | os.PathLike):
        super().__init__()
        self.encoder = DinoVisionTransformer(config)
        load_dinov2_into_encoder(self.encoder, source)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenFeatureEncoder":
        # Frozen means frozen: no drop-path even when the surrounding code switches to training mode.
        return super().train(False)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        _, last_patch_tokens, _ = self.encoder(pixel_values)
        return last_patch_tokens


def resolve_model_config(model_config: str | os.PathLike) -> DepthAnythingHFConfig:
    """`--model_config`: an official variant name (`v2-small`, `v1-large`, `v2-base-metric-20`) or the path
    of a config JSON (as `save_pretrained` writes it)."""
    path = Path(model_config)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ValueError(f"--model_config {str(model_config)!r}: no such config JSON file")
        return DepthAnythingHFConfig.from_json_file(path)
    if path.is_dir() and (path / "config.json").is_file():
        return DepthAnythingHFConfig.from_json_file(path / "config.json")
    try:
        return DepthAnythingHFConfig.from_variant_name(str(model_config))
    except ValueError as error:
        raise ValueError(
            f"--model_config must be a variant such as 'v2-small' or a path to a config JSON, got {str(model_config)!r}"
        ) from error
