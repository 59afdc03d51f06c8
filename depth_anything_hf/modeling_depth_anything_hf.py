"""Depth Anything (V1 and V2): a DINOv2 ViT encoder and a DPT decoder (docs/method.md section 1).

This file imports only torch, transformers and its sibling `configuration_depth_anything_hf`, so that
`save_pretrained` copies the two next to the weights for `trust_remote_code` users (transformers'
single-file policy). What goes beyond inference, the training loss of `forward(labels=...)` and conversion
from and to other checkpoint layouts, lives in the `depth_anything_hf` package and is imported from it when
used (`_package_module`), with a clear error where the package is not installed.

Parameter names follow the official DINOv2 encoder (`encoder.blocks.i.attn.qkv`, ...) so that official
`.pth` checkpoints map onto it by prefix, and a clearly named DPT decoder (`neck.*`, `head.*`).
"""

import importlib
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import DepthEstimatorOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_depth_anything_hf import DepthAnythingHFConfig


def _package_module(name: str, purpose: str):
    """`depth_anything_hf.<name>`, imported when first needed: remote-code users without the package can run
    the model, and get this error only for `purpose`."""
    try:
        return importlib.import_module(f"depth_anything_hf.{name}")
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs the depth_anything_hf package, which is not installed: pip install depth_anything_hf"
        ) from error


@dataclass
class DepthAnythingHFOutput(DepthEstimatorOutput):
    """[`DepthEstimatorOutput`] plus the encoder's final patch features.

    Args:
        encoder_features (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`, *optional*):
            The last encoder block's patch tokens after the final LayerNorm, class token dropped; returned with
            `output_encoder_features=True` (used for feature alignment to a frozen DINOv2, eq. 7).
    """

    encoder_features: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------------------
# DINOv2 encoder
# ----------------------------------------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.proj(pixel_values).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden_states * gamma`, plus `residual` if given: one pass over memory instead of two."""
        if residual is None:
            return hidden_states * self.gamma
        return torch.addcmul(residual, hidden_states, self.gamma)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample during training."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        keep = hidden_states.new_empty(shape).bernoulli_(keep_prob)
        return hidden_states * keep / keep_prob


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention in the signature of transformers' `AttentionInterface`, with the softmax in float32:
    returns (output `(batch, tokens, heads, head_dim)`, weights `(batch, heads, tokens, tokens)`)."""
    scores = (query * scaling) @ key.transpose(-2, -1)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(value.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return (weights @ value).transpose(1, 2), weights


class Attention(nn.Module):
    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.is_causal = False
        # One fused projection: a single GEMM for q, k and v, and the official checkpoint layout.
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.config = config

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the attention output, the attention weights `(batch, heads, tokens, tokens)` under eager
        attention, else None)."""
        batch_size, seq_len, hidden_size = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch_size, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        context, weights = attention_interface(self, query, key, value, None, scaling=self.head_dim**-0.5)
        return self.proj(context.reshape(batch_size, seq_len, hidden_size)), weights


