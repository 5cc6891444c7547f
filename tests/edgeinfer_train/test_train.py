"""`edgeinfer-train sequences` end to end on small generated data: CSV with a test file, a folder,
.npz and .ts inputs; the file it writes answers in the runtime; a killed run resumes to the same
weights; bad data and arguments are one line and exit 2 before training starts."""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer_train.cli import main
from tests.conftest import ROOT

LABELS = ("walk", "run", "sit")
TWO = "id,label,v\na,x,1\na,x,2\nb,y,2\nb,y,3\n"  # two classes, two sequences of two steps


def waves(n: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """n sequences of 12-24 steps, 3 features; the class sets the frequency of the first feature and
    the level of the second (the third is noise)."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for i in range(n):
        k, steps = i % 3, int(rng.integers(12, 25))
        t = np.arange(steps)
        x.append(np.stack([np.sin((0.3 + 0.5 * k) * t + rng.uniform(0, 6)), rng.normal(0.6 * k, 0.3, steps),
                           rng.normal(0, 1, steps)], 1).astype(np.float32) * 2 + 5)
        y.append(k)
    return x, y


def write_csv(path: Path, x: list[np.ndarray], y: list[int]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["recording", "time", "activity", "ax", "ay", "az"])
        for i, (seq, k) in enumerate(zip(x, y, strict=True)):
            for t, row in enumerate(seq):
                w.writerow([f"r{i}", t, LABELS[k], *(f"{v:.5f}" for v in row)])
    return path


FAST = ["--epochs", "80", "--hidden", "16", "--quiet"]


@pytest.mark.training
def test_csv_with_a_test_file_trains_exports_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write_csv(tmp_path / "train.csv", *waves(60, 0))
    test_x, test_y = waves(21, 1)
    test = write_csv(tmp_path / "test.csv", test_x, test_y)
    out = tmp_path / "m.onnx"
    assert main(["sequences", str(train), "--test", str(test), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("test accuracy ")[1].split("%")[0]) / 100
    assert accuracy >= 0.9, printed
    assert "accuracy after reading 10%" in printed and "confusion (rows: true, columns: answered)" in printed
    model = edgeinfer.load(out)
    assert model.spec.input.kind == "features" and model.spec.input.names == ("ax", "ay", "az")
    assert set(model.spec.labels) == set(LABELS) and model.spec.precision in ("int8", "fp32")
    got = [model.spec.labels[int(model.predict(s).argmax())] for s in test_x]  # raw values: the file normalises
    assert np.mean([g == LABELS[k] for g, k in zip(got, test_y, strict=True)]) == pytest.approx(accuracy, abs=5e-5)
    log = [json.loads(line) for line in (tmp_path / "m.onnx.train" / "metrics.jsonl").read_text().splitlines()]
    select = [r for r in log if r["stage"] == "select"]
    assert [r["epoch"] for r in select] == list(range(1, len(select) + 1))
    assert {"val_accuracy", "val_loss"} <= set(select[0]) and log[-1]["stage"] == "refit"


def test_folder_npz_and_ts_inputs(tmp_path: Path) -> None:
    x, y = waves(30, 2)
    for i, (seq, k) in enumerate(zip(x, y, strict=True)):
        (tmp_path / "f" / LABELS[k]).mkdir(parents=True, exist_ok=True)
        np.savetxt(tmp_path / "f" / LABELS[k] / f"{i}.csv", seq, delimiter=",")
    np.savez(tmp_path / "d.npz", **{f"x_{i}": s for i, s in enumerate(x)}, y=np.array([LABELS[k] for k in y]))
    lines = ["@problemName waves", "@classLabel true walk run sit", "@data"]
    lines += [":".join(",".join(f"{v:.5f}" for v in seq[:, d]) for d in range(3)) + f":{LABELS[k]}"
              for seq, k in zip(x, y, strict=True)]
    (tmp_path / "d.ts").write_text("\n".join(lines) + "\n")
    for data in ("f", "d.npz", "d.ts"):
        out = tmp_path / f"{data.replace('.', '-')}.onnx"
        assert main(["sequences", str(tmp_path / data), "--out", str(out), "--epochs", "3", "--hidden", "8",
                     "--quiet", "--precision", "fp32"]) == 0
        assert set(edgeinfer.load(out).spec.labels) == set(LABELS)


def _lines(log: Path, stage: str) -> int:
    return sum(json.loads(line)["stage"] == stage for line in log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.training
@pytest.mark.parametrize(("stage", "lines"), [("select", 5), ("refit", 2)])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path, stage: str, lines: int) -> None:
    train = write_csv(tmp_path / "train.csv", *waves(45, 3))
    args = ["--epochs", "14", "--patience", "100", "--hidden", "16", "--quiet", "--precision", "fp32"]
    cmd = [sys.executable, "-m", "edgeinfer_train", "sequences", str(train)]
    whole = subprocess.run([*cmd, "--out", str(tmp_path / "whole.onnx"), *args], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed.onnx"
    proc = subprocess.Popen([*cmd, "--out", str(out), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT)
    log = tmp_path / "killed.onnx.train" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while _lines(log, stage) < lines and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run was killed before it finished: no model file yet"
    again = subprocess.run([*cmd, "--out", str(out), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming the {stage} stage after epoch" in again.stderr
    assert out.read_bytes() == (tmp_path / "whole.onnx").read_bytes()  # the same weights, the same file
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    selected = [r["epoch"] for r in rows if r["stage"] == "select"]
    refit = [r["epoch"] for r in rows if r["stage"] == "refit"]
    assert selected == list(range(1, 15)) and refit == list(range(1, max(rows[-1 - len(refit)]["best_epoch"], 10) + 1))
    assert rows == [json.loads(line) for line in (tmp_path / "whole.onnx.train" / "metrics.jsonl").read_text()
                    .splitlines()]
    if stage == "select":
        other = subprocess.run([*cmd, "--out", str(out), *args[:-2], "--hidden", "8"], capture_output=True,
                               text=True, cwd=ROOT, timeout=300)  # another model: the checkpoint is not taken up
        assert other.returncode == 2 and "a checkpoint of another model, data or settings; pass --restart" in \
            other.stderr


@pytest.mark.parametrize(("files", "extra", "message"), [
    ({"a.csv": "id,label,v\na,x,1\na,x,2\n"}, [], "the training data holds one class ('x')"),
    ({"a.csv": "id,label,v\na,x,1\nb,y,2\nb,y,3\n"}, [], "a.csv:2: a sequence of 1 step"),
    ({"a.csv": "id,label,v\na,x,1\na,x,nan\nb,y,2\nb,y,3\n"}, [], "a.csv:3 (v): missing value; fill it in"),
    ({"a.csv": "id,label,v\na,x,1\na,x,inf\nb,y,2\nb,y,3\n"}, [], "a.csv:3 (v): 'inf' is not a finite number"),
    ({"a.csv": "id,label,v\na,x,1\na,x,2\nb,y,2\nb,y,3\n", "t.csv": "id,label,v\nc,z,1\nc,z,2\n"},
     ["--test", "t.csv"], "label 'z' appears only in the test data"),
    ({"a.csv": ""}, [], "a.csv: empty file"),
    ({"a.csv": TWO}, ["--hidden", "0"], "--hidden 0; expected a whole number"),
    ({"a.csv": TWO}, ["--noise", "-1"], "--noise -1.0; expected a finite number"),
    ({"a.csv": TWO}, ["--lr", "0"], "--lr 0.0; expected a finite number > 0"),
    ({"a.csv": TWO}, ["--feature-dropout", "1"], "--feature-dropout 1.0; expected a share from 0 up to"),
])
def test_bad_data_is_one_line_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict,
                                              extra: list[str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    extra = [str(tmp_path / e) if e.endswith(".csv") else e for e in extra]
    code = main(["sequences", str(tmp_path / "a.csv"), "--out", str(tmp_path / "m.onnx"), "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "m.onnx.train").exists()  # refused before training started
