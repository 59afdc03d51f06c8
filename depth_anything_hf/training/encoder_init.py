"""Where training starts: the encoder from DINOv2 (`--encoder_init`), the whole model from a Depth Anything
checkpoint (`--init_from`), and the frozen DINOv2 used for feature alignment (docs/method.md section 4).

Both stages start the encoder from DINOv2 (the student is re-initialised from DINOv2, not from the teacher).
Sources understood by `encoder_state_dict` (`--encoder_init`):

- a directory or Hub id of transformers' `Dinov2Model` (e.g. `facebook/dinov2-small`), loaded with
  `Dinov2Model.from_pretrained`, which handles every file layout transformers knows;
- an official DINOv2 `.pth` (`dinov2_vits14_pretrain.pth`: `cls_token`, `blocks.i.attn.qkv`, ...), or the
  encoder of an official Depth Anything `.pth` (the same names under `pretrained.`);
- the encoder of a Depth Anything checkpoint directory or Hub id, ours or transformers' `depth_anything`.

Every load is strict: a missing, unexpected or wrongly shaped tensor raises a `CheckpointMismatchError`.

`model_from_checkpoint` (`--init_from`) starts from a whole Depth Anything model: ours or transformers'
`depth_anything` (directory or Hub id; the architecture is the checkpoint's), or an official `.pth`. An official
`.pth` does not say whether it is V1 or V2 (same shapes, different tapped blocks, docs/method.md section 1), so its
release is the one of `--model_config` (`v1-small`, `v2-large`, ...), which is then required.

`dinov2_to_encoder_state_dict` maps transformers' names in both of their forms (in memory since transformers
5: `attention.q_proj/k_proj/v_proj/o_proj`; in saved files: `attention.attention.query/key/value`,
`attention.output.dense`) and the official names onto our encoder, whose names are the official ones.
"""

import os
import re
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedConfig

from .. import checkpoints
from ..configuration_depth_anything_hf import DepthAnythingHFConfig
from ..modeling_depth_anything_hf import DepthAnythingHFForDepthEstimation, DinoVisionTransformer
from .arguments import NO_ENCODER_INIT

DEPTH_ANYTHING_MODEL_TYPES = ("depth_anything_hf", "depth_anything")
OFFICIAL_SUFFIXES = (".pth", ".pt")

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


def _source_model_type(source: str | os.PathLike, flag: str) -> str | None:
    """The `model_type` of the config of a checkpoint directory or Hub id."""
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(source)
    except OSError as error:
        raise ValueError(
            f"{flag} {str(source)!r} is neither a .pth file nor a directory or Hub id with a config.json ({error})"
        ) from error
    return config_dict.get("model_type")


def encoder_state_dict(source: str | os.PathLike, encoder: DinoVisionTransformer) -> dict[str, torch.Tensor]:
    """The DINOv2 weights of `source` (`--encoder_init`, see the module docstring) in the keys of `encoder`."""
    if str(source).endswith(OFFICIAL_SUFFIXES):
        official = checkpoints.read_official_state_dict(source)
        # A Depth Anything .pth also holds its DPT decoder (`depth_head.*`), which the encoder does not take.
        official = {key: value for key, value in official.items() if not key.startswith("depth_head.")}
        return dinov2_to_encoder_state_dict(official, encoder)
    model_type = _source_model_type(source, "--encoder_init")
    if model_type in DEPTH_ANYTHING_MODEL_TYPES:
        return load_depth_anything(source).encoder.state_dict()
    if model_type != "dinov2":
        raise ValueError(
            f"--encoder_init {str(source)!r} is a {model_type!r} checkpoint; expected a DINOv2 (model_type "
            f"'dinov2'), a Depth Anything checkpoint ({' or '.join(DEPTH_ANYTHING_MODEL_TYPES)}) or a .pth file"
        )
    from transformers import Dinov2Model

    dinov2, loading_info = Dinov2Model.from_pretrained(source, output_loading_info=True)
    _raise_on_incomplete_load(loading_info, f"DINOv2 checkpoint {source}")
    return dinov2_to_encoder_state_dict(dinov2.state_dict(), encoder)


def _raise_on_incomplete_load(loading_info: dict, source: str) -> None:
    """transformers' `from_pretrained` only warns about keys it could not fill; training must not start from
    randomly initialised tensors that were meant to be loaded."""
    problems = {name: sorted(map(str, loading_info[name])) for name in ("missing_keys", "mismatched_keys")}
    if any(problems.values()):
        details = "; ".join(f"{name} ({len(keys)}): {', '.join(keys[:10])}" for name, keys in problems.items() if keys)
        raise checkpoints.CheckpointMismatchError(f"{source} does not fill the model: {details}")


