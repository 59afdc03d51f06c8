"""Parquet shards of pseudo-labels, written atomically, and the per-process records that make a run resumable.

Shards are written atomically (`ShardWriter`: a hidden temp file, fsync, `os.replace`) under deterministic
names per (process, shard index), and each process records its position in the stream (`ProgressRecord`)
only after a shard is durable, so a run killed at any moment resumes without losing or repeating images.
"""

import dataclasses
import glob
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..data.pseudo_labels import PSEUDO_LABEL_FEATURES, SPLIT

# Hidden, so that `datasets` never reads progress records or half-written shards as data.
PROGRESS_DIRECTORY = ".progress"


def _disparity_column(disparities: Sequence[np.ndarray]) -> pa.Array:
    """float16 [h, w] maps as one arrow list<list<halffloat>> column, built from offsets without Python floats."""
    row_counts = [disparity.shape[0] for disparity in disparities]
    row_lengths = np.concatenate([np.full(disparity.shape[0], disparity.shape[1]) for disparity in disparities])
    values = pa.array(np.concatenate([disparity.reshape(-1) for disparity in disparities]))
    rows = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int32)), values)
    return pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int32)), rows)


def pseudo_label_table(
    examples: Sequence[dict], disparities: Sequence[torch.Tensor], teacher: str, teacher_hash: str
) -> pa.Table:
    """Rows of `PSEUDO_LABEL_FEATURES` for unlabeled `examples` ({"image": PIL, "image_bytes", "id", "dataset"})."""
    maps = [disparity.cpu().numpy() for disparity in disparities]
    for example, disparity in zip(examples, maps):
        if not np.isfinite(disparity).all():
            raise ValueError(
                f"the teacher's disparity of {example['dataset']}/{example['id']} is not finite in float16 "
                f"(range {np.nanmin(disparity)} .. {np.nanmax(disparity)}); float16 holds |values| <= 65504"
            )
    schema = PSEUDO_LABEL_FEATURES.arrow_schema
    columns = {
        "image": pa.array(
            [{"bytes": example["image_bytes"], "path": example["id"]} for example in examples],
            type=schema.field("image").type,
        ),
        "disparity": _disparity_column(maps),
        "original_height": pa.array([example["image"].height for example in examples], pa.int32()),
        "original_width": pa.array([example["image"].width for example in examples], pa.int32()),
        "dataset": pa.array([example["dataset"] for example in examples], pa.string()),
        "id": pa.array([example["id"] for example in examples], pa.string()),
        "teacher": pa.array([teacher] * len(examples), pa.string()),
        "teacher_sha256": pa.array([teacher_hash] * len(examples), pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def hidden_temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def commit_atomically(file, path: Path) -> None:
    """Make `file` (open on `hidden_temporary_path(path)`) durable and rename it to `path` atomically.

    Readers see the old file or the complete new one, never a partial one, even after SIGKILL or power loss.
    """
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(hidden_temporary_path(path), path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def shard_name(rank: int, world_size: int, shard_index: int) -> str:
    """The file name of shard `shard_index` of process `rank`: the same in every run with these arguments."""
    return f"{SPLIT}-{rank:05d}-of-{world_size:05d}-{shard_index:06d}.parquet"


class ShardWriter:
    """One parquet shard written batch by batch (one row group each), so memory stays one batch deep.

    The shard appears under its final name only when `close()` returns, complete and fsynced.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open(hidden_temporary_path(self.path), "wb")
        self._writer = pq.ParquetWriter(self._file, PSEUDO_LABEL_FEATURES.arrow_schema)
        self.num_rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)
        self.num_rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        commit_atomically(self._file, self.path)


@dataclasses.dataclass
class ProgressRecord:
    """What one process has durably written: its next shard, its images so far and its stream position.

    `run` holds the arguments that decide the output (sources and their listing, teacher, batching, order); a
    rerun must match them, or its shards would not continue the earlier ones.
    """

    rank: int
    world_size: int
    run: dict
    shards_written: int = 0
    images_written: int = 0
    stream_state: dict | None = None
    finished: bool = False

    @staticmethod
    def path_of(output_dir: str | os.PathLike, rank: int, world_size: int) -> Path:
        return Path(output_dir) / PROGRESS_DIRECTORY / f"process-{rank:05d}-of-{world_size:05d}.json"

    @classmethod
    def resume_or_start(cls, output_dir: str | os.PathLike, rank: int, world_size: int, run: dict) -> "ProgressRecord":
        """This process's record from an earlier run with the same arguments, or a fresh one.

        Raises a ValueError when `output_dir` holds a run with other arguments or another number of processes.
        """
        other_world_sizes = sorted(
            {
                int(Path(path).stem.rsplit("-of-", 1)[1])
                for path in glob.glob(str(Path(output_dir) / PROGRESS_DIRECTORY / "process-*-of-*.json"))
            }
            - {world_size}
        )
        if other_world_sizes:
            raise ValueError(
                f"output_dir {str(output_dir)!r} holds a run with {other_world_sizes[0]} processes; resume it with "
                f"that many processes (this run has {world_size}) or write to a new --output_dir"
            )
        path = cls.path_of(output_dir, rank, world_size)
        if not path.exists():
            return cls(rank=rank, world_size=world_size, run=run)
        record = cls(**json.loads(path.read_text()))
        if record.run != run:
            changed = sorted(key for key in run.keys() | record.run.keys() if run.get(key) != record.run.get(key))
            if changed == ["source_listing_sha256"]:
                sources = [
                    source
                    for source, before, now in zip(run["sources"], record.run[changed[0]], run[changed[0]])
                    if before != now
                ]
                raise ValueError(
                    f"output_dir {str(output_dir)!r} holds a run over other files: the listing of {sources} changed "
                    "since it was written (an image added, removed or resized), so resuming its position would "
                    "duplicate or miss images. Restore the sources as they were, or write to a new --output_dir"
                )
            raise ValueError(
                f"output_dir {str(output_dir)!r} holds a run with other arguments ({', '.join(changed)} differ: "
                f"{ {key: record.run.get(key) for key in changed} } there); rerun with the same arguments to resume "
                "it, or write to a new --output_dir"
            )
        return record

    def save(self, output_dir: str | os.PathLike) -> None:
        path = self.path_of(output_dir, self.rank, self.world_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(hidden_temporary_path(path), "wb")
        file.write(json.dumps(dataclasses.asdict(self), indent=1).encode())
        commit_atomically(file, path)


def save_skipped_images(
    output_dir: str | os.PathLike, rank: int, world_size: int, shard_index: int, skipped_ids: dict[str, set[str]]
) -> None:
    """Record, before shard `shard_index` of process `rank` is committed, the images skipped while reading it
    ({source: ids}). A resumed run rereads an uncommitted shard and rewrites the same record; each record holds
    one shard's skips, so that saving stays cheap however many images a long run skips."""
    path = Path(output_dir) / PROGRESS_DIRECTORY / f"skipped-{rank:05d}-of-{world_size:05d}-{shard_index:06d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(hidden_temporary_path(path), "wb")
    file.write(json.dumps({source: sorted(ids) for source, ids in skipped_ids.items()}).encode())
    commit_atomically(file, path)


def load_skipped_images(output_dir: str | os.PathLike) -> dict[str, set[str]]:
    """The distinct images skipped by all processes of a run, per source (see `save_skipped_images`)."""
    skipped: dict[str, set[str]] = {}
    for path in sorted((Path(output_dir) / PROGRESS_DIRECTORY).glob("skipped-*.json")):
        for source, ids in json.loads(path.read_text()).items():
            skipped.setdefault(source, set()).update(ids)
    return skipped
