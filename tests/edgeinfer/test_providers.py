"""Execution providers: every command takes --provider; the CUDA path runs where a GPU exists."""
from __future__ import annotations

import numpy as np
import pytest

import edgeinfer
from tests.conftest import ROOT, run_cli

CUDA = "CUDAExecutionProvider" in edgeinfer.available_providers()


@pytest.mark.parametrize("args", [
    ("classify", "image", str(ROOT / "samples" / "digit-3-dark-on-light.pgm")),
    ("sentiment", "a fine film"),
    ("generate", "--max-chars", "3", "--seed", "1"),
    ("info", "digits"),
    ("models",),
    ("doctor",),
    ("bench", "digits", "--streams", "4"),
])
def test_every_command_takes_provider(args, tmp_path) -> None:
    ok = run_cli(*args, "--provider", "cpu")
    assert ok.returncode == 0, ok.stderr
    bad = run_cli(*args, "--provider", "NoSuchThing")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "'NoSuchThing' is not available; available:" in bad.stderr and "Traceback" not in bad.stderr


def test_score_takes_provider(tmp_path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("ROMEO: what light\n")
    assert run_cli("score", str(text), "--provider", "cpu").returncode == 0
    assert run_cli("score", str(text), "--provider", "NoSuchThing").returncode == 2


@pytest.mark.skipif(not CUDA, reason="no CUDAExecutionProvider in this onnxruntime build "
                    "(a GPU machine with onnxruntime-gpu runs this test)")
def test_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 28, 28)).astype(np.float32)
    cpu, gpu = edgeinfer.load("digits"), edgeinfer.load("digits", providers="cuda")
    assert gpu.sequence_session.get_providers()[0] == "CUDAExecutionProvider"
    assert np.abs(gpu.predict(x) - cpu.predict(x)).max() <= 1e-3
    s_cpu, s_gpu = cpu.stream(), gpu.stream()
    for t in range(28):
        a, b = s_cpu.step(x[0, t]), s_gpu.step(x[0, t])
    assert np.abs(a - b).max() <= 1e-3
    batch = gpu.stream_batch()
    handles = [batch.open() for _ in range(8)]
    for t in range(28):
        p = batch.step(handles, x[:, t])
    assert np.abs(p - cpu.predict(x)).max() <= 1e-3
