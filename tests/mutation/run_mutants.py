"""Mutation testing of the method's modules: plant each bug of `mutants.py` in a copy of the repository, one at a
time, run the fast tests that should catch it, and report the bugs no test caught (the survivors).

    nice -n 10 python tests/mutation/run_mutants.py --output docs/mutation_testing.md
    python tests/mutation/run_mutants.py --only "hue" --only "midas"   # a few mutants, by name substring
    python tests/mutation/run_mutants.py --only "hue" --tests tests/test_data_transforms_statistics.py

The copy holds the files git tracks plus the untracked ones it does not ignore (the working tree as it is), and a
link to the `shared/` folder beside the repository when there is one, so the tests find the shared data as they do
in the checkout. The unmutated copy must pass every selected test first; otherwise nothing is reported. A mutant
is killed when its tests fail (or pytest cannot run them, or they time out: both said in the report); it survives
when they pass.
"""

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutants import MUTANTS, Mutant

REPOSITORY = Path(__file__).resolve().parents[2]


def copy_working_tree(destination: Path) -> Path:
    """The working tree's files (tracked and untracked-not-ignored) under `destination/repository`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    copy = destination / "repository"
    for relative in filter(None, listed):
        source = REPOSITORY / relative
        if source.is_file():
            (copy / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / relative)
    shared = REPOSITORY.parent / "shared"
    if shared.is_dir():
        (destination / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return copy


def run_tests(copy: Path, test_arguments: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """("passed" | "failed" | "error" | "timeout", seconds, last output lines) of pytest on `copy`."""
    environment = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *test_arguments]
    start = time.monotonic()
    try:
        completed = subprocess.run(
            command, cwd=copy, env=environment, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    tail = "\n".join(completed.stdout.strip().splitlines()[-3:])
    # pytest exits with 1 when tests failed; 2-4 mean it could not run them (collection or usage error).
    outcome = {0: "passed", 1: "failed"}.get(completed.returncode, "error")
    return outcome, time.monotonic() - start, tail


def apply(copy: Path, mutant: Mutant) -> str:
    """Write the mutant into the copy; returns the original text to restore."""
    target = copy / mutant.path
    text = target.read_text(encoding="utf-8")
    occurrences = text.count(mutant.original)
    if occurrences != 1:
        raise ValueError(f"mutant {mutant.name!r}: the snippet occurs {occurrences} times in {mutant.path}, not once")
    target.write_text(text.replace(mutant.original, mutant.mutated), encoding="utf-8")
    return text


def report(results: list[tuple[Mutant, str, float]], command: str) -> str:
    killed = sum(outcome != "survived" for _, outcome, _ in results)
    lines = [
        "# Mutation testing",
        "",
        (
            f"`{command}` on {datetime.date.today().isoformat()}, Python {platform.python_version()} on "
            f"{platform.machine()} ({os.cpu_count()} CPUs). Each planted bug is applied alone to a copy of the "
            "repository and the fast tests of its area are run (`tests/mutation/mutants.py` lists both)."
        ),
        "",
        f"**Mutation score: {killed} / {len(results)} killed ({100 * killed / len(results):.0f}%).**",
        "",
        "| planted bug | file | outcome | seconds |",
        "|---|---|---|---|",
    ]
    lines += [f"| {mutant.name} | `{mutant.path}` | {outcome} | {seconds:.0f} |" for mutant, outcome, seconds in results]
    survivors = [mutant.name for mutant, outcome, _ in results if outcome == "survived"]
    lines += ["", "Survivors: " + ("; ".join(survivors) if survivors else "none") + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="run the mutants whose name contains this text")
    parser.add_argument(
        "--tests", nargs="+", help="pytest arguments to run for every selected mutant instead of the mutant's own"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run; a timeout counts as killed")
    parser.add_argument("--output", help="also write the markdown report to this file")
    args = parser.parse_args()

    selected = [m for m in MUTANTS if not args.only or any(text in m.name for text in args.only)]
    if not selected:
        parser.error(f"no mutant name contains any of {args.only}")
    if args.tests:
        selected = [dataclasses.replace(mutant, tests=tuple(args.tests)) for mutant in selected]
    with tempfile.TemporaryDirectory(prefix="mutants-") as workspace:
        copy = copy_working_tree(Path(workspace))
        baseline = sorted({m.tests for m in selected})
        for test_arguments in baseline:
            outcome, seconds, tail = run_tests(copy, test_arguments, args.timeout)
            print(f"baseline {' '.join(test_arguments)}: {outcome} ({seconds:.0f} s)", flush=True)
            if outcome != "passed":
                print(tail, file=sys.stderr)
                return 2
        results = []
        for index, mutant in enumerate(selected, 1):
            original = apply(copy, mutant)
            try:
                outcome, seconds, tail = run_tests(copy, mutant.tests, args.timeout)
            finally:
                (copy / mutant.path).write_text(original, encoding="utf-8")
            outcome = {
                "passed": "survived",
                "failed": "killed",
                "error": "killed (pytest error)",
                "timeout": "killed (timeout)",
            }[outcome]
            results.append((mutant, outcome, seconds))
            print(f"[{index}/{len(selected)}] {outcome:16} {seconds:5.0f} s  {mutant.name}", flush=True)

    command = "python tests/mutation/run_mutants.py" + "".join(f' --only "{text}"' for text in args.only)
    if args.tests:
        command += " --tests " + " ".join(args.tests)
    markdown = report(results, command)
    print("\n" + markdown)
    if args.output:
        Path(args.output).write_text(markdown, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
