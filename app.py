"""Depth Anything demo page (Gradio, in the Hugging Face Spaces layout: `python app.py`).

Upload an image: the colour depth map (Spectral_r, red = near) appears beside it under a slider, with downloads
of the 16-bit PNG (+ its min/max), the raw `.npy` and a PLY point cloud.

    DEPTH_ANYTHING_MODEL=path/or/hub-id python app.py      # default: depth-anything/Depth-Anything-V2-Small-hf

A relative model predicts affine-invariant disparity, not metres: its point cloud needs the conversion
`1 / depth = scale * disparity + shift`, which the page asks for; a metric model's is built directly.
"""

import os
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from transformers import AutoImageProcessor

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.prediction import colorize, quantity_of
from depth_anything_hf.prediction.runner import PointCloudSettings, predict_images, write_image_outputs

DEFAULT_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"


class DepthDemo:
    """The model, its processor and the page's handler."""

    def __init__(self, model_name_or_path: str, device: str | None = None):
        self.model_name_or_path = model_name_or_path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = DepthAnythingHFForDepthEstimation.from_pretrained(model_name_or_path).to(self.device).eval()
        self.processor = AutoImageProcessor.from_pretrained(model_name_or_path)
        self.estimation_type = self.model.config.depth_estimation_type
        self.quantity = quantity_of(self.estimation_type)
        self.output_dir = Path(tempfile.mkdtemp(prefix="depth_anything_demo_"))

    def estimate(self, image: np.ndarray | None, hfov: float, disparity_scale: str = "", disparity_shift: str = ""):
        """(slider pair (image, colour map), [16-bit PNG, its JSON, .npy, PLY or nothing], status text).
        `disparity_scale` and `disparity_shift` are the text of the page's fields ("" = not given)."""
        if image is None:
            raise gr.Error("Upload an image first.")
        try:
            disparity_scale, disparity_shift = (float(text) if text.strip() else None
                                                for text in (disparity_scale, disparity_shift))
        except ValueError as error:
            raise gr.Error(f"The disparity scale and shift must be numbers: {error}") from error
        image = np.ascontiguousarray(image[..., :3]) if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        prediction = predict_images(self.model, self.processor, [image], self.device, None)[0]
        outputs = ["png16", "npy"]
        status = f"{image.shape[1]}x{image.shape[0]}, {self.quantity['quantity']} ({self.quantity['unit']})."
        point_clouds = None
        try:
            conversion = {}
            if self.estimation_type == "relative" and disparity_scale is not None and disparity_shift is not None:
                conversion = {"disparity_scale": disparity_scale, "disparity_shift": disparity_shift}
            point_clouds = PointCloudSettings(self.estimation_type, horizontal_fov=hfov, **conversion)
            outputs.append("ply")
        except ValueError as error:
            status += f" No point cloud: {error}"
        stem = Path(tempfile.mkdtemp(dir=self.output_dir)) / "image"
        metadata = {"quantity": self.quantity["quantity"], "unit": self.quantity["unit"],
                    "model": self.model_name_or_path, "source": "upload"}
        try:
            paths = write_image_outputs(stem, image, prediction, outputs, self.quantity, metadata, point_clouds, "upload")
        except ValueError as error:
            raise gr.Error(str(error)) from error
        files = [paths["png16"], str(Path(paths["png16"]).with_suffix(".json")), paths["npy"]]
        files += [paths["ply"]] if "ply" in paths else []
        return (image, colorize(prediction, self.quantity["quantity"])), files, status


def build_demo(model_name_or_path: str = DEFAULT_MODEL, device: str | None = None) -> gr.Blocks:
    demo_model = DepthDemo(model_name_or_path, device)
    relative = demo_model.estimation_type == "relative"
    with gr.Blocks(title="Depth Anything") as demo:
        gr.Markdown(
            f"# Depth Anything\n`{model_name_or_path}`: "
            + ("relative model, predicts affine-invariant **disparity** (larger = nearer), not metres."
               if relative else "metric model, predicts **depth in metres**.")
        )
        with gr.Row():
            image = gr.Image(label="Image", type="numpy", elem_id="input-image")
            comparison = gr.ImageSlider(label="Image | depth (red = near)", elem_id="depth-slider")
        with gr.Row():
            hfov = gr.Number(value=60, label="Horizontal field of view (degrees), for the point cloud")
            # Text, not gr.Number: an empty number field submits 0, which is not "no conversion".
            scale = gr.Textbox(label="Disparity scale (1/depth = scale * disparity + shift)", visible=relative)
            shift = gr.Textbox(label="Disparity shift", visible=relative)
        submit = gr.Button("Estimate depth", variant="primary", elem_id="estimate")
        files = gr.File(label="Downloads: 16-bit PNG (+ min/max JSON), .npy, point cloud", file_count="multiple")
        status = gr.Markdown(elem_id="status")
        submit.click(demo_model.estimate, inputs=[image, hfov, scale, shift], outputs=[comparison, files, status])
    return demo


if __name__ == "__main__":
    build_demo(os.environ.get("DEPTH_ANYTHING_MODEL", DEFAULT_MODEL)).launch()
