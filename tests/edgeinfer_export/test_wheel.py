"""The exporter and the trainer as a user gets them: a wheel built from this checkout, installed
with the `export` and `train` extras into a fresh venv outside it, runs the README's examples
(nothing from the repo's folders)."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.edgeinfer_export.test_readme import blocks
from tests.edgeinfer_train.test_readme import check, run_readme

INSTALL_TIMEOUT_S = 900


def _run(args: list[str], cwd: Path, timeout: float = INSTALL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    got = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert got.returncode == 0, f"{' '.join(args[:4])}... failed:\n{got.stdout[-2000:]}\n{got.stderr[-2000:]}"
    return got


@pytest.mark.slow  # builds a wheel and installs it with torch into a fresh venv
def test_wheel_with_the_export_and_train_extras_runs_the_readme_examples(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)], tmp_path)
    (wheel,) = wheels.glob("edgeinfer-*.whl")
    with zipfile.ZipFile(wheel) as z:
        top = {name.split("/")[0] for name in z.namelist() if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"edgeinfer", "edgeinfer_export", "edgeinfer_train"}, \
        f"the wheel installs {sorted(top)}: no generic top-level names"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[export,train]"], tmp_path)
    user = tmp_path / "user"
    user.mkdir()
    (code,) = blocks("python")
    (user / "example.py").write_text(code)
    got = _run([str(python), "example.py"], user, timeout=300)
    assert got.stdout.strip().splitlines()[-1].split()[0] in ("still", "moving")
    where = _run([str(python), "-c", "import edgeinfer, edgeinfer_export; print(edgeinfer.__file__, "
                  "edgeinfer_export.__file__)"], user).stdout
    assert str(ROOT) not in where and str(venv) in where
    run = _run([str(venv / "bin" / "edgeinfer"), "run", "activity.onnx", "steps.csv", "--every", "50"], user, 120)
    assert run.stdout.startswith("1:50 ")
    # the runtime alone stays torch-free: importing edgeinfer loads neither torch nor onnx
    probe = _run([str(python), "-c", "import sys, edgeinfer; edgeinfer.load('activity.onnx').predict([[0, 0, 9.8]]); "
                  "print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))"], user)
    assert probe.stdout.strip() == "[]"
    # the README's train -> run commands, with the venv's edgeinfer-train and edgeinfer
    trainer = tmp_path / "trainer"
    trainer.mkdir()
    check(run_readme(trainer, venv / "bin"))

