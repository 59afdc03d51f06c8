"""Model cards for checkpoints and push-to-hub, against local folders and a recording HfApi double."""

import ast
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

from depth_anything_hf import DepthAnythingHFForDepthEstimation
from depth_anything_hf.cli import build_parser
from depth_anything_hf.hub import (
    APACHE_2,
    CC_BY_NC_4,
    files_to_upload,
    lineage_license,
    model_card_for_checkpoint,
    push_to_hub,
    stage_for_hub,
    variant_license,
)
from depth_anything_hf.image_processing_depth_anything_hf import DepthAnythingHFImageProcessor

# Besides the code transformers copies next to the weights (the model's modules and what they import),
# a published checkpoint holds exactly these files.
PUBLISHED_DATA_FILES = ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]
STRAY_SCRIPT = "notes.py"
RESULTS = {
    "model": "runs/student",
    "code_version": "0.1.0+git.abc1234",
    "flip_average": False,
    "evaluations": [
        {"dataset": "nyu", "title": "NYU Depth v2", "protocol": "disparity", "num_images": 654, "num_skipped": 0,
         "metrics": {"abs_rel": 0.05312, "delta1": 0.97051, "rmse": 0.01234}},
        {"dataset": "kitti", "title": "KITTI", "protocol": "midas", "num_images": 697, "num_skipped": 2,
         "metrics": {"abs_rel": 0.08049, "delta1": 0.93612}},
    ],
}
TRAINING_ARGS = {"learning_rate": 5e-6, "num_epochs": 20, "hub_token": "hf_secret_value", "batch_size": 8}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_config) -> Path:
    """A save_pretrained folder of a tiny model plus the clutter a training run leaves behind."""
    directory = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(tiny_config(version="v2")).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(directory)
    DepthAnythingHFImageProcessor().save_pretrained(directory)
    (directory / "results.json").write_text(json.dumps(RESULTS))
    (directory / "training_args.json").write_text(json.dumps(TRAINING_ARGS))
    (directory / "optimizer.pt").write_bytes(b"state")
    (directory / STRAY_SCRIPT).write_text("# a stray script, not part of the model code\n")
    return directory


def _published_files(checkpoint: Path) -> list[str]:
    """What must be published: the data files and the code save_pretrained copied (not the stray script)."""
    saved_code = [path.name for path in checkpoint.glob("*.py") if path.name != STRAY_SCRIPT]
    assert {"configuration_depth_anything_hf.py", "modeling_depth_anything_hf.py",
            "image_processing_depth_anything_hf.py"} <= set(saved_code)
    return sorted(PUBLISHED_DATA_FILES + saved_code)


def test_official_licences_follow_the_variant():
    assert [variant_license("v1", size) for size in ("small", "base", "large")] == [APACHE_2] * 3
    assert variant_license("v2", "small") == APACHE_2
    assert [variant_license("v2", size) for size in ("base", "large", "giant")] == [CC_BY_NC_4] * 3


