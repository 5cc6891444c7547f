"""Killed runs and --resume: the metrics log agrees with the checkpoint, a resume that finds no
checkpoint says so (and whether an interrupted save left a temporary file)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import train.lm as lm_module
import train.loop as loop_module
from tests.conftest import ROOT
from tests.train.test_data import write_tiny_mnist
from train.__main__ import main as train_main
from train.checkpoint import Checkpoint, load_checkpoint
from train.metrics import METRICS


class Killed(BaseException):
    """Stands for a SIGKILL: no handler catches it and nothing after it runs."""


def _train(root: Path, out: Path, *extra: str) -> None:
    args = ["digits", "--data", str(root), "--out", str(out), "--hidden", "8", "--batch", "16", "--threads", "1",
            "--limit", "48", *extra]
    assert train_main(args) == 0


def records(out: Path) -> list[dict[str, Any]]:
    """The metrics log of a run folder, one dict per line."""
    return [json.loads(line) for line in (out / METRICS).read_text().splitlines()]


def same_run(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Two metrics logs record the same epochs with the same values (the seconds aside)."""
    return [{k: v for k, v in r.items() if k != "train_seconds"} for r in a] == [
        {k: v for k, v in r.items() if k != "train_seconds"} for r in b]


def dying_save(real: Any, epoch: int, saved: bool) -> Any:
    """A save_checkpoint that is killed at `epoch`: after writing that checkpoint when `saved`,
    before it otherwise."""
    def save(path: Path, ckpt: Checkpoint) -> None:
        if ckpt.epoch == epoch and not (ckpt.resume or {}).get("partial"):
            if saved:
                real(path, ckpt)
            raise Killed
        real(path, ckpt)
    return save


@pytest.fixture()
def tiny_digits(tmp_path) -> Path:
    """A tiny MNIST-format data folder and, beside it, an uninterrupted 3-epoch run in `whole`."""
    write_tiny_mnist(tmp_path / "data", n_train=48, n_test=16)
    _train(tmp_path / "data", tmp_path / "whole", "--epochs", "3")
    return tmp_path / "data"


@pytest.mark.parametrize("saved", [False, True], ids=["before-checkpoint", "after-checkpoint"])
def test_killed_digits_run_logs_each_epoch_once_after_resume(tmp_path, tiny_digits, monkeypatch, saved) -> None:
    """Killed at the end of epoch 2, before or after its checkpoint is written, then resumed: the
    metrics log is the uninterrupted run's, each epoch once, and ends with the checkpoint's metrics."""
    cut = tmp_path / "cut"
    monkeypatch.setattr(loop_module, "save_checkpoint", dying_save(loop_module.save_checkpoint, 2, saved))
    with pytest.raises(Killed):
        _train(tiny_digits, cut, "--epochs", "3")
    monkeypatch.undo()
    assert load_checkpoint(cut / "checkpoint.pt").epoch == (2 if saved else 1)
    _train(tiny_digits, cut, "--epochs", "3", "--resume")
    got = records(cut)
    assert [r["epoch"] for r in got] == [1, 2, 3]
    assert same_run(got, records(tmp_path / "whole"))
    assert got[-1] == load_checkpoint(cut / "checkpoint.pt").metrics


def test_fresh_start_drops_the_metrics_of_an_earlier_run(tmp_path, tiny_digits) -> None:
    """A run started (not resumed) in a folder keeps no record of what ran there before: neither
    the lines of a run that never saved a checkpoint nor those of a finished one."""
    out = tmp_path / "again"
    out.mkdir()
    (out / METRICS).write_text('{"epoch": 1, "test_accuracy": 0.125}\n{"epoch": 2, "test_accuracy": 0.25}\n')
    _train(tiny_digits, out, "--epochs", "3")
    assert same_run(records(out), records(tmp_path / "whole"))
    _train(tiny_digits, out, "--epochs", "2", "--lr", "0.01")  # a finished run, then a new one in its place
    _train(tiny_digits, out, "--epochs", "3")
    assert same_run(records(out), records(tmp_path / "whole"))


def test_resume_without_a_checkpoint_says_so(tmp_path, tiny_digits, capsys) -> None:
    out = tmp_path / "empty"
    _train(tiny_digits, out, "--epochs", "3", "--resume")
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("resume")]
    assert lines == [f"resume: no checkpoint in {out}; starting from epoch 1"]
    assert same_run(records(out), records(tmp_path / "whole"))


KILLED_IN_FIRST_SAVE = """
import os, signal, sys
import train.checkpoint

def half_a_save(obj, path):  # torch.save's file, cut short by a SIGKILL
    with open(path, "wb") as fh:
        fh.write(b"PK\\x03\\x04 half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)

train.checkpoint.torch.save = half_a_save
from train.__main__ import main
main(sys.argv[1:])
"""


@pytest.mark.training
def test_resume_after_a_kill_in_the_first_save_names_the_temporary_file(tmp_path, tiny_digits, capsys) -> None:
    """A run SIGKILLed while writing its first checkpoint leaves only a temporary file; --resume
    says so, removes it and starts over."""
    out = tmp_path / "killed"
    args = ["digits", "--data", str(tiny_digits), "--out", str(out), "--hidden", "8", "--batch", "16",
            "--threads", "1", "--limit", "48", "--epochs", "3"]
    run = subprocess.run([sys.executable, "-c", KILLED_IN_FIRST_SAVE, *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == -9, run.stderr
    temps = list(out.glob(".checkpoint.pt.*.tmp"))
    assert len(temps) == 1 and not (out / "checkpoint.pt").exists()
    _train(tiny_digits, out, "--epochs", "3", "--resume")
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("resume")]
    assert lines == [f"resume: no checkpoint in {out} (an interrupted save left only a temporary file, now "
                     "removed); starting from epoch 1"]
    assert not list(out.glob(".*.tmp"))
    assert same_run(records(out), records(tmp_path / "whole"))


@pytest.mark.parametrize("saved", [False, True], ids=["before-checkpoint", "after-checkpoint"])
def test_killed_language_model_logs_each_epoch_once_after_resume(tmp_path, monkeypatch, capsys, saved) -> None:
    """fit_lm (characters, sentiment-lm): the same agreement between log and checkpoint; a first
    run into a folder with a stale log drops it, and a resume with nothing to resume says so."""
    from tests.train.test_lm import _lm
    from train.loop import Optimisation

    ids = np.random.default_rng(2).integers(1, 12, 1200)
    args = Optimisation(epochs=3, batch=4, lr=0.01, seed=1)

    def run(out: Path, resume: bool = False) -> None:
        lm = _lm(0.0)
        meta = Checkpoint.new("characters", (), {"kind": "chars"}, lm.net.config.to_dict())
        lm_module.fit_lm(lm, ids[:1000], ids[1000:], args, 10, out, meta, resume=resume)

    run(tmp_path / "whole", resume=True)
    assert f"resume: no checkpoint in {tmp_path / 'whole'}; starting from epoch 1" in capsys.readouterr().err
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / METRICS).write_text('{"epoch": 3, "val_loss": 9.0}\n')  # a stale line, no checkpoint
    monkeypatch.setattr(lm_module, "save_checkpoint", dying_save(lm_module.save_checkpoint, 2, saved))
    with pytest.raises(Killed):
        run(cut)
    monkeypatch.undo()
    run(cut, resume=True)
    got = records(cut)
    assert [r["epoch"] for r in got] == [1, 2, 3]
    assert same_run(got, records(tmp_path / "whole"))
    assert got[-1] == load_checkpoint(cut / "checkpoint.pt").metrics
