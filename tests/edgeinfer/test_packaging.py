"""The GPU install route: edgeinfer without its dependencies, then its dependencies with
onnxruntime-gpu in place of onnxruntime, so the CPU build is never installed beside the GPU one."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.conftest import ROOT


def _gpu_line() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text[text.index("<!-- example: gpu"):], re.S)
    assert block is not None
    return block.group(1).strip()


def test_the_gpu_route_installs_the_runtime_dependencies_with_onnxruntime_gpu_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "gpu" not in project["optional-dependencies"]  # an extra could only add onnxruntime-gpu beside onnxruntime
    line = _gpu_line()
    first, second = (shlex.split(part) for part in line.split(" && ")[1:])
    assert first[1:] == ["install", "--no-deps", "."]
    want = ["onnxruntime-gpu" if d.startswith("onnxruntime") else d for d in project["dependencies"]]
    assert sorted(second[2:]) == sorted(want)  # the runtime's own dependencies, onnxruntime-gpu for onnxruntime
    assert not any(re.match(r"onnxruntime(?!-gpu)", d) for d in second[2:])
    assert line.split(" && ")[-1].replace(".venv/bin/", "") in (ROOT / "docs" / "architecture.md").read_text()


def test_the_first_step_resolves_to_edgeinfer_alone(tmp_path: Path) -> None:
    import setuptools

    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2])
    if version < (70, 1):  # offline, the project's metadata is built with this venv's setuptools
        pytest.skip(f"this venv's setuptools {setuptools.__version__} cannot build wheel metadata without the wheel "
                    "package (70.1 and later can); the full venv runs this test")
    report = tmp_path / "report.json"
    got = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
                          "--quiet", "--report", str(report), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    assert [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]] == ["edgeinfer"]