def load_depth_anything(source: str | os.PathLike) -> DepthAnythingHFForDepthEstimation:
    """A Depth Anything checkpoint directory or Hub id, ours or transformers' `depth_anything`, loaded strictly."""
    loaded = DepthAnythingHFForDepthEstimation.from_pretrained(source, output_loading_info=True)
    if isinstance(loaded, tuple):  # ours; transformers' layout is converted by a strict loader of its own
        loaded, loading_info = loaded
        _raise_on_incomplete_load(loading_info, f"Depth Anything checkpoint {source}")
    return loaded


def official_release_config(
    source: str | os.PathLike, model_config: str | os.PathLike | None
) -> DepthAnythingHFConfig:
    """The configuration for the official `.pth` `source`: `model_config`, which must name the release."""
    config = resolve_model_config(model_config) if model_config is not None else None
    if config is None or config.version is None:
        raise ValueError(
            f"--init_from {str(source)!r}: an official .pth does not say whether it is V1 or V2 (the releases "
            "tap different encoder blocks); give its variant with --model_config (v1-small ... v2-giant) or a "
            "config JSON with a 'version'"
        )
    return config


def model_from_checkpoint(
    source: str | os.PathLike, model_config: str | os.PathLike | None = None
) -> DepthAnythingHFForDepthEstimation:
    """The whole model of a Depth Anything checkpoint (`--init_from`, see the module docstring), every tensor
    equal to the source's.

    With `model_config` the model has that configuration, and the checkpoint must fit it exactly, including the
    tapped encoder blocks (a V1 checkpoint in a V2 layout would run and be wrong); without it, a directory or Hub
    id gives its own configuration. An official `.pth` needs `model_config` for its release.
    """
    if str(source).endswith(OFFICIAL_SUFFIXES):
        config = official_release_config(source, model_config)
        model = DepthAnythingHFForDepthEstimation(config)
        checkpoints.load_official_checkpoint(model, checkpoints.read_official_state_dict(source), str(source))
        return model
    model_type = _source_model_type(source, "--init_from")
    if model_type not in DEPTH_ANYTHING_MODEL_TYPES:
        raise ValueError(
            f"--init_from {str(source)!r} is a {model_type!r} checkpoint, not Depth Anything "
            f"({' or '.join(DEPTH_ANYTHING_MODEL_TYPES)}); a DINOv2 initialises the encoder only: --encoder_init"
        )
    loaded = load_depth_anything(source)
    if model_config is None:
        return loaded
    model = DepthAnythingHFForDepthEstimation(resolve_model_config(model_config))
    if list(model.config.out_indices) != list(loaded.config.out_indices):
        raise checkpoints.CheckpointMismatchError(
            f"--init_from {str(source)!r} taps encoder blocks {loaded.config.out_indices}, --model_config "
            f"{str(model_config)!r} taps {model.config.out_indices}: the weights would run and give wrong output"
        )
    checkpoints.load_checked_state_dict(model, loaded.state_dict(), f"--init_from {source}")
    return model


def load_dinov2_into_encoder(encoder: DinoVisionTransformer, source: str | os.PathLike) -> None:
    """Fill every parameter of `encoder` from `source` (`encoder_state_dict`), or raise a `CheckpointMismatchError`
    listing the keys that are missing, unexpected or of the wrong shape (for instance a checkpoint of another size,
    or position embeddings stored for another grid)."""
    checkpoints.load_checked_state_dict(encoder, encoder_state_dict(source, encoder), source=f"--encoder_init {source}")


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
        _, last_patch_tokens, _, _ = self.encoder(pixel_values)
        return last_patch_tokens


def initial_depth_estimation_type(model_config: str | os.PathLike | None, init_from: str | os.PathLike | None) -> str:
    """"relative" or "metric": what the model of `--model_config` / `--init_from` predicts (configs only)."""
    if str(init_from).endswith(OFFICIAL_SUFFIXES):
        return official_release_config(init_from, model_config).depth_estimation_type
    if model_config is not None:
        return resolve_model_config(model_config).depth_estimation_type
    config_dict, _ = PreTrainedConfig.get_config_dict(init_from)
    return config_dict.get("depth_estimation_type", "relative")


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
