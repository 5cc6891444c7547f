"""The one learning-rate schedule (warm-up, then cosine) and the one metrics writer and its reconciliation."""
from __future__ import annotations

import json
import math

import pytest
import torch

from train.metrics import METRICS, append_metrics, log_epoch, sync_metrics
from train.schedule import cosine_warmup


def _rates(total: int, warmup: int, steps: int) -> list[float]:
    """The learning rate (base 1.0) before each of `steps` optimizer steps."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = cosine_warmup(opt, total, warmup)
    rates = []
    for _ in range(steps):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return rates


def test_warmup_then_cosine_exact_values() -> None:
    rates = _rates(total=10, warmup=4, steps=12)
    # warm-up: (s + 1) / 4 times the cosine, which has barely started
    assert rates[:4] == pytest.approx([0.25, 0.4877641290737884, 0.6783813728906053, 0.7938926261462366], abs=1e-15)
    # then the cosine alone, 0.5 * (1 + cos(pi * s / 10)), to 0 at step 10 and after
    assert rates[4:] == pytest.approx([0.6545084971874737, 0.5, 0.34549150281252633, 0.2061073738537635,
                                       0.09549150281252633, 0.024471741852423234, 0.0, 0.0], abs=1e-15)
    assert rates[5] == 0.5 * (1 + math.cos(math.pi * 5 / 10))  # the formula, bit for bit


def test_one_step_warmup_and_each_callers_rule() -> None:
    assert _rates(total=4, warmup=1, steps=3) == pytest.approx([1.0, 0.8535533905932737, 0.5], abs=1e-15)
    # train.loop.fit warms up over max(1, min(200, total // 10)) steps, fit_lm over 100: both ramp linearly
    assert _rates(total=10_000, warmup=200, steps=3)[2] == pytest.approx(3 / 200, rel=1e-6)
    assert _rates(total=10_000, warmup=100, steps=3)[2] == pytest.approx(3 / 100, rel=1e-6)
    with pytest.raises(ValueError, match="total_steps and warmup_steps >= 1"):
        _rates(total=0, warmup=1, steps=1)


def test_metrics_lines_are_appended_and_echoed(tmp_path, capsys) -> None:
    out = tmp_path / "run"  # created on first use
    append_metrics(out, {"epoch": 1, "test_accuracy": 0.5})
    append_metrics(out, {"epoch": 2, "test_accuracy": 0.75})
    append_metrics(out, {"stack": {"alpha": 1.5}}, echo=False)
    lines = (out / METRICS).read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"epoch": 1, "test_accuracy": 0.5}, {"epoch": 2, "test_accuracy": 0.75},
                                              {"stack": {"alpha": 1.5}}]
    assert capsys.readouterr().err.splitlines() == lines[:2]  # the same JSON lines, not the unechoed one


def test_sync_keeps_each_completed_epoch_once(tmp_path) -> None:
    """A log mended to agree with a checkpoint after 2 epochs: the last record of each earlier
    epoch, the checkpoint's own record for epoch 2, nothing later, no broken or foreign lines."""
    log = tmp_path / METRICS
    log.write_text('{"epoch": 1, "loss": 9}\n{"epoch": 2, "loss": 8}\n{"stack": {}}\n{"epoch": 1, "loss": 1}\n'
                   '{"epoch": 3, "loss": 3}\n{"epoch": 2, "lo\n')
    sync_metrics(tmp_path, 2, {"epoch": 2, "loss": 2})
    assert [json.loads(x) for x in log.read_text().splitlines()] == [{"epoch": 1, "loss": 1}, {"epoch": 2, "loss": 2}]
    before = log.stat()
    sync_metrics(tmp_path, 2, {"epoch": 2, "loss": 2})  # already in agreement: left as it is
    assert log.stat().st_ino == before.st_ino and log.stat().st_mtime_ns == before.st_mtime_ns
    sync_metrics(tmp_path, 0)  # a fresh start: no records
    assert log.read_text() == ""
    sync_metrics(tmp_path / "new", 0)  # nothing to log, no file made
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_log_epoch_appends_or_replaces_later_epochs(tmp_path, capsys) -> None:
    log = tmp_path / METRICS
    log_epoch(tmp_path, {"epoch": 1, "loss": 1.0})
    inode = log.stat().st_ino
    log_epoch(tmp_path, {"epoch": 2, "loss": 0.5})
    assert log.stat().st_ino == inode  # appended: a `tail -f` keeps following it
    log_epoch(tmp_path, {"epoch": 2, "loss": 0.25})  # a new run over an old one: its later epochs go
    assert [json.loads(x) for x in log.read_text().splitlines()] == [{"epoch": 1, "loss": 1.0},
                                                                     {"epoch": 2, "loss": 0.25}]
    assert len(capsys.readouterr().err.splitlines()) == 3  # every record echoed
    with pytest.raises(ValueError, match="integer epoch >= 1"):
        log_epoch(tmp_path, {"stack": {}})
