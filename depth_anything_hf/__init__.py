"""Depth Anything (V1 and V2) for the Hugging Face stack, with its two-stage semi-supervised training.

Importing the package registers the model with transformers' Auto classes, so `AutoConfig`, `AutoModel`,
`AutoModelForDepthEstimation`, `AutoImageProcessor` and `pipeline("depth-estimation")` resolve
`model_type="depth_anything_hf"` checkpoints. `pipeline("depth-estimation")` gets a subclass (`pipelines.py`) that
lets this package's image processor decode its input, so 16-bit and float images keep their values.
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
from .pipelines import DepthAnythingHFDepthEstimationPipeline, register_depth_estimation_pipeline

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
register_depth_estimation_pipeline()

__all__ = [
    "DepthAnythingHFConfig",
    "DepthAnythingHFDepthEstimationPipeline",
    "DepthAnythingHFForDepthEstimation",
    "DepthAnythingHFImageProcessor",
    "DepthAnythingHFOutput",
    "DepthAnythingHFPreTrainedModel",
    "checkpoints",
    "__version__",
]
