"""The README's "Your own model" section, run as written: the Python example (training, export,
the runtime), its shell commands, and its JavaScript in node against the Python numbers."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

MARKER = "<!-- example: own-model"


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(MARKER)
    return text[start : text.index("\n## ", start)]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section(), re.S)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The Python block executed in a fresh folder; its names, for the checks."""
    folder = tmp_path_factory.mktemp("readme")
    (code,) = blocks("python")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        names: dict = {"__name__": "__readme__"}
        exec(compile(code, "README.md (Your own model)", "exec"), names)
    finally:
        os.chdir(cwd)
    return folder, names


def test_the_python_example_trains_exports_and_runs(ran: tuple[Path, dict]) -> None:
    folder, names = ran
    m, x, y = names["m"], names["x"], names["y"]
    assert (folder / "activity.onnx").is_file() and m.spec.labels == ("still", "moving")
    accuracy = float((m.predict(x).argmax(1) == y).mean())
    assert accuracy >= 0.95, f"the README's toy model reads {accuracy:.1%} of its own data"
    assert np.abs(names["p"] - m.predict(x[1])).max() <= 1e-5  # the stream's last step = the whole sequence


def test_the_shell_commands(ran: tuple[Path, dict]) -> None:
    folder, names = ran
    (block,) = blocks("sh")
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    first = shlex.split(lines[0])
    assert first[:2] == ["edgeinfer", "run"]
    cli = [sys.executable, "-m", "edgeinfer"]
    got = subprocess.run(cli + first[1:], capture_output=True, text=True, cwd=folder, timeout=120)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[0].startswith("1:10 ") and len(got.stdout.splitlines()) == 5  # 50 steps
    label, prob = got.stdout.splitlines()[-1].split()[1:]
    p = names["p"]
    assert label == names["m"].spec.labels[p.argmax()] and abs(float(prob) - float(p.max())) <= 1e-3
    # the live form: stdin, JSON lines, one per step
    steps = (folder / "steps.csv").read_text()
    live = subprocess.run([*cli, "run", "activity.onnx", "-", "--json"], input=steps, capture_output=True,
                          text=True, cwd=folder, timeout=120)
    rows = [json.loads(line) for line in live.stdout.splitlines()]
    assert live.returncode == 0 and len(rows) == 50 and rows[-1]["step"] == 50
    assert abs(rows[-1]["probability"] - float(p.max())) <= 1e-5
    info = subprocess.run([*cli, "info", "activity.onnx"], capture_output=True, text=True, cwd=folder, timeout=120)
    assert info.returncode == 0 and "features -> classes per sequence" in info.stdout


def test_the_javascript_example_in_node(ran: tuple[Path, dict]) -> None:
    folder, names = ran
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the JavaScript runtime's tests need Node.js >= 20")
    if not (ROOT / "web" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.fail("web/node_modules is missing: run `cd web && npm ci`")
    (block,) = blocks("js")
    modules = folder / "node_modules"
    modules.mkdir(exist_ok=True)
    link = modules / "edgeinfer-web"
    if not link.exists():
        link.symlink_to(ROOT / "web", target_is_directory=True)
    (folder / "example.mjs").write_text(block)
    got = subprocess.run([node, "example.mjs"], capture_output=True, text=True, cwd=folder, timeout=120)
    assert got.returncode == 0, got.stderr
    label, prob = got.stdout.split()
    p = names["p"]
    assert label == names["m"].spec.labels[p.argmax()] and abs(float(prob) - float(p.max())) <= 1e-3
