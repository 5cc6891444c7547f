"""The JavaScript runtime's JSDoc types check with TypeScript (`npm run typecheck`: tsc, strict)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

WEB = ROOT / "web"


def test_javascript_types_check() -> None:
    npm = shutil.which("npm")
    if npm is None or not (WEB / "node_modules" / "typescript").is_dir():
        pytest.fail("the JavaScript runtime's dev dependencies are missing: cd web && npm ci")
    run = subprocess.run([npm, "run", "--silent", "typecheck"], cwd=WEB, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"tsc found type errors:\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
