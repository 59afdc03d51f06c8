"""Publishing a checkpoint folder (`depth-anything push-to-hub`, defined in `depth_anything_hf.cli`): exactly the weights, the configs, the code that
travels with the weights and a generated card; nothing else a training run leaves beside them.
"""

import json
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, ModelCard
from huggingface_hub.constants import REPOCARD_NAME

from .cards import model_card_for_checkpoint

# Files of a checkpoint folder that are published; anything else (optimizer state, logs, results.json,
# training_args.json) stays local.
CONFIG_FILES = ("config.json", "preprocessor_config.json")
SAFETENSORS_INDEX = "model.safetensors.index.json"


def _remote_code_modules(auto_map: dict) -> set[str]:
    """Module names referenced by an `auto_map` ("module.Class", a [slow, fast] pair, or a {backend: ...} map)."""
    modules = set()
    for reference in auto_map.values():
        if isinstance(reference, dict):
            reference = list(reference.values())
        for class_reference in reference if isinstance(reference, (list, tuple)) else [reference]:
            if class_reference:
                modules.add(class_reference.split("--")[-1].rsplit(".", 1)[0])
    return modules


def files_to_upload(checkpoint_dir: str | Path) -> list[str]:
    """Names of the checkpoint files that are published (weights, configs, remote code), sorted.

    The card (README.md) is generated and added by `stage_for_hub`.

    Raises:
        ValueError when safetensors weights, a config, the processor config or a remote-code module
        named by an `auto_map` is missing.
    """
    from transformers.dynamic_module_utils import get_relative_import_files

    checkpoint_dir = Path(checkpoint_dir)
    weights = sorted(path.name for path in checkpoint_dir.glob("*.safetensors"))
    if not weights:
        raise ValueError(
            f"{checkpoint_dir} has no .safetensors weights; save the model with save_pretrained (safetensors is "
            "the default) before publishing"
        )
    missing = [name for name in CONFIG_FILES if not (checkpoint_dir / name).is_file()]
    if missing:
        raise ValueError(f"{checkpoint_dir} lacks {missing}: save the model and its image processor there")
    modules = set()
    for name in CONFIG_FILES:
        modules |= _remote_code_modules(json.loads((checkpoint_dir / name).read_text()).get("auto_map", {}))
    if not modules:
        raise ValueError(
            f"{checkpoint_dir}/config.json has no auto_map: import depth_anything_hf before save_pretrained so that "
            "the self-contained code is saved with the weights"
        )
    code_files = set()
    for module in modules:
        module_file = checkpoint_dir / f"{module}.py"
        if not module_file.is_file():
            raise ValueError(f"{checkpoint_dir} lacks {module_file.name}, named by an auto_map")
        code_files |= {Path(path).name for path in [module_file, *get_relative_import_files(module_file)]}
    index = [SAFETENSORS_INDEX] if (checkpoint_dir / SAFETENSORS_INDEX).is_file() else []
    return sorted([*weights, *index, *CONFIG_FILES, *code_files])


def stage_for_hub(
    checkpoint_dir: str | Path, output_dir: str | Path, repo_id: str, card: ModelCard | None = None, **card_kwargs
) -> list[str]:
    """Copy exactly what would be uploaded into `output_dir` and write the card as README.md.

    Args:
        checkpoint_dir: a `save_pretrained` folder.
        output_dir: destination (created; a local stand-in for the Hub repository).
        repo_id: the Hub repository id the card refers to.
        card: a ready card; by default `model_card_for_checkpoint(checkpoint_dir, repo_id, **card_kwargs)`.

    Returns:
        The sorted names of the files in `output_dir`.
    """
    checkpoint_dir, output_dir = Path(checkpoint_dir), Path(output_dir)
    names = files_to_upload(checkpoint_dir)
    card = card if card is not None else model_card_for_checkpoint(checkpoint_dir, repo_id, **card_kwargs)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(checkpoint_dir / name, output_dir / name)
    card.save(output_dir / REPOCARD_NAME)
    return sorted([*names, REPOCARD_NAME])


def push_to_hub(
    checkpoint_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload Depth Anything checkpoint",
    api: HfApi | None = None,
    **card_kwargs,
):
    """Publish a checkpoint: `create_repo` then one `upload_folder` commit of the staged files.

    Args:
        checkpoint_dir, repo_id: as in `stage_for_hub`.
        private: create the repository private.
        token: Hub token (default: the logged-in one).
        commit_message: the commit message.
        api: the `HfApi` to use (tests pass a double).
        card_kwargs: forwarded to `model_card_for_checkpoint` (results, training_args, base_model, ...).

    Returns:
        The `CommitInfo` of the upload.
    """
    api = api if api is not None else HfApi(token=token)
    with tempfile.TemporaryDirectory() as staging_dir:
        stage_for_hub(checkpoint_dir, staging_dir, repo_id, **card_kwargs)
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id, repo_type="model", folder_path=staging_dir, commit_message=commit_message
        )
