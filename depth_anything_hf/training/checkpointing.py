"""Checkpoint save / resume for the training scripts, with every process's data position and random state.

Checkpoints follow the diffusers training scripts: `OUTPUT_DIR/checkpoint-STEP` folders written by
`accelerator.save_state` in the scripts' loops (model, optimizer, scheduler, every process's random states and
the objects registered with `register_for_checkpointing`) into the folder `checkpoint_folder` hands out, rotated
to `--checkpoints_total_limit`, resumed by `accelerator.load_state` with `--resume_from_checkpoint latest|PATH`.

Each checkpoint also holds the run's arguments (`training_args.json`). A resume compares them with the new
command line: a change in `EXACT_RESUME_ARGUMENTS` is refused, any other change is logged as a warning and
recorded (`resume_history`), so that the final `training_args.json` shows every value the run trained with.
`latest` falls back to the newest checkpoint that loads, with a warning naming the unreadable file.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import gather_object

from ..checkpoints import unreadable_files
from .arguments import RESUME_HISTORY, training_arguments

logger = get_logger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
TRAINING_ARGS_FILE = "training_args.json"
# What fixes the examples each step reads, their order, their random draws, or the tensors in the checkpoint:
# resumed with other values, the run would not continue but silently become another one.
EXACT_RESUME_ARGUMENTS = (
    "dataset",
    "unlabeled_dataset",
    "pseudo_labels",
    "teacher",
    "model_config",
    "resolution",
    "shuffle_buffer_size",
    "train_batch_size",
    "gradient_accumulation_steps",
    "unlabeled_ratio",
    "seed",
)
# Naming the checkpoint to resume from is no change of the run.
_NOT_COMPARED = ("resume_from_checkpoint", RESUME_HISTORY)


class ProcessStates:
    """Checkpointable state that differs between processes (data-stream positions, augmentation generators).

    accelerate writes registered objects from the main process only, so `state_dict` gathers every process's
    state (every process calls `save_state`) and `load_state_dict` hands each process its own part.
    """

    def __init__(self, accelerator: Accelerator, **components):
        self.accelerator = accelerator
        self.components = components

    def state_dict(self) -> dict:
        local_state = {name: component.state_dict() for name, component in self.components.items()}
        return {"per_process": gather_object([local_state])}

    def load_state_dict(self, state: dict) -> None:
        per_process = state["per_process"]
        if len(per_process) != self.accelerator.num_processes:
            raise ValueError(
                f"the checkpoint holds the data positions of {len(per_process)} processes; resume it with "
                f"{len(per_process)} processes, not {self.accelerator.num_processes}"
            )
        local_state = per_process[self.accelerator.process_index]
        for name, component in self.components.items():
            component.load_state_dict(local_state[name])


def register_process_states(accelerator: Accelerator, seed: int, **streams) -> torch.Generator:
    """Checkpoint the `streams` positions with every checkpoint, and a generator for the data augmentation
    (seeded per process), which is returned."""
    augmentation = GeneratorState(seed + accelerator.process_index, accelerator.device)
    accelerator.register_for_checkpointing(ProcessStates(accelerator, augmentation=augmentation, **streams))
    return augmentation.generator


class GeneratorState:
    """A `torch.Generator` with the `state_dict` / `load_state_dict` that checkpointing expects."""

    def __init__(self, seed: int, device: torch.device):
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def checkpoint_step(path: str | os.PathLike) -> int:
    match = re.fullmatch(rf"{CHECKPOINT_PREFIX}(\d+)", Path(path).name)
    if match is None:
        raise ValueError(f"{str(path)!r} is not a {CHECKPOINT_PREFIX}STEP folder")
    return int(match.group(1))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The `checkpoint-STEP` folders of `output_dir`, oldest step first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [path for path in output_dir.iterdir() if path.is_dir() and re.fullmatch(rf"{CHECKPOINT_PREFIX}\d+", path.name)]
    return sorted(found, key=checkpoint_step)


@contextlib.contextmanager
def checkpoint_folder(
    accelerator: Accelerator,
    output_dir: str,
    step: int,
    total_limit: int | None,
    training_arguments: dict | None = None,
) -> Iterator[str]:
    """The folder to `accelerator.save_state` the training state of `step` into, which also receives
    `training_arguments` as `training_args.json`; every process must enter it:

        with checkpoint_folder(accelerator, args.output_dir, global_step, args.checkpoints_total_limit) as path:
            accelerator.save_state(path)

    The folder is a hidden `.checkpoint-STEP.partial`, renamed to `output_dir/checkpoint-STEP` once every process
    has written its part, so a run killed at any moment leaves only complete checkpoints behind. Afterwards the
    oldest checkpoints are removed so that at most `total_limit` remain.
    """
    output_dir = Path(output_dir)
    save_path = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    partial_path = output_dir / f".{CHECKPOINT_PREFIX}{step}.partial"
    if accelerator.is_main_process and partial_path.exists():
        shutil.rmtree(partial_path)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    yield str(partial_path)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if training_arguments is not None:
            (partial_path / TRAINING_ARGS_FILE).write_text(json.dumps(training_arguments, indent=2), encoding="utf-8")
        if save_path.exists():
            shutil.rmtree(save_path)  # a later checkpoint of a run resumed from an earlier one
        os.replace(partial_path, save_path)
        if total_limit is not None:
            for stale in list_checkpoints(output_dir)[:-total_limit]:
                logger.info(f"Removing checkpoint {stale} (--checkpoints_total_limit {total_limit})")
                shutil.rmtree(stale)
        logger.info(f"Saved state to {save_path}")
    accelerator.wait_for_everyone()


def check_resumed_arguments(checkpoint: Path, arguments: dict) -> list[dict]:
    """Compare the run's `arguments` with those saved in `checkpoint`; return the resume history to record.

    Raises a ValueError naming every changed `EXACT_RESUME_ARGUMENTS` flag with both values; warns about the
    other changes. The history is the checkpoint's own plus, when something changed, this resume.
    """
    saved_file = checkpoint / TRAINING_ARGS_FILE
    if not saved_file.is_file():
        logger.warning(f"{checkpoint} holds no {TRAINING_ARGS_FILE} (an older checkpoint): arguments not checked")
        return []
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise OSError(f"Checkpoint {checkpoint} cannot be loaded: {saved_file}: {error}") from error
    names = sorted((set(saved) | set(arguments)) - set(_NOT_COMPARED))
    changed = {
        name: (saved.get(name), arguments.get(name)) for name in names if saved.get(name) != arguments.get(name)
    }
    history = list(saved.get(RESUME_HISTORY, []))
    refused = [name for name in changed if name in EXACT_RESUME_ARGUMENTS]
    if refused:
        changes = "; ".join(f"--{name} {changed[name][0]!r} -> {changed[name][1]!r}" for name in refused)
        raise ValueError(
            f"Cannot resume {checkpoint} exactly: {changes}. These fix the data each step reads, its order or its "
            f"random draws. Resume with the checkpoint's values (see {saved_file}), or start a new run in another "
            "--output_dir."
        )
    if changed:
        changes = "; ".join(f"--{name} {old!r} -> {new!r}" for name, (old, new) in changed.items())
        logger.warning(f"Resuming {checkpoint} with changed arguments: {changes}")
        changed_values = {name: {"before": old, "after": new} for name, (old, new) in changed.items()}
        history.append({"checkpoint": checkpoint.name, "changed": changed_values})
    return history


def _load_checkpoint(accelerator: Accelerator, path: Path, arguments: dict | None) -> list[dict]:
    """`accelerator.load_state(path)` after checking `arguments`; returns the resume history. A checkpoint with
    unreadable files raises an OSError naming them; other errors (a mismatch with this run) pass unchanged."""
    history = check_resumed_arguments(path, arguments) if arguments is not None else []
    try:
        accelerator.load_state(str(path))
    except Exception as error:
        culprits = unreadable_files(path)
        if not culprits:
            raise
        raise OSError(f"Checkpoint {path} cannot be loaded: " + "; ".join(culprits)) from error
    return history


def resume_from_checkpoint(
    accelerator: Accelerator, output_dir: str, resume_from: str | None, args: argparse.Namespace | None = None
) -> int:
    """Load `--resume_from_checkpoint` ('latest' or a checkpoint folder) and return its step; 0 without one.

    'latest' with no checkpoint yet starts from scratch (so that a job can always be relaunched with it), and
    skips, with a warning, checkpoints that do not load (a save cut short); an explicit path that does not
    exist or does not load is an error. With `args`, the run's arguments are checked against the checkpoint's
    (`check_resumed_arguments`) and the resume history is stored in `args.resume_history`.
    """
    if resume_from is None:
        return 0
    arguments = training_arguments(args) if args is not None else None
    if resume_from == "latest":
        candidates = list_checkpoints(output_dir)[::-1]
        if not candidates:
            logger.info(f"No checkpoint in {output_dir} to resume from; starting a new run")
            return 0
    else:
        candidates = [Path(resume_from)]
        if not candidates[0].is_dir():
            raise ValueError(f"--resume_from_checkpoint {resume_from!r}: no such checkpoint folder")
    for index, path in enumerate(candidates):
        step = checkpoint_step(path)
        try:
            history = _load_checkpoint(accelerator, path, arguments)
        except OSError as error:
            if index + 1 == len(candidates):
                raise
            logger.warning(f"{error}. Falling back to the previous checkpoint, {candidates[index + 1]}")
            continue
        if args is not None:
            args.resume_history = history
        logger.info(f"Resumed from {path} at step {step}")
        return step
