"""Configuration of Depth Anything (V1 and V2): a DINOv2 ViT encoder and a DPT decoder.

This file imports only transformers so that `save_pretrained` can copy it next to the weights for
`trust_remote_code` users.
"""

from transformers import PreTrainedConfig

# Encoder and decoder sizes of the released models (docs/method.md section 1).
_ENCODER_SIZES = {
    "small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "giant": {"hidden_size": 1536, "num_hidden_layers": 40, "num_attention_heads": 24, "use_swiglu_ffn": True},
}
# The release size of each encoder width ("small" ... "giant"); other widths are no release.
SIZE_OF_HIDDEN_SIZE = {encoder["hidden_size"]: size for size, encoder in _ENCODER_SIZES.items()}
_DECODER_SIZES = {
    "small": {"fusion_hidden_size": 64, "neck_hidden_sizes": [48, 96, 192, 384]},
    "base": {"fusion_hidden_size": 128, "neck_hidden_sizes": [96, 192, 384, 768]},
    "large": {"fusion_hidden_size": 256, "neck_hidden_sizes": [256, 512, 1024, 1024]},
    "giant": {"fusion_hidden_size": 384, "neck_hidden_sizes": [1536, 1536, 1536, 1536]},
}
# The encoder blocks (0-based) whose outputs feed the DPT decoder. V1 taps the last four blocks, V2 evenly
# spaced ones; the two layouts have identical weights, so the taps must live in the config.
TAPPED_LAYERS = {
    "v1": {"small": [8, 9, 10, 11], "base": [8, 9, 10, 11], "large": [20, 21, 22, 23]},
    "v2": {"small": [2, 5, 8, 11], "base": [2, 5, 8, 11], "large": [4, 11, 17, 23], "giant": [9, 19, 29, 39]},
}
DEPTH_ESTIMATION_TYPES = ("relative", "metric")


