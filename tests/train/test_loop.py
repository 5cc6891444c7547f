"""The training loop: determinism, resume, atomic weights-only checkpoints; the train/export CLIs."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgeinfer import Model
from tests.conftest import ROOT
from tests.train.test_data import write_tiny_mnist
from train.__main__ import main as train_main
from train.checkpoint import load_checkpoint
from train.models import NetConfig, build


def _train(root, out, *extra: str) -> None:
    args = ["digits", "--data", str(root), "--out", str(out), "--hidden", "12", "--batch", "16",
            "--threads", "1", *extra]
    assert train_main(args) == 0


def test_deterministic_and_resumable(tmp_path) -> None:
    write_tiny_mnist(tmp_path / "data")
    _train(tmp_path / "data", tmp_path / "a", "--epochs", "2", "--augment", "1")
    _train(tmp_path / "data", tmp_path / "b", "--epochs", "2", "--augment", "1")
    _train(tmp_path / "data", tmp_path / "c", "--epochs", "2", "--augment", "1", "--stop-after", "1")
    _train(tmp_path / "data", tmp_path / "c", "--epochs", "2", "--augment", "1", "--resume")
    a, b, c = (load_checkpoint(tmp_path / x / "checkpoint.pt") for x in "abc")
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key  # same seed, same weights
        assert torch.equal(a.state_dict[key], c.state_dict[key]), key  # resumed = uninterrupted
    assert a.epoch == 2 and a.config["hidden"] == 12 and a.task == "digits"
    lines = [json.loads(x) for x in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.training
def test_training_learns_tiny_task(tmp_path) -> None:
    write_tiny_mnist(tmp_path / "data", n_train=512, n_test=128)
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "8", "--lr", "0.01", "--cell", "gru")
    metrics = load_checkpoint(tmp_path / "run" / "checkpoint.pt").metrics
    assert metrics["test_accuracy"] >= 0.85  # chance is 0.1


def test_anytime_training_supervises_every_row(tmp_path) -> None:
    write_tiny_mnist(tmp_path / "data", n_train=256, n_test=64)
    _train(tmp_path / "data", tmp_path / "plain", "--epochs", "2", "--lr", "0.01")
    _train(tmp_path / "data", tmp_path / "any", "--epochs", "2", "--lr", "0.01", "--anytime", "1")
    plain, anytime = (load_checkpoint(tmp_path / x / "checkpoint.pt") for x in ("plain", "any"))
    assert anytime.train_args["anytime"] == 1.0 and plain.train_args["anytime"] == 0.0
    assert not all(torch.equal(plain.state_dict[k], anytime.state_dict[k]) for k in plain.state_dict)
    from train.models import build
    net = build(anytime.config)
    net.load_state_dict(anytime.state_dict)
    x = torch.randn(3, 28, 28)
    every = net.every_step(x)  # (B, T, C)
    assert every.shape == (3, 28, 10)
    assert torch.allclose(every[:, -1], net(x)[0], atol=1e-6)  # the last row's output is the prediction


def test_train_without_data_is_one_clear_error(tmp_path, capsys) -> None:
    assert train_main(["digits", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "MNIST files missing" in capsys.readouterr().err


@pytest.mark.training
def test_export_cli_writes_fp32_and_int8(tmp_path) -> None:
    write_tiny_mnist(tmp_path / "data", n_train=256, n_test=64)
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "3", "--lr", "0.01", "--cell", "lstm")
    out = subprocess.run(
        [sys.executable, "-m", "export", str(tmp_path / "run" / "checkpoint.pt"), "--out",
         str(tmp_path / "models"), "--name", "tiny", "--data", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "parity fp32: max abs error" in out.stderr
    fp32, int8 = Model(tmp_path / "models" / "tiny-fp32.onnx"), Model(tmp_path / "models" / "tiny-int8.onnx")
    assert (fp32.spec.precision, int8.spec.precision) == ("fp32", "int8")
    assert fp32.spec.metrics["parity_max_abs_err"] <= 1e-5
    assert int8.spec.metrics["fp32_test_accuracy"] == fp32.spec.metrics["test_accuracy"]
    assert int8.path.stat().st_size < fp32.path.stat().st_size
    x = np.random.default_rng(0).standard_normal((3, 28, 28)).astype(np.float32)
    assert np.abs(fp32.predict(x) - int8.predict(x)).max() < 0.1


@pytest.mark.training
def test_export_gate_refuses_bad_int8(tmp_path, monkeypatch, capsys) -> None:
    import export.__main__ as ex
    write_tiny_mnist(tmp_path / "data", n_train=256, n_test=64)
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "2", "--lr", "0.01")
    monkeypatch.setitem(ex.MAX_INT8_DROP_POINTS, "digits", -200.0)  # no int8 model can pass this gate
    rc = ex.main([str(tmp_path / "run" / "checkpoint.pt"), "--out", str(tmp_path / "m"), "--name", "t",
                  "--data", str(tmp_path / "data")])
    assert rc == 1
    assert "int8 model not written" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["t-fp32.onnx"]


def test_export_parity_gate_fails_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    import export.__main__ as ex
    write_tiny_mnist(tmp_path / "data", n_train=64, n_test=32)
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "1")
    monkeypatch.setattr(ex, "FP32_TOLERANCE", 0.0)  # no float graph matches torch exactly
    rc = ex.main([str(tmp_path / "run" / "checkpoint.pt"), "--out", str(tmp_path / "m"), "--name", "t",
                  "--data", str(tmp_path / "data")])
    assert rc == 1
    assert "fp32 parity failed: max abs error" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_device_cpu_is_the_default_and_cuda_without_a_gpu_is_one_clear_error(tmp_path, capsys) -> None:
    write_tiny_mnist(tmp_path / "data", n_train=64, n_test=16)
    _train(tmp_path / "data", tmp_path / "a", "--epochs", "1")
    _train(tmp_path / "data", tmp_path / "b", "--epochs", "1", "--device", "cpu")
    a, b = (load_checkpoint(tmp_path / x / "checkpoint.pt") for x in "ab")
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    args = ["digits", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "c"), "--epochs", "1"]
    assert train_main([*args, "--device", "tpu"]) == 2
    assert "--device 'tpu' is not a torch device; use cpu or cuda[:N]" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert train_main([*args, "--device", "cuda"]) == 2
        assert "sees no CUDA GPU; use --device cpu" in capsys.readouterr().err
        assert not (tmp_path / "c").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch on this machine")
def test_training_on_cuda_matches_cpu_closely_and_loads_on_cpu(tmp_path) -> None:
    write_tiny_mnist(tmp_path / "data", n_train=256, n_test=64)
    _train(tmp_path / "data", tmp_path / "cpu", "--epochs", "2", "--lr", "0.01", "--cell", "gru")
    _train(tmp_path / "data", tmp_path / "gpu", "--epochs", "2", "--lr", "0.01", "--cell", "gru", "--device", "cuda")
    cpu, gpu = (load_checkpoint(tmp_path / x / "checkpoint.pt") for x in ("cpu", "gpu"))
    assert abs(cpu.metrics["test_accuracy"] - gpu.metrics["test_accuracy"]) <= 0.1
    from train.loop import accuracy
    from train.models import build
    from train.tasks import digits_data
    net = build(gpu.config)  # on the CPU: the GPU run's weights, evaluated here
    net.load_state_dict(gpu.state_dict)
    on_cpu = accuracy(net, digits_data(tmp_path / "data", "test"))
    assert abs(on_cpu - gpu.metrics["test_accuracy"]) <= 1 / 64  # at most one image differs


def test_head_dropout_acts_only_in_training() -> None:
    torch.manual_seed(0)
    net = build(NetConfig("gru", 4, 16, 1, 3, head_dropout=0.5))
    x = torch.randn(2, 5, 4)  # (B, T, F)
    net.eval()
    still, _ = net(x)
    assert torch.equal(still, net(x)[0])
    net.train()
    dropped, _ = net(x)
    assert not torch.allclose(dropped, still, atol=1e-3)
    assert set(net.state_dict()) == set(build(NetConfig("gru", 4, 16, 1, 3)).state_dict())


def test_every_step_outputs_ignore_padding() -> None:
    from train.loop import every_step_outputs
    torch.manual_seed(0)
    net = build(NetConfig("lstm", 6, 8, 1, 2, vocab=20)).eval()
    rows = [torch.tensor([3, 4, 5]), torch.tensor([7, 8, 9, 10, 11])]
    x = torch.zeros(2, 5, dtype=torch.int64)  # (B, T) right-padded
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
    y = torch.tensor([1, 0])
    last, steps, targets = every_step_outputs(net, {"x": x, "lengths": torch.tensor([3, 5])}, y)
    alone = [net.every_step(r[None])[0] for r in rows]  # each (T_i, C)
    torch.testing.assert_close(steps, torch.cat(alone), rtol=0, atol=1e-6)
    torch.testing.assert_close(last, torch.stack([a[-1] for a in alone]), rtol=0, atol=1e-6)
    assert targets.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    # without lengths (digits): every step of every row
    _, steps, targets = every_step_outputs(net, {"x": x}, y)
    assert steps.shape == (10, 2) and targets.tolist() == [1] * 5 + [0] * 5
