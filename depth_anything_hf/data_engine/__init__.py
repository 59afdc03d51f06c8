"""The data engine of Depth Anything (docs/method.md, section 4): the teacher labels unlabeled images.

- `labeling`: pseudo disparity T(u) from the teacher on CLEAN images, the one computation shared by
  `training_scripts/pseudo_label.py` and the student's online `--teacher` mode;
- `shards`: atomically written parquet shards and the per-process resume records;
- `publishing`: the dataset card and the upload of a finished pseudo-labeled dataset.

The schema of what it writes, and the reader back to student samples, are in `depth_anything_hf.data.pseudo_labels`.
"""