class DepthAnythingHFConfig(PreTrainedConfig):
    r"""
    Configuration of [`DepthAnythingHFForDepthEstimation`].

    Args:
        hidden_size (`int`, defaults to 384): width of the ViT encoder.
        num_hidden_layers (`int`, defaults to 12): number of transformer blocks.
        num_attention_heads (`int`, defaults to 6): attention heads per block.
        mlp_ratio (`float`, defaults to 4): MLP hidden width as a multiple of `hidden_size`.
        use_swiglu_ffn (`bool`, defaults to `False`): fused SwiGLU feed-forward (ViT-G) instead of a GELU MLP.
        layer_norm_eps (`float`, defaults to 1e-6): LayerNorm epsilon.
        layerscale_value (`float`, defaults to 1.0): initial LayerScale value.
        qkv_bias (`bool`, defaults to `True`): bias in the fused qkv projection.
        drop_path_rate (`float`, defaults to 0.0): stochastic depth rate used in training.
        image_size (`int`, defaults to 518): the image size the position embeddings are stored for (37x37 grid).
        patch_size (`int`, defaults to 14): ViT patch size; inputs must be multiples of it.
        num_channels (`int`, defaults to 3): input channels.
        out_indices (`list[int]`, defaults to `[2, 5, 8, 11]`): 0-based encoder blocks tapped by the decoder.
        neck_hidden_sizes (`list[int]`, defaults to `[48, 96, 192, 384]`): DPT projection channels per tap.
        fusion_hidden_size (`int`, defaults to 64): DPT fusion channels ("features").
        head_hidden_size (`int`, defaults to 32): channels of the head's last hidden convolution.
        depth_estimation_type (`str`, defaults to `"relative"`): `"relative"` (affine-invariant disparity,
            ReLU output) or `"metric"` (depth in metres, Sigmoid x `max_depth`).
        max_depth (`float`, *optional*): maximum depth of metric models (20 indoor, 80 outdoor); 1 for relative.
        pos_embed_interpolation (`str`, defaults to `"official"`): `"official"` interpolates position embeddings
            with DINOv2's scale factor `(n + 0.1) / 37`, as the released models were run; `"transformers"` uses
            the target size directly, as transformers' DINOv2 does. Both agree at the stored grid (518x518).
        version (`str`, *optional*): `"v1"` or `"v2"`; decides how predictions are upsampled back to the input
            size (`upsample_align_corners`).
        initializer_range (`float`, defaults to 0.02): std of the truncated normal initialiser.
    """

    model_type = "depth_anything_hf"

    def __init__(
        self,
        hidden_size: int = 384,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 6,
        mlp_ratio: float = 4,
        use_swiglu_ffn: bool = False,
        layer_norm_eps: float = 1e-6,
        layerscale_value: float = 1.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        image_size: int = 518,
        patch_size: int = 14,
        num_channels: int = 3,
        out_indices: list[int] | None = None,
        neck_hidden_sizes: list[int] | None = None,
        fusion_hidden_size: int = 64,
        head_hidden_size: int = 32,
        depth_estimation_type: str = "relative",
        max_depth: float | None = None,
        pos_embed_interpolation: str = "official",
        version: str | None = None,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        out_indices = list(out_indices) if out_indices is not None else [2, 5, 8, 11]
        neck_hidden_sizes = list(neck_hidden_sizes) if neck_hidden_sizes is not None else [48, 96, 192, 384]
        if depth_estimation_type not in DEPTH_ESTIMATION_TYPES:
            raise ValueError(
                f"depth_estimation_type must be one of {DEPTH_ESTIMATION_TYPES}, got {depth_estimation_type!r}"
            )
        if depth_estimation_type == "metric" and (max_depth is None or max_depth <= 0):
            raise ValueError(f"A metric model needs max_depth > 0 (20 indoor, 80 outdoor), got {max_depth!r}")
        if len(out_indices) != 4 or len(neck_hidden_sizes) != 4:
            raise ValueError(
                f"The DPT decoder takes exactly 4 encoder taps: got out_indices={out_indices} and "
                f"neck_hidden_sizes={neck_hidden_sizes}"
            )
        if any(not 0 <= index < num_hidden_layers for index in out_indices):
            raise ValueError(f"out_indices {out_indices} must lie in [0, {num_hidden_layers})")
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        if pos_embed_interpolation not in ("official", "transformers"):
            raise ValueError(f"pos_embed_interpolation must be 'official' or 'transformers', got {pos_embed_interpolation!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")

        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.mlp_ratio = mlp_ratio
        self.use_swiglu_ffn = use_swiglu_ffn
        self.layer_norm_eps = layer_norm_eps
        self.layerscale_value = layerscale_value
        self.qkv_bias = qkv_bias
        self.drop_path_rate = drop_path_rate
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.out_indices = out_indices
        self.neck_hidden_sizes = neck_hidden_sizes
        self.fusion_hidden_size = fusion_hidden_size
        self.head_hidden_size = head_hidden_size
        self.depth_estimation_type = depth_estimation_type
        self.max_depth = float(max_depth) if max_depth is not None else 1.0
        self.pos_embed_interpolation = pos_embed_interpolation
        self.version = version
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @property
    def mlp_hidden_size(self) -> int:
        hidden = int(self.hidden_size * self.mlp_ratio)
        if self.use_swiglu_ffn:
            # DINOv2's fused SwiGLU keeps the parameter count of the GELU MLP: 2/3 of the width, rounded up to 8.
            hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        return hidden

    @property
    def upsample_align_corners(self) -> bool:
        """Bilinear `align_corners` for resizing predictions to the input size: the official V1 code uses
        `False`, V2 `True` (also for models of unknown release)."""
        return self.version != "v1"

    @classmethod
    def from_variant(
        cls,
        version: str,
        size: str,
        depth_estimation_type: str = "relative",
        max_depth: float | None = None,
        **kwargs,
    ) -> "DepthAnythingHFConfig":
        """The configuration of an official release, e.g. `from_variant("v2", "small")`.

        Args:
            version: `"v1"` or `"v2"`.
            size: `"small"`, `"base"`, `"large"` or `"giant"` (giant exists for v2 only).
            depth_estimation_type: `"relative"` or `"metric"`.
            max_depth: metres for metric heads (20 indoor, 80 outdoor).
        """
        if version not in TAPPED_LAYERS:
            raise ValueError(f"version must be one of {sorted(TAPPED_LAYERS)}, got {version!r}")
        if size not in TAPPED_LAYERS[version]:
            raise ValueError(f"size must be one of {list(TAPPED_LAYERS[version])} for {version}, got {size!r}")
        return cls(
            **_ENCODER_SIZES[size],
            **_DECODER_SIZES[size],
            out_indices=TAPPED_LAYERS[version][size],
            depth_estimation_type=depth_estimation_type,
            max_depth=max_depth,
            version=version,
            **kwargs,
        )

    @classmethod
    def from_variant_name(cls, name: str, **kwargs) -> "DepthAnythingHFConfig":
        """Parse names such as `"v2-small"`, `"v1-large"` or `"v2-base-metric-20"`."""
        parts = name.lower().split("-")
        if len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "metric"):
            raise ValueError(f"Expected a variant name like 'v2-small' or 'v2-base-metric-20', got {name!r}")
        if len(parts) == 4:
            kwargs.update(depth_estimation_type="metric", max_depth=float(parts[3]))
        return cls.from_variant(parts[0], parts[1], **kwargs)


__all__ = ["DepthAnythingHFConfig", "SIZE_OF_HIDDEN_SIZE", "TAPPED_LAYERS"]
