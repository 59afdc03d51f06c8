"""The README's main job, training_scripts/quickstart.sh, runs end to end (with 2 training steps per stage)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "training_scripts" / "sample_data"


def test_sample_data_is_in_the_folder_format_and_small():
    rows = [json.loads(line) for line in (SAMPLE_DATA / "rgbd" / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 48
    for row in rows:
        assert (SAMPLE_DATA / "rgbd" / row["file_name"]).is_file()
        with Image.open(SAMPLE_DATA / "rgbd" / row["depth_file_name"]) as depth:
            assert depth.mode in ("I;16", "I") and depth.size == (row["width"], row["height"])
    photos = sorted((SAMPLE_DATA / "photos").glob("*.jpg"))
    assert len(photos) == 32 and all(max(Image.open(photo).size) <= 640 for photo in photos)
    total_bytes = sum(path.stat().st_size for path in SAMPLE_DATA.rglob("*") if path.is_file())
    assert total_bytes < 6 * 2**20


def test_quickstart_runs_teacher_pseudo_labels_student_and_writes_a_depth_map(tmp_path):
    output_dir = tmp_path / "quickstart"
    result = subprocess.run(
        ["bash", str(REPO / "training_scripts" / "quickstart.sh"), str(output_dir)],
        env={**os.environ, "PYTHON": sys.executable, "TEACHER_STEPS": "2", "STUDENT_STEPS": "2"},
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "TOY RUN" in result.stdout and "RANDOM initialisation" in result.stdout
    for stage in ("teacher", "student"):
        assert (output_dir / stage / "model.safetensors").is_file()
        assert (output_dir / stage / "preprocessor_config.json").is_file()
    pseudo_labels = datasets.load_dataset(str(output_dir / "pseudo_labels"), split="train")
    assert sorted(pseudo_labels["id"]) == sorted(photo.name for photo in (SAMPLE_DATA / "photos").glob("*.jpg"))
    with Image.open(output_dir / "P1070502_disparity.png") as depth_map, Image.open(
        SAMPLE_DATA / "holdout" / "P1070502.jpg"
    ) as photo:
        assert depth_map.format == "PNG" and depth_map.mode == "RGB" and depth_map.size == photo.size
        colours = np.unique(np.asarray(depth_map).reshape(-1, 3), axis=0)
        assert len(colours) > 16, "the depth map should not be a flat image"
