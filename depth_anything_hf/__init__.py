"""Depth Anything (V1 and V2) for the Hugging Face stack, with its two-stage semi-supervised training.

Importing the package registers the model with transformers' Auto classes, so `AutoConfig`, `AutoModel`,
`AutoModelForDepthEstimation`, `AutoImageProcessor` and `pipeline("depth-estimation")` resolve
`model_type="depth_anything_hf"` checkpoints.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForDepthEstimation

from . import checkpoints
from .configuration_depth_anything_hf import DepthAnythingHFConfig
from .image_processing_depth_anything_hf import DepthAnythingHFImageProcessor
from .modeling_depth_anything_hf import (
    DepthAnythingHFForDepthEstimation,
    DepthAnythingHFOutput,
    DepthAnythingHFPreTrainedModel,
)

__version__ = "0.1.0"

AutoConfig.register(DepthAnythingHFConfig.model_type, DepthAnythingHFConfig, exist_ok=True)
AutoModel.register(DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, exist_ok=True)
AutoModelForDepthEstimation.register(DepthAnythingHFConfig, DepthAnythingHFForDepthEstimation, exist_ok=True)
# One implementation (torch tensors throughout) serves both of transformers' processor backends.
AutoImageProcessor.register(
    DepthAnythingHFConfig,
    image_processor_classes={"pil": DepthAnythingHFImageProcessor, "torchvision": DepthAnythingHFImageProcessor},
    exist_ok=True,
)
# save_pretrained copies the self-contained code next to the weights and writes `auto_map`, so that
# transformers alone loads the directory with trust_remote_code=True.
DepthAnythingHFConfig.register_for_auto_class()
DepthAnythingHFForDepthEstimation.register_for_auto_class("AutoModelForDepthEstimation")
DepthAnythingHFImageProcessor.register_for_auto_class()

__all__ = [
    "DepthAnythingHFConfig",
    "DepthAnythingHFForDepthEstimation",
    "DepthAnythingHFImageProcessor",
    "DepthAnythingHFOutput",
    "DepthAnythingHFPreTrainedModel",
    "checkpoints",
    "__version__",
]