def test_fine_tuned_weights_inherit_the_licence_of_their_base(tmp_path):
    assert lineage_license("v2", "small", "depth-anything/Depth-Anything-V2-Large-hf") == CC_BY_NC_4
    assert lineage_license("v2", "large", "depth-anything/Depth-Anything-V2-Small-hf") == APACHE_2
    assert lineage_license("v2", "large", "facebook/dinov2-large") == APACHE_2  # trained here from DINOv2
    assert lineage_license("v2", "large") == CC_BY_NC_4  # unknown lineage: the variant's official licence
    local_base = tmp_path / "base"
    local_base.mkdir()
    (local_base / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# base\n")
    assert lineage_license("v1", "small", str(local_base)) == CC_BY_NC_4
    with pytest.raises(ValueError, match="Cannot tell the licence"):
        lineage_license("v2", "small", "someone/unknown-model")


def test_non_commercial_lineage_cannot_be_relicensed(checkpoint):
    with pytest.raises(ValueError, match="must keep that licence"):
        model_card_for_checkpoint(
            checkpoint, "user/model", base_model="depth-anything/Depth-Anything-V2-Base-hf", license="apache-2.0"
        )
    with pytest.raises(ValueError, match="non-standard width"):
        model_card_for_checkpoint(checkpoint, "user/model")


def test_card_metadata_parses_locally_and_matches_results_json(checkpoint, tmp_path):
    card = model_card_for_checkpoint(checkpoint, "user/tiny-depth", base_model="depth-anything/Depth-Anything-V2-Base-hf")
    card.save(tmp_path / "README.md")
    parsed = ModelCard.load(tmp_path / "README.md")  # local YAML parsing; validate() would need the network
    data = parsed.data
    assert (data.license, data.library_name, data.pipeline_tag) == (CC_BY_NC_4, "transformers", "depth-estimation")
    assert data.base_model == "depth-anything/Depth-Anything-V2-Base-hf"
    assert {"depth-anything", "depth-estimation", "relative-depth"} <= set(data.tags)
    recorded = {
        (result.dataset_type, result.metric_config, result.metric_type): result.metric_value
        for result in data.eval_results
    }
    expected = {
        (row["dataset"], row["protocol"], name): round(value, 4)
        for row in RESULTS["evaluations"]
        for name, value in row["metrics"].items()
    }
    assert recorded == expected
    text = parsed.text
    for section in ("## Model description", "## What the output means", "## Intended uses and limitations",
                    "## How to use", "## Training details", "## Evaluation", "## Citation"):
        assert section in text
    assert "affine-invariant disparity" in text and "not metres" in text
    assert "| NYU Depth v2 | `disparity` | 654 (0) | 0.053 | 0.012 | 0.971 |" in text
    assert "| KITTI | `midas` | 697 (2) | 0.080 | — | 0.936 |" in text
    assert "0.1.0+git.abc1234" in text and "`midas` = the same alignment" in text
    assert "| `learning_rate` | `5e-06` |" in text
    assert "hf_secret_value" not in text and "hub_token" not in text


def test_metric_checkpoint_card_states_metres(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = DepthAnythingHFForDepthEstimation(
        tiny_config(version="v2", depth_estimation_type="metric", max_depth=20.0)
    )
    model.save_pretrained(tmp_path)
    card = model_card_for_checkpoint(tmp_path, "user/metric", base_model="facebook/dinov2-small")
    assert card.data.license == APACHE_2
    assert "metric depth in metres" in card.text and "between 0 and 20 m" in card.text
    assert "metric-depth" in card.data.tags
    assert "Not evaluated yet" in card.text


def test_files_to_upload_are_exactly_weights_configs_and_remote_code(checkpoint):
    assert files_to_upload(checkpoint) == [name for name in _published_files(checkpoint) if name != "README.md"]


def _travelling_files_listed_in_the_readme() -> set[str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The code that travels with the weights", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^- `(\w+\.py)`", section, flags=re.MULTILINE))


def test_the_code_that_travels_is_what_the_readme_lists_and_imports_only_torch_transformers_and_itself(checkpoint):
    listed = _travelling_files_listed_in_the_readme()
    saved = {path.name for path in checkpoint.glob("*.py")} - {STRAY_SCRIPT}
    published = {name for name in files_to_upload(checkpoint) if name.endswith(".py")}
    assert listed == saved == published == {
        "configuration_depth_anything_hf.py", "modeling_depth_anything_hf.py", "image_processing_depth_anything_hf.py"
    }
    for name in sorted(listed):
        tree = ast.parse((checkpoint / name).read_text(encoding="utf-8"))
        siblings = {f"{node.module}.py" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
        assert siblings <= listed, name
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
        third_party = {module.split(".")[0] for module in modules} - set(sys.stdlib_module_names)
        # numpy and Pillow come with transformers' image processing.
        assert third_party <= {"torch", "transformers", "numpy", "PIL"}, (name, third_party)


def test_missing_weights_or_processor_config_are_refused(checkpoint, tmp_path):
    for missing in ("model.safetensors", "preprocessor_config.json"):
        incomplete = tmp_path / f"without_{missing}"
        incomplete.mkdir()
        for name in files_to_upload(checkpoint):
            if name != missing:
                (incomplete / name).write_bytes((checkpoint / name).read_bytes())
        with pytest.raises(ValueError, match="safetensors" if missing.endswith("safetensors") else "preprocessor"):
            files_to_upload(incomplete)


class RecordingHfApi:
    """Stands in for HfApi: records the calls and which files the upload would send."""

    def __init__(self):
        self.calls = []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        uploaded = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
        self.calls.append(("upload_folder", {**kwargs, "files": uploaded, "card": (folder / "README.md").read_text()}))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/0")


def test_push_to_hub_creates_the_repo_and_uploads_exactly_the_published_files(checkpoint):
    api = RecordingHfApi()
    commit = push_to_hub(
        checkpoint, "user/tiny-depth", private=True, api=api, base_model="depth-anything/Depth-Anything-V2-Small-hf"
    )
    (create_name, create_kwargs), (upload_name, upload_kwargs) = api.calls
    assert create_name == "create_repo" and upload_name == "upload_folder"
    assert create_kwargs == {"repo_id": "user/tiny-depth", "repo_type": "model", "private": True, "exist_ok": True}
    assert upload_kwargs["repo_id"] == "user/tiny-depth" and upload_kwargs["repo_type"] == "model"
    assert upload_kwargs["files"] == _published_files(checkpoint)
    assert ModelCard(upload_kwargs["card"]).data.license == APACHE_2
    assert commit.commit_url.endswith("/commit/0")


def test_push_cli_local_dir_writes_the_published_files(checkpoint, tmp_path):
    parser = build_parser()
    output_dir = tmp_path / "hub_copy"
    arguments = parser.parse_args([
        "push-to-hub", str(checkpoint), "user/tiny-depth", "--base_model", "facebook/dinov2-small",
        "--datasets", "synthetic-rgbd", "--local_dir", str(output_dir),
    ])
    arguments.func(arguments)
    assert sorted(path.name for path in output_dir.iterdir()) == _published_files(checkpoint)
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.datasets == ["synthetic-rgbd"] and card.data.license == APACHE_2
    assert (output_dir / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()


def test_card_snippets_run_against_the_published_folder(checkpoint, tmp_path, monkeypatch):
    published = tmp_path / "user--tiny-depth"
    stage_for_hub(checkpoint, published, "user/tiny-depth", base_model="facebook/dinov2-small")
    card_text = (published / "README.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", card_text, flags=re.DOTALL)
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)
    Image.fromarray((torch.rand(60, 80, 3) * 255).byte().numpy()).save("example.jpg")
    for snippet in snippets:
        namespace = {}
        exec(snippet.replace("user/tiny-depth", str(published)), namespace)
        assert tuple(namespace["prediction"].shape) == (60, 80)
    assert Path("example_depth.png").is_file()
