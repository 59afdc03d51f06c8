"""What `depth-anything predict` reads: image files, folders, globs, `.txt` lists of paths, and videos."""

import glob
import os
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
_GLOB_CHARACTERS = set("*?[")


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _folder_files(folder: Path) -> list[Path]:
    """Images and videos under `folder` (recursively, sorted); other files (READMEs, labels) are not inputs."""
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    )


def expand_inputs(specs: list[str]) -> list[Path]:
    """The input files named by `specs`, in order: a file, a folder (its images and videos, recursively), a
    glob pattern, or a `.txt` file listing one path per line (blank lines and `#` comments ignored; relative
    paths are relative to the list). Paths listed in a `.txt` are kept even when missing, so that they are
    reported as skipped; a spec that names nothing raises a FileNotFoundError naming it."""
    files = []
    for spec in specs:
        path = Path(spec)
        if path.is_file() and path.suffix.lower() == ".txt":
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = Path(line)
                    files.append(listed if listed.is_absolute() else path.parent / listed)
        elif path.is_file():
            files.append(path)
        elif path.is_dir():
            found = _folder_files(path)
            if not found:
                raise FileNotFoundError(f"{spec} holds no image or video files ({', '.join(IMAGE_EXTENSIONS)}, ...)")
            files.extend(found)
        elif _GLOB_CHARACTERS & set(spec):
            found = sorted(Path(match) for match in glob.glob(spec, recursive=True) if Path(match).is_file())
            if not found:
                raise FileNotFoundError(f"the pattern {spec!r} matches no files")
            files.extend(found)
        else:
            raise FileNotFoundError(f"input {spec!r} is not a file, folder, glob pattern or .txt list")
    return files
