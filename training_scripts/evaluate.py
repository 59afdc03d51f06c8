"""Evaluate a checkpoint on depth datasets (the same runner as `depth-anything eval`).

    python training_scripts/evaluate.py CHECKPOINT --dataset nyu=/data/nyu --dataset middlebury=skimage \
        [--protocols disparity midas] [--flip_average] [--batch_size 4] [--output_dir runs/eval]

Writes results.json (per dataset and protocol: metrics, image counts, settings; model id, code
version) and prints a markdown table.
"""

import argparse

from depth_anything_hf.cli import add_eval_arguments, run_eval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_eval(add_eval_arguments(parser).parse_args())


if __name__ == "__main__":
    main()
