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
