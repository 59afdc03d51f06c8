"""The `evaluate`-library metric module: `evaluate.load(depth_anything_hf.evaluation.EVALUATE_MODULE_PATH)`.

The module script (`depth_metrics.py`) lives in this folder because `evaluate.load(<folder>)`
looks for `<folder>/<folder name>.py`; being a package makes the folder ship with the wheel.
"""
