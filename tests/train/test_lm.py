"""The language-model trainer: output dropout, moving window offsets, state carried."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from train.lm import LanguageModel, batchify, lm_loss
from train.models import NetConfig, build


def _lm(dropout: float) -> LanguageModel:
    torch.manual_seed(0)
    lm = LanguageModel(build(NetConfig("lstm", 8, 16, 1, 12, dropout=dropout, vocab=12)), adaptive=False)
    lm.net.inp[1].p = 0.0  # no embedding dropout: any randomness left comes from the output dropout
    return lm


@torch.no_grad()
def test_output_dropout_only_while_training() -> None:
    x = torch.randint(1, 12, (4, 10))
    y = torch.randint(1, 12, (4, 10))
    lm = _lm(0.5)
    state = lm.net.initial_state(4)
    lm.train()
    a, _ = lm(x, y, state)
    b, _ = lm(x, y, state)
    assert abs(float(a) - float(b)) > 1e-4  # a one-layer LSTM: nothing else is random
    lm.eval()
    c, _ = lm(x, y, state)
    d, _ = lm(x, y, state)
    assert float(c) == float(d)
    plain = _lm(0.0).train()
    e, _ = plain(x, y, state)
    f, _ = plain(x, y, state)
    assert float(e) == float(f)


def test_lm_loss_carries_state_across_windows() -> None:
    lm = _lm(0.0).eval()
    rows = batchify(np.random.default_rng(0).integers(1, 12, 401), 4)  # (4, 100)
    whole = lm_loss(lm, rows, bptt=1000)  # one window
    windows = lm_loss(lm, rows, bptt=7)  # state carried from window to window
    assert abs(whole - windows) < 1e-5
    with torch.no_grad():
        restarted = np.mean([float(lm(rows[:, i:i + 7][:, :len(rows[0, i + 1:i + 8])], rows[:, i + 1:i + 8],
                                      lm.net.initial_state(4))[0]) for i in range(0, 98, 7)])
    assert abs(restarted - windows) > 1e-3  # forgetting the state would change the loss


@pytest.mark.training
def test_interrupted_epoch_resumes_exactly(tmp_path, monkeypatch) -> None:
    """Checkpoints within an epoch: a run killed mid-epoch and resumed ends with the same weights
    as a run never interrupted."""
    import train.lm as lm_module
    from train.checkpoint import Checkpoint, load_checkpoint
    from train.loop import Optimisation

    ids = np.random.default_rng(1).integers(1, 12, 4000)
    args = Optimisation(epochs=2, batch=4, lr=0.01, seed=3)

    def run(out, resume=False):
        lm = _lm(0.3)
        meta = Checkpoint.new("characters", (), {"kind": "chars"}, lm.net.config.to_dict())
        return lm, lm_module.fit_lm(lm, ids[:3600], ids[3600:], args, 20, out, meta, resume=resume,
                                    checkpoint_minutes=1e-9)  # a checkpoint after every window

    whole, _ = run(tmp_path / "whole")
    real_save, calls = lm_module.save_checkpoint, []

    def killed_on_the_seventh(path, ckpt):
        real_save(path, ckpt)
        calls.append(ckpt.resume.get("partial"))
        if len(calls) == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(lm_module, "save_checkpoint", killed_on_the_seventh)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut")
    monkeypatch.setattr(lm_module, "save_checkpoint", real_save)
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert cut.epoch == 0 and cut.resume["partial"]["next"] > 0  # stopped inside the first epoch
    resumed, metrics = run(tmp_path / "cut", resume=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    final = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert final.epoch == 2 and "partial" not in final.resume and metrics["epoch"] == 2
