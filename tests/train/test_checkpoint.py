"""The typed, versioned checkpoint: round trip, version-1 files, refusals of newer or foreign files."""
from __future__ import annotations

import shutil
from dataclasses import fields, replace
from typing import Any

import numpy as np
import pytest
import torch

from edgeinfer import Model
from edgeinfer.spec import ImageInput, TextInput
from tests.train.test_data import write_tiny_mnist
from train import checkpoint as ck
from train.__main__ import main as train_main
from train.checkpoint import CHECKPOINT_VERSION, Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from train.models import NetConfig

CONFIG = NetConfig("gru", 4, 6, 1, 2, vocab=9)


def _example(**changes: Any) -> Checkpoint:
    base = Checkpoint.new("sentiment", ("negative", "positive"),
                          {"kind": "words", "vocab": ("a", "b"), "pad_id": 0, "unk_id": 1, "lowercase": True},
                          CONFIG.to_dict())
    return replace(base, state_dict={"w": torch.arange(6.0).reshape(2, 3)}, train_args={"lr": 0.01}, epoch=3,
                   train_seconds=1.5, metrics={"test_accuracy": 0.75}, stack={"alpha": 1.0},
                   resume={"rng": torch.get_rng_state(), "optimizer": {"state": {}, "param_groups": []}}, **changes)


def _same(a: Checkpoint, b: Checkpoint) -> None:
    """Field by field, tensors by value."""
    for f in fields(Checkpoint):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "state_dict":
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), f.name
        elif f.name == "resume":
            assert (x is None) == (y is None), f.name
            if x is not None:
                assert x.keys() == y.keys(), f.name
        else:
            assert x == y, f.name


def test_round_trip_keeps_every_field_and_types(tmp_path) -> None:
    ckpt = _example()
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", ckpt)  # the folder is created
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoint.pt"]  # no temp file left
    raw = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert isinstance(raw, dict) and raw["version"] == CHECKPOINT_VERSION == 2
    assert raw["labels"] == ["negative", "positive"] and raw["text"] is None  # plain containers
    back = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    _same(ckpt, back)
    assert back.labels == ("negative", "positive") and back.input["vocab"] == ("a", "b")
    assert torch.equal(back.resume["rng"], ckpt.resume["rng"])
    assert back.input_spec() == TextInput(vocab=("a", "b"))
    assert back.net_config() == CONFIG
    digits = Checkpoint.new("digits", ("0", "1"), {"kind": "image"}, CONFIG.to_dict())
    assert digits.input_spec() == ImageInput() and digits.epoch == 0 and digits.resume is None


def _as_version_1(ckpt: Checkpoint) -> dict[str, Any]:
    """The untyped dict the code wrote before checkpoints had a version."""
    old = {f.name: getattr(ckpt, f.name) for f in fields(ckpt) if f.name not in ("version", "resume", "text_sha256")}
    old = {k: v for k, v in old.items() if v is not None}
    return {**old, "labels": list(ckpt.labels), **(ckpt.resume or {})}


def test_version_1_dicts_load_with_their_resume_state() -> None:
    lm_state = {"net.w": torch.ones(2), "out.w": torch.zeros(3)}
    raw = {**_as_version_1(_example()), "bptt": 20, "lm_state_dict": lm_state, "partial": {"next": 40},
           "scheduler": {"last_epoch": 7}}
    ckpt = ck.from_dict(raw)
    assert ckpt.version == CHECKPOINT_VERSION and ckpt.bptt == 20 and ckpt.stack == {"alpha": 1.0}
    assert set(ckpt.resume) == {"optimizer", "scheduler", "rng", "lm_state_dict", "partial"}
    assert ckpt.resume["partial"] == {"next": 40} and ckpt.resume["lm_state_dict"] is lm_state
    assert ckpt.text is None and ckpt.text_sha256 is None and ckpt.ngrams is None
    plain = ck.from_dict({k: v for k, v in raw.items() if k not in ("optimizer", "scheduler", "rng", "lm_state_dict",
                                                                  "partial")})
    assert plain.resume is None


def test_newer_or_foreign_files_are_one_clear_error(tmp_path) -> None:
    newer = tmp_path / "newer.pt"
    torch.save({"version": CHECKPOINT_VERSION + 1, "state_dict": {}}, newer)
    with pytest.raises(CheckpointError, match=r"version 3 is newer than this code reads \(2\); update") as info:
        load_checkpoint(newer)
    assert "\n" not in str(info.value) and str(newer) in str(info.value)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"not a checkpoint .*written by `python -m train`") as info:
        load_checkpoint(text)
    assert "\n" not in str(info.value)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(other)
    torch.save({"state_dict": {}, "task": "digits"}, other)  # version 1 without most fields
    with pytest.raises(CheckpointError, match="checkpoint lacks labels, input, config"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="no checkpoint; train first with `python -m train"):
        load_checkpoint(tmp_path / "none.pt")
    assert issubclass(CheckpointError, ValueError)


def test_cli_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys) -> None:
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 64)
    newer = tmp_path / "newer.pt"
    torch.save({"version": 99, "state_dict": {}}, newer)
    for path in (tmp_path / "bad.pt", newer):
        rc = train_main(["ngrams", "--data", str(tmp_path), "--init", str(path), "--ngram-buckets", "7",
                         "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and err.startswith(f"error: {path}: ") and "Traceback" not in err


def test_version_1_checkpoint_resumes_and_exports_the_same(tmp_path) -> None:
    """A run interrupted under the old format resumes to the same weights as one under the new,
    and a finished old-format checkpoint exports to the same model."""
    import export.__main__ as ex
    write_tiny_mnist(tmp_path / "data", n_train=64, n_test=32)
    common = ["digits", "--data", str(tmp_path / "data"), "--hidden", "8", "--batch", "16", "--threads", "1",
              "--epochs", "2", "--lr", "0.01"]
    assert train_main([*common, "--out", str(tmp_path / "new"), "--stop-after", "1"]) == 0
    half = load_checkpoint(tmp_path / "new" / "checkpoint.pt")
    assert set(half.resume) == {"optimizer", "scheduler", "rng"}
    (tmp_path / "old").mkdir()
    torch.save(_as_version_1(half), tmp_path / "old" / "checkpoint.pt")
    assert "version" not in torch.load(tmp_path / "old" / "checkpoint.pt", weights_only=True)
    _same(load_checkpoint(tmp_path / "old" / "checkpoint.pt"), half)
    for run in ("new", "old"):
        assert train_main([*common, "--out", str(tmp_path / run), "--resume"]) == 0
    new, old = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in ("new", "old"))
    assert new.epoch == old.epoch == 2
    assert all(torch.equal(new.state_dict[k], old.state_dict[k]) for k in new.state_dict)
    shutil.copy(tmp_path / "new" / "checkpoint.pt", tmp_path / "final.pt")
    torch.save(_as_version_1(new), tmp_path / "final-v1.pt")
    models = []
    for name in ("final", "final-v1"):
        assert ex.main([str(tmp_path / f"{name}.pt"), "--out", str(tmp_path / "m"), "--name", name,
                        "--data", str(tmp_path / "data"), "--no-int8"]) == 0
        models.append(Model(tmp_path / "m" / f"{name}-fp32.onnx"))
    x = np.random.default_rng(0).standard_normal((3, 28, 28)).astype(np.float32)
    assert np.array_equal(models[0].predict(x), models[1].predict(x))
    assert models[0].spec.metrics == models[1].spec.metrics

