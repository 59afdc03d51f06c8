"""The end of a training run: `save_final_model` writes what the pipeline loads and, with --push_to_hub,
publishes it through huggingface_hub (a recording HfApi stands in for the network)."""

import argparse
import json
from pathlib import Path

from accelerate import Accelerator
from transformers import pipeline

import depth_anything_hf.hub.upload
from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.training.export import save_final_model


class RecordingHfApi:
    calls = []

    def __init__(self, token=None):
        pass

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        self.calls.append(("upload_folder", sorted(path.name for path in folder.iterdir())))
        return argparse.Namespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/0")


def test_final_model_is_saved_for_the_pipeline_and_pushed(tmp_path, monkeypatch, capsys, tiny_config):
    monkeypatch.setattr(depth_anything_hf.hub.upload, "HfApi", RecordingHfApi)
    RecordingHfApi.calls = []
    args = argparse.Namespace(
        output_dir=str(tmp_path / "student"),
        resolution=56,
        encoder_init="facebook/dinov2-small",
        init_from=None,
        dataset=[],
        unlabeled_dataset=["photos/"],
        pseudo_labels=[],
        push_to_hub=True,
        hub_model_id="user/tiny-student",
    )
    save_final_model(Accelerator(cpu=True), DepthAnythingHFForDepthEstimation(tiny_config(version="v2")), args)

    output_dir = Path(args.output_dir)
    training_args = json.loads((output_dir / "training_args.json").read_text())
    assert training_args["base_model"] == "facebook/dinov2-small"
    assert training_args["datasets"] == ["photos/"]
    depth_estimator = pipeline("depth-estimation", model=str(output_dir))
    assert depth_estimator.image_processor.size == {"height": 56, "width": 56}

    (create, create_kwargs), (upload, uploaded_files) = RecordingHfApi.calls
    assert create == "create_repo" and create_kwargs["repo_id"] == "user/tiny-student"
    assert upload == "upload_folder"
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json",
            "modeling_depth_anything_hf.py", "image_processing_depth_anything_hf.py"} <= set(uploaded_files)
    assert "huggingface.co/user/tiny-student" in capsys.readouterr().out
