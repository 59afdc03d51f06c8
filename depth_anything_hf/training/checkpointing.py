"""Checkpoint save / resume for the training scripts, with every process's data position and random state.

Checkpoints follow the diffusers training scripts: `OUTPUT_DIR/checkpoint-STEP` folders written by
`accelerator.save_state` in the scripts' loops (model, optimizer, scheduler, every process's random states and
the objects registered with `register_for_checkpointing`) into the folder `checkpoint_folder` hands out, rotated
to `--checkpoints_total_limit`, resumed by `accelerator.load_state` with `--resume_from_checkpoint latest|PATH`.
"""

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import gather_object

logger = get_logger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"


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
def checkpoint_folder(accelerator: Accelerator, output_dir: str, step: int, total_limit: int | None) -> Iterator[str]:
    """The folder to `accelerator.save_state` the training state of `step` into; every process must enter it:

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
        if save_path.exists():
            shutil.rmtree(save_path)  # a later checkpoint of a run resumed from an earlier one
        os.replace(partial_path, save_path)
        if total_limit is not None:
            for stale in list_checkpoints(output_dir)[:-total_limit]:
                logger.info(f"Removing checkpoint {stale} (--checkpoints_total_limit {total_limit})")
                shutil.rmtree(stale)
        logger.info(f"Saved state to {save_path}")
    accelerator.wait_for_everyone()


def resume_from_checkpoint(accelerator: Accelerator, output_dir: str, resume_from: str | None) -> int:
    """Load `--resume_from_checkpoint` ('latest' or a checkpoint folder) and return its step; 0 without one.

    'latest' with no checkpoint yet starts from scratch (so that a job can always be relaunched with it); an
    explicit path that does not exist is an error.
    """
    if resume_from is None:
        return 0
    if resume_from == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            logger.info(f"No checkpoint in {output_dir} to resume from; starting a new run")
            return 0
        path = checkpoints[-1]
    else:
        path = Path(resume_from)
        if not path.is_dir():
            raise ValueError(f"--resume_from_checkpoint {resume_from!r}: no such checkpoint folder")
    step = checkpoint_step(path)
    accelerator.load_state(str(path))
    logger.info(f"Resumed from {path} at step {step}")
    return step
