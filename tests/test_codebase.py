"""The codebase's own contracts, checked with the project's tools: ruff on the whole repository,
mypy --strict on the runtime, and the import-linter layer contract (pyproject.toml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [
    ["ruff", "check", "."],
    ["mypy"],  # files and --strict come from pyproject.toml
    ["lint-imports"],
], ids=["ruff", "mypy-strict", "import-linter"])
def test_tool_passes(command: list[str]) -> None:
    exe = BIN / command[0]
    assert exe.exists(), f"{command[0]} is not installed; install the dev extra: pip install -e '.[dev]'"
    result = subprocess.run([str(exe), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


# Where a task may be named in the runtime and the exporter (docs/architecture.md): its one list,
# the formats 1-6 reader, the bulk classes and Ray workers of each task, and the commands' default
# built-in models. Everything else works from a model's spec.
NAMES_TASKS = {"edgeinfer/tasks/__init__.py", "edgeinfer/spec.py", "edgeinfer/bulk/predict.py", "edgeinfer/ray.py",
               "edgeinfer/cli/digits.py", "edgeinfer/cli/sentiment.py", "edgeinfer/cli/characters.py",
               "edgeinfer/cli/system.py", "edgeinfer/cli/app.py"}  # app.py: the command names (`sentiment`)


def test_only_the_listed_modules_name_a_task() -> None:
    import ast

    from edgeinfer.tasks import TASKS

    names = {t.name for t in TASKS}
    found: dict[str, set[str]] = {}
    for path in sorted([*ROOT.glob("edgeinfer/**/*.py"), *ROOT.glob("edgeinfer_export/**/*.py")]):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
                found.setdefault(path.relative_to(ROOT).as_posix(), set()).add(node.value)
    assert set(found) <= NAMES_TASKS, {k: v for k, v in found.items() if k not in NAMES_TASKS}
    assert found["edgeinfer/tasks/__init__.py"] == names  # the list itself names every task
