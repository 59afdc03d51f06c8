"""The `depth-estimation` pipeline, registered so that our image processor sees the image as decoded.

transformers' `DepthEstimationPipeline` reads every input with `transformers.image_utils.load_image`, which
converts it to 8-bit RGB before the image processor runs: a 16-bit PNG is clipped to 255 and a float ("F")
image is truncated to integers. With `DepthAnythingHFImageProcessor` this pipeline hands the input (path, URL,
base64 text, bytes, PIL image of any mode, array) to the processor's own reader instead, so that the pipeline
gives the processor's result for every mode the processor supports. With any other image processor it is
transformers' pipeline unchanged.
"""

from transformers.pipelines import PIPELINE_REGISTRY, DepthEstimationPipeline
from transformers.utils import logging

from .image_processing_depth_anything_hf import DepthAnythingHFImageProcessor, load_image_tensor


class DepthAnythingHFDepthEstimationPipeline(DepthEstimationPipeline):
    """transformers' depth-estimation pipeline that leaves decoding to `DepthAnythingHFImageProcessor`."""

    def preprocess(self, image, timeout=None):
        if not isinstance(self.image_processor, DepthAnythingHFImageProcessor):
            return super().preprocess(image, timeout)
        pixels = load_image_tensor(image, "image", timeout)
        model_inputs = self.image_processor(images=pixels, return_tensors="pt").to(self.dtype)
        model_inputs["target_size"] = tuple(pixels.shape[-2:])
        return model_inputs


def register_depth_estimation_pipeline() -> None:
    """Make `pipeline("depth-estimation")` build `DepthAnythingHFDepthEstimationPipeline`."""
    task = PIPELINE_REGISTRY.supported_tasks["depth-estimation"]
    if task["impl"] is DepthAnythingHFDepthEstimationPipeline:
        return
    # register_pipeline warns that it replaces the built-in class, which this subclass keeps for other models.
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        PIPELINE_REGISTRY.register_pipeline(
            "depth-estimation",
            pipeline_class=DepthAnythingHFDepthEstimationPipeline,
            pt_model=task["pt"],
            default=task.get("default"),
            type=task.get("type"),
        )
    finally:
        logging.set_verbosity(verbosity)