class Mlp(nn.Module):
    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.mlp_hidden_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(config.mlp_hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class SwiGLUFFNFused(nn.Module):
    """ViT-G's feed-forward: silu(x W1) * (x W2), with W1 and W2 stored as one fused matrix `w12`."""

    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        self.w12 = nn.Linear(config.hidden_size, 2 * config.mlp_hidden_size)
        self.w3 = nn.Linear(config.mlp_hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(hidden_states).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class Block(GradientCheckpointingLayer):
    def __init__(self, config: DepthAnythingHFConfig, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = Attention(config)
        self.ls1 = LayerScale(config.hidden_size, config.layerscale_value)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = SwiGLUFFNFused(config) if config.use_swiglu_ffn else Mlp(config)
        self.ls2 = LayerScale(config.hidden_size, config.layerscale_value)
        self.drop_path = DropPath(drop_path)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the block's output, its attention weights or None; see `Attention`)."""
        attention_output, attention_weights = self.attn(self.norm1(hidden_states))
        if self.training and self.drop_path.drop_prob > 0:
            hidden_states = hidden_states + self.drop_path(self.ls1(attention_output))
            return hidden_states + self.drop_path(self.ls2(self.mlp(self.norm2(hidden_states)))), attention_weights
        hidden_states = self.ls1(attention_output, residual=hidden_states)
        return self.ls2(self.mlp(self.norm2(hidden_states)), residual=hidden_states), attention_weights


def bicubic_resize_matrix(input_size: int, output_size, step: torch.Tensor) -> torch.Tensor:
    """The `[output_size, input_size]` matrix that resamples one axis as `F.interpolate(mode="bicubic",
    align_corners=False)` does with `step` input pixels per output pixel: PyTorch's kernel (a = -0.75,
    half-pixel centres, no antialias, taps past the edge clamped to it), built from tensor ops so that
    `output_size` and `step` may be symbolic."""
    a = -0.75
    source = (torch.arange(output_size, dtype=torch.float32, device=step.device) + 0.5) * step - 0.5
    first_tap = source.floor()
    tap_offsets = torch.arange(-1, 3, dtype=torch.float32, device=step.device)
    distance = ((source - first_tap)[:, None] - tap_offsets).abs()
    weights = torch.where(
        distance <= 1,
        ((a + 2) * distance - (a + 3)) * distance * distance + 1,
        ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a,
    )
    taps = (first_tap[:, None] + tap_offsets).clamp(0, input_size - 1)
    inputs = torch.arange(input_size, dtype=torch.float32, device=step.device)
    return ((taps[:, :, None] == inputs).to(weights.dtype) * weights[:, :, None]).sum(dim=1)


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT encoder (no register tokens) returning the tapped blocks' normed patch tokens."""

    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        self.config = config
        grid = config.image_size // config.patch_size
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, config.hidden_size))
        # Replaces the patch embeddings where `bool_masked_pos` is set, as in DINOv2's masked-image pre-training.
        # Depth Anything never trains it, so it is a buffer: loaded, saved and converted with the checkpoints,
        # never a parameter without a gradient.
        self.register_buffer("mask_token", torch.zeros(1, config.hidden_size))
        # Stochastic depth grows linearly with depth, as in DINOv2.
        last = max(config.num_hidden_layers - 1, 1)
        self.blocks = nn.ModuleList(
            Block(config, config.drop_path_rate * index / last) for index in range(config.num_hidden_layers)
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def interpolate_pos_encoding(self, patch_height: int, patch_width: int) -> torch.Tensor:
        """Position embeddings for a `patch_height x patch_width` grid (bicubic, in float32, no antialias).

        With `pos_embed_interpolation="official"` the grid is resized by the scale factor
        `(n + 0.1) / 37`, exactly as DINOv2 and the released Depth Anything models do; this shifts the
        sampling positions slightly compared with resizing to the target size (transformers' DINOv2).
        Under `torch.export` (ONNX export) the same interpolation runs as matrix products whose sizes follow
        the input, since `F.interpolate` with a scale factor fixes the grid at the traced size.
        """
        if torch.compiler.is_exporting():
            return self._interpolate_pos_encoding_exportable(patch_height, patch_width)
        stored_grid = int(math.sqrt(self.pos_embed.shape[1] - 1))
        if patch_height == stored_grid and patch_width == stored_grid:
            return self.pos_embed
        class_pos_embed = self.pos_embed[:, :1]
        patch_pos_embed = self.pos_embed[:, 1:].float()
        patch_pos_embed = patch_pos_embed.reshape(1, stored_grid, stored_grid, -1).permute(0, 3, 1, 2)
        if self.config.pos_embed_interpolation == "official":
            resize = {
                "scale_factor": ((patch_height + 0.1) / stored_grid, (patch_width + 0.1) / stored_grid),
            }
        else:
            resize = {"size": (patch_height, patch_width)}
        patch_pos_embed = F.interpolate(patch_pos_embed, mode="bicubic", align_corners=False, **resize)
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).flatten(1, 2).to(self.pos_embed.dtype)
        return torch.cat((class_pos_embed, patch_pos_embed), dim=1)

    def _interpolate_pos_encoding_exportable(self, patch_height, patch_width) -> torch.Tensor:
        """`interpolate_pos_encoding` without Python branches on the grid size, for symbolic sizes."""
        stored_grid = int(math.sqrt(self.pos_embed.shape[1] - 1))
        device = self.pos_embed.device
        # torch.full keeps a symbolic size symbolic; torch.tensor / as_tensor would bake in the traced value.
        height = torch.full((), patch_height, dtype=torch.float32, device=device)
        width = torch.full((), patch_width, dtype=torch.float32, device=device)
        if self.config.pos_embed_interpolation == "official":
            # DINOv2 keeps the stored grid as is when both sides match it, and resizes by (n + 0.1) / 37 otherwise.
            is_stored_grid = (height == stored_grid) & (width == stored_grid)
            offset = torch.where(is_stored_grid, 0.0, 0.1)
            height_step, width_step = stored_grid / (height + offset), stored_grid / (width + offset)
        else:
            height_step, width_step = stored_grid / height, stored_grid / width
        rows = bicubic_resize_matrix(stored_grid, patch_height, height_step)
        columns = bicubic_resize_matrix(stored_grid, patch_width, width_step)
        patch_pos_embed = self.pos_embed[0, 1:].float().reshape(stored_grid, stored_grid, -1).permute(2, 0, 1)
        patch_pos_embed = rows @ patch_pos_embed @ columns.T
        patch_pos_embed = patch_pos_embed.flatten(1).T[None].to(self.pos_embed.dtype)
        return torch.cat((self.pos_embed[:, :1], patch_pos_embed), dim=1)

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[list[torch.Tensor], torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """Returns (normed patch tokens of each tapped block, normed patch tokens of the last block,
        all hidden states incl. the embeddings if requested, every block's attention weights if requested)."""
        patch_height = pixel_values.shape[-2] // self.config.patch_size
        patch_width = pixel_values.shape[-1] // self.config.patch_size
        patch_tokens = self.patch_embed(pixel_values)
        if bool_masked_pos is not None:
            if bool_masked_pos.shape != patch_tokens.shape[:2]:
                raise ValueError(
                    f"bool_masked_pos must have shape (batch_size, num_patches) = {tuple(patch_tokens.shape[:2])}, "
                    f"got {tuple(bool_masked_pos.shape)}"
                )
            mask_tokens = self.mask_token.to(patch_tokens.dtype).unsqueeze(0)
            patch_tokens = torch.where(bool_masked_pos.bool().unsqueeze(-1), mask_tokens, patch_tokens)
        cls_tokens = self.cls_token.expand(patch_tokens.shape[0], -1, -1).to(patch_tokens.dtype)
        hidden_states = torch.cat((cls_tokens, patch_tokens), dim=1)
        hidden_states = hidden_states + self.interpolate_pos_encoding(patch_height, patch_width).to(
            hidden_states.dtype
        )

        all_hidden_states = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        normed_by_index = {}
        for index, block in enumerate(self.blocks):
            hidden_states, attention_weights = block(hidden_states)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            if output_attentions:
                all_attentions.append(attention_weights)
            if index in self.config.out_indices:
                normed_by_index[index] = self.norm(hidden_states)
        tapped = [normed_by_index[index][:, 1:] for index in self.config.out_indices]
        last_index = len(self.blocks) - 1
        last_normed = normed_by_index[last_index] if last_index in normed_by_index else self.norm(hidden_states)
        last_patch_tokens = last_normed[:, 1:]
        return (
            tapped,
            last_patch_tokens,
            tuple(all_hidden_states) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
        )


# ----------------------------------------------------------------------------------------------------------
# DPT decoder
# ----------------------------------------------------------------------------------------------------------


class ResidualConvUnit(nn.Module):
    """ReLU - conv3x3 - ReLU - conv3x3, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(F.relu(features))
        # In place: the pre-activation is used nowhere else (ReLU's backward needs only its output).
        residual = self.conv2(F.relu(residual, inplace=True))
        return features + residual


class ConvWeights(nn.Module):
    """A 3x3 convolution's `weight` and `bias` held as buffers: loaded, saved and converted like a convolution's,
    but no parameter (see `FeatureFusionBlock`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(channels, channels, 3, 3))
        self.register_buffer("bias", torch.zeros(channels))


class FeatureFusionBlock(nn.Module):
    """`x0 + RCU1(skip)`, RCU2, bilinear upsampling (align_corners=True), 1x1 projection.

    The deepest block (`has_skip=False`) has no skip input, so its RCU1 never runs. The official and the
    transformers checkpoints still hold its weights: here they are buffers (`ConvWeights`), so that those
    checkpoints load and export unchanged while training finds no parameter without a gradient.
    """

    def __init__(self, channels: int, has_skip: bool = True):
        super().__init__()
        if has_skip:
            self.residual_unit1 = ResidualConvUnit(channels)
        else:
            self.residual_unit1 = nn.Module()
            self.residual_unit1.conv1 = ConvWeights(channels)
            self.residual_unit1.conv2 = ConvWeights(channels)
        self.has_skip = has_skip
        self.residual_unit2 = ResidualConvUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(
        self, features: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if self.has_skip:
            features = features + self.residual_unit1(skip)
        features = self.residual_unit2(features)
        resize = {"size": size} if size is not None else {"scale_factor": 2}
        features = F.interpolate(features, mode="bilinear", align_corners=True, **resize)
        return self.out_conv(features)


class DPTNeck(nn.Module):
    """Reassembles the four tapped token maps at 4x, 2x, 1x and 1/2x the patch grid and fuses them deepest first."""

    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        channels = config.neck_hidden_sizes
        self.projections = nn.ModuleList(nn.Conv2d(config.hidden_size, c, kernel_size=1) for c in channels)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(channels[0], channels[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(channels[1], channels[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(channels[3], channels[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.convs = nn.ModuleList(
            nn.Conv2d(c, config.fusion_hidden_size, kernel_size=3, padding=1, bias=False) for c in channels
        )
        # fusion_blocks[i] fuses at the resolution of tap i; they run from i = 3 (deepest) down to 0.
        self.fusion_blocks = nn.ModuleList(
            FeatureFusionBlock(config.fusion_hidden_size, has_skip=index < len(channels) - 1)
            for index in range(len(channels))
        )

    def forward(self, tapped_tokens: list[torch.Tensor], patch_height: int, patch_width: int) -> torch.Tensor:
        feature_maps = []
        for tokens, projection, resize, conv in zip(tapped_tokens, self.projections, self.resize_layers, self.convs):
            # The tokens viewed as an NCHW map without a copy: its memory is channels-last (NHWC), which the
            # convolutions (oneDNN on CPUs, cuDNN on GPUs) run faster than NCHW and keep through the decoder.
            grid = tokens.unflatten(1, (patch_height, patch_width)).permute(0, 3, 1, 2)
            feature_maps.append(conv(resize(projection(grid))))

        fused = self.fusion_blocks[3](feature_maps[3], size=feature_maps[2].shape[-2:])
        fused = self.fusion_blocks[2](fused, feature_maps[2], size=feature_maps[1].shape[-2:])
        fused = self.fusion_blocks[1](fused, feature_maps[1], size=feature_maps[0].shape[-2:])
        return self.fusion_blocks[0](fused, feature_maps[0])


class DepthHead(nn.Module):
    """conv3x3 F -> F/2, bilinear to the input size, conv3x3 -> 32, ReLU, conv1x1 -> 1, then ReLU (relative
    disparity) or Sigmoid x max_depth (metric depth in metres)."""

    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__()
        features = config.fusion_hidden_size
        self.conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features // 2, config.head_hidden_size, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(config.head_hidden_size, 1, kernel_size=1)
        self.is_metric = config.depth_estimation_type == "metric"
        self.max_depth = config.max_depth

    def forward(self, fused: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        hidden = self.conv1(fused)
        hidden = F.interpolate(hidden, size=output_size, mode="bilinear", align_corners=True)
        prediction = self.conv3(F.relu(self.conv2(hidden)))
        if self.is_metric:
            prediction = torch.sigmoid(prediction) * self.max_depth
        else:
            prediction = F.relu(prediction)
        return prediction.squeeze(1)


# ----------------------------------------------------------------------------------------------------------
# PreTrainedModel
# ----------------------------------------------------------------------------------------------------------


class DepthAnythingHFPreTrainedModel(PreTrainedModel):
    config_class = DepthAnythingHFConfig
    config: DepthAnythingHFConfig
    base_model_prefix = "depth_anything"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["Block"]

    def _init_weights(self, module: nn.Module) -> None:
        """As the official code: DINOv2's encoder inits its linear layers trunc-normal(`initializer_range`) with
        zero bias; every convolution (the patch embedding, the whole DPT neck and head) keeps PyTorch's default
        fan-in scaled init. A 0.02 trunc-normal decoder would shrink the signal at every conv and start with a
        near-constant, largely ReLU-dead output that the affine-invariant loss cannot normalise."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            # Runs under transformers' guarded torch.nn.init, so weights loaded from a checkpoint are kept.
            module.reset_parameters()
            head = getattr(self, "head", None)
            if isinstance(head, DepthHead) and not head.is_metric and module is head.conv3:
                # The default init draws the sign of this last bias at random, and on a fresh encoder the features
                # feeding it are nearly constant, so a negative draw puts every pixel below the final ReLU (zero
                # output, zero gradient; about half of all seeds). Starting at 1 puts them all past it; the
                # affine-invariant loss ignores the offset.
                init.constant_(module.bias, 1.0)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, LayerScale):
            init.constant_(module.gamma, self.config.layerscale_value)
        elif isinstance(module, ConvWeights):  # never applied: a deterministic fill, as buffers need
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, DinoVisionTransformer):
            init.trunc_normal_(module.pos_embed, mean=0.0, std=std)
            init.normal_(module.cls_token, std=1e-6)
            init.zeros_(module.mask_token)


class DepthAnythingHFForDepthEstimation(DepthAnythingHFPreTrainedModel):
    """Depth Anything: DINOv2 encoder + DPT decoder predicting a depth map at the input resolution.

    Relative models (`config.depth_estimation_type == "relative"`) predict affine-invariant DISPARITY (larger
    = nearer); metric models predict depth in metres.
    """

    def __init__(self, config: DepthAnythingHFConfig):
        super().__init__(config)
        self.encoder = DinoVisionTransformer(config)
        self.neck = DPTNeck(config)
        self.head = DepthHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        """The patch embedding (as for transformers' ViTs)."""
        return self.encoder.patch_embed

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        valid_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        output_encoder_features: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DepthAnythingHFOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
                Normalised images; height and width must be multiples of `config.patch_size` (14).
            labels (`torch.FloatTensor` of shape `(batch_size, height, width)`, *optional*):
                Targets, returned with their loss as `loss`: for relative models disparity (or any affine transform
                of it) and the affine-invariant loss of docs/method.md eq. 1-2; for metric models depth in metres and
                the SiLog loss of V2's metric fine-tuning (docs/method.md section 4), over the valid pixels with
                1e-3 <= depth <= `config.max_depth`.
            valid_mask (`torch.BoolTensor` of shape `(batch_size, height, width)`, *optional*):
                Pixels of `labels` that count in the loss; all pixels by default.
            bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*):
                Patches whose embedding is replaced by the encoder's mask token, as in [`Dinov2Model`].
            output_attentions (`bool`, *optional*):
                Return every block's attention weights `(batch_size, num_heads, num_tokens, num_tokens)`; needs
                eager attention (`attn_implementation="eager"`).
            output_hidden_states (`bool`, *optional*):
                Return the embeddings and every block's output (before the final LayerNorm).
            output_encoder_features (`bool`, defaults to `False`):
                Return the last block's normed patch tokens as `encoder_features` `(batch_size, num_patches,
                hidden_size)`.
        """
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(
                f"pixel_values must have shape (batch_size, {self.config.num_channels}, height, width), "
                f"got {tuple(pixel_values.shape)}"
            )
        height, width = pixel_values.shape[-2:]
        patch_size = self.config.patch_size
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"pixel_values height and width must be multiples of the patch size {patch_size}, got "
                f"{height}x{width}; resize with DepthAnythingHFImageProcessor (ensure_multiple_of={patch_size})"
            )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        if output_attentions and self.config._attn_implementation != "eager":
            raise ValueError(
                "output_attentions=True is not supported with attn_implementation="
                f"{self.config._attn_implementation!r}, which computes no attention weights: load the model with "
                "attn_implementation='eager' or call model.set_attn_implementation('eager')"
            )

        tapped_tokens, last_patch_tokens, hidden_states, attentions = self.encoder(
            pixel_values,
            bool_masked_pos,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        fused = self.neck(tapped_tokens, height // patch_size, width // patch_size)
        predicted_depth = self.head(fused, output_size=(height, width))

        loss = None
        if labels is not None:
            if labels.shape != predicted_depth.shape:
                raise ValueError(
                    f"labels must have the prediction's shape {tuple(predicted_depth.shape)}, got {tuple(labels.shape)}"
                )
            losses = _package_module("losses", "Training (forward with labels)")
            loss = losses.supervised_depth_loss(
                predicted_depth, labels, valid_mask, self.config.depth_estimation_type, self.config.max_depth
            )

        encoder_features = last_patch_tokens if output_encoder_features else None
        if not return_dict:
            output = tuple(v for v in (predicted_depth, hidden_states, attentions, encoder_features) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return DepthAnythingHFOutput(
            loss=loss,
            predicted_depth=predicted_depth,
            hidden_states=hidden_states,
            attentions=attentions,
            encoder_features=encoder_features,
        )

    # ------------------------------------------------------------------------------------------------------
    # Other checkpoint layouts
    # ------------------------------------------------------------------------------------------------------

    @classmethod
    def from_official_checkpoint(
        cls,
        path: str | os.PathLike,
        version: str,
        depth_estimation_type: str = "relative",
        max_depth: float | None = None,
    ) -> "DepthAnythingHFForDepthEstimation":
        """Load an official Depth Anything `.pth` (V1 or V2; plain state dict or `{"model": ...}` with `module.`
        prefixes). The size is inferred from the weights; `version` decides which blocks the decoder taps, which
        the weights cannot tell (docs/method.md section 1), so it must be given.

        Every official key must be used and every parameter filled, or a `CheckpointMismatchError` lists what
        does not match.
        """
        checkpoints = _package_module("checkpoints", "Loading an official checkpoint")
        return checkpoints.load_official_model(cls, path, version, depth_estimation_type, max_depth)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """As [`PreTrainedModel.from_pretrained`], and also accepts transformers' `depth_anything` checkpoints
        (directories or Hub ids such as `depth-anything/Depth-Anything-V2-Small-hf`), converted on load."""
        if kwargs.get("config") is None and pretrained_model_name_or_path is not None:
            hub_kwargs = {
                key: kwargs[key]
                for key in ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
                if key in kwargs
            }
            config_dict, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
            if config_dict.get("model_type") == "depth_anything":
                checkpoints = _package_module("checkpoints", "Loading a transformers depth_anything checkpoint")
                return checkpoints.load_transformers_model(
                    cls, pretrained_model_name_or_path, config_dict, hub_kwargs, kwargs.get("dtype")
                )
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except Exception as error:
            # safetensors' own error names no file. Matched by name: this file imports only torch and transformers.
            if type(error).__name__ != "SafetensorError":
                raise
            culprits = [f"{pretrained_model_name_or_path!s}: {error}"]
            if os.path.isdir(pretrained_model_name_or_path):
                checkpoints = _package_module("checkpoints", "Naming the unreadable weights file")
                culprits = checkpoints.unreadable_files(pretrained_model_name_or_path) or culprits
            raise OSError(
                "Cannot load the model weights, a file is truncated or corrupt (a save or download cut short): "
                + "; ".join(culprits)
            ) from error

    def export_to_transformers(self, save_directory: str | os.PathLike) -> None:
        """Write a checkpoint that plain transformers loads as `DepthAnythingForDepthEstimation` (config.json,
        model.safetensors in its on-disk layout, preprocessor_config.json for its DPT image processor).

        transformers' DINOv2 resizes position embeddings to the target size rather than by DINOv2's
        `(n + 0.1) / 37` scale factor, so outputs agree at 518x518 (the stored grid) and differ slightly elsewhere.
        """
        checkpoints = _package_module("checkpoints", "Exporting to transformers")
        checkpoints.export_to_transformers(self, save_directory)

__all__ = ["DepthAnythingHFForDepthEstimation", "DepthAnythingHFPreTrainedModel", "DepthAnythingHFOutput"]
