"""The documents a newcomer reads first agree with the tree: the README's layout table and docs/method.md, which the
code cites by section and equation."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "depth_anything_hf"


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPOSITORY, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return listed.stdout.splitlines()


def layout_table_paths() -> list[str]:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return [path for row in rows for path in re.findall(r"`([^`]+)`", row)]


def test_the_layout_table_names_existing_paths_and_every_part_of_the_package():
    paths = layout_table_paths()
    for path in paths:
        assert (REPOSITORY / path).exists(), f"README layout table names {path}, which does not exist"
    parts = {
        f"depth_anything_hf/{path.name}" + ("/" if path.is_dir() else "")
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path.is_dir() and (path / "__init__.py").is_file())
    }
    assert parts <= set(paths), f"missing from the README layout table: {sorted(parts - set(paths))}"


def test_method_document_has_every_section_and_equation_the_code_cites():
    method = (REPOSITORY / "docs" / "method.md").read_text(encoding="utf-8")
    sections = {int(number) for number in re.findall(r"^## (\d+)\. ", method, flags=re.MULTILINE)}
    equations = {int(number) for number in re.findall(r"^- \((\d+)\) ", method, flags=re.MULTILINE)}
    assert equations == set(range(1, 8))
    for name in tracked_files():
        if not name.endswith((".py", ".md", ".sh")) or name in ("docs/method.md", "tests/test_docs.py"):
            continue
        text = (REPOSITORY / name).read_text(encoding="utf-8")
        assert "METHOD.md" not in text, f"{name} cites METHOD.md, which is not in the repository"
        for cited in re.findall(r"docs/method\.md,? sections? (\d+)", text):
            assert int(cited) in sections, f"{name} cites docs/method.md section {cited}"


def setup_extras() -> dict[str, list[str]]:
    """setup.py's `extras_require`, read from its source (the installed metadata may predate it)."""
    tree = ast.parse((REPOSITORY / "setup.py").read_text(encoding="utf-8"))
    keywords = {
        keyword.arg: keyword.value for node in ast.walk(tree) if isinstance(node, ast.Call) for keyword in node.keywords
    }
    return ast.literal_eval(keywords["extras_require"])


def test_the_quickstart_command_installs_the_colour_maps_its_last_step_writes():
    # quickstart.sh ends with `predict --outputs colormap` (matplotlib's Spectral_r), which the core install lacks.
    assert "--outputs colormap" in (REPOSITORY / "training_scripts" / "quickstart.sh").read_text(encoding="utf-8")
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    quickstart = next(line for line in readme.splitlines() if line.endswith("bash training_scripts/quickstart.sh"))
    installed = re.search(r'pip install -e "\.\[([\w,]+)\]"', quickstart)
    assert installed, f"the quickstart command installs no extra: {quickstart}"
    extras = setup_extras()
    requirements = [requirement for extra in installed.group(1).split(",") for requirement in extras[extra]]
    assert any(requirement.startswith("matplotlib") for requirement in requirements), installed.group(0)
