"""The dataset card and the Hub upload of a finished pseudo-labeled dataset."""

import os
from pathlib import Path

import datasets
from huggingface_hub import DatasetCardData, HfApi

from ..data.pseudo_labels import PSEUDO_LABEL_FEATURES, SHARD_PATTERN, SPLIT
from .shards import commit_atomically, hidden_temporary_path


def write_dataset_card(output_dir: str | os.PathLike, run: dict, num_images: int, skipped_summary: str = "") -> None:
    """README.md of a finished pseudo-labeled dataset: `datasets` metadata (configs, features, size) and a summary."""
    info = datasets.DatasetInfo(
        features=PSEUDO_LABEL_FEATURES,
        splits=datasets.SplitDict.from_split_dict([{"name": SPLIT, "num_examples": num_images}]),
    )
    card_data = DatasetCardData(
        configs=[{"config_name": "default", "data_files": [{"split": SPLIT, "path": SHARD_PATTERN}]}],
        tags=["depth-estimation", "pseudo-labels", "depth-anything"],
    )
    datasets.info.DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    sources = "\n".join(f"- `{source}`" for source in run["sources"])
    content = f"""---
{card_data.to_yaml()}
---

# Pseudo-labeled images (Depth Anything data engine)

{num_images} unlabeled images with the pseudo disparity predicted by the teacher `{run["teacher"]}`
(weights sha256 `{run["teacher_sha256"]}`) on the clean images, written by `training_scripts/pseudo_label.py`
(mixed precision: {run["mixed_precision"]}).

Sources:
{sources}

{skipped_summary}

Columns: `image` (the original file bytes), `disparity` (float16 [h, w], affine-invariant disparity at the
teacher's input resolution, larger = nearer), `original_height` / `original_width` (the decoded image),
`dataset` and `id` (the image's source and its id there), `teacher` and `teacher_sha256`.

```python
import datasets
pseudo_labels = datasets.load_dataset("path/to/this/folder", split="{SPLIT}")  # or a Hub dataset id
# as student samples (the image resized as when it was labelled, float32 disparity):
from depth_anything_hf.data.pseudo_labels import load_pseudo_labels
samples = load_pseudo_labels("path/to/this/folder")
```
"""
    path = Path(output_dir) / "README.md"
    file = open(hidden_temporary_path(path), "wb")
    file.write(content.encode())
    commit_atomically(file, path)


# What a finished pseudo-labeled dataset publishes: the card and the shards, not progress records or temp files.
PUBLISHED_FILES = ("README.md", SHARD_PATTERN)


def push_pseudo_labels_to_hub(output_dir: str | os.PathLike, repo_id: str, api: HfApi | None = None):
    """Upload a finished pseudo-labeled dataset (card and shards) to the Hub dataset repository `repo_id`."""
    api = api if api is not None else HfApi()
    api.create_repo(repo_id=repo_id, repo_type="dataset", exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=os.fspath(output_dir),
        allow_patterns=list(PUBLISHED_FILES),
        commit_message="Upload pseudo-labels of the Depth Anything data engine",
    )
