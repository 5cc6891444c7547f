"""A second execution provider for real: OpenVINO (onnxruntime-openvino, which cannot share a venv
with onnxruntime: `.ci/run` builds `.venv-openvino` for it and sets EDGEINFER_REQUIRE_OPENVINO=1,
which makes a missing provider a failure). Every node on OpenVINO, the CPU fallback off: fp32
files as they are, int8 files dequantized at load (OpenVINO has no kernels for onnxruntime's int8
operators), against the CPU provider's answers in the same process."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer import ProviderError
from tests.conftest import ROOT, run_cli
from tests.fixtures import fixture_path

OPENVINO = "OpenVINOExecutionProvider" in edgeinfer.available_providers()
if not OPENVINO and os.environ.get("EDGEINFER_REQUIRE_OPENVINO") == "1":
    pytest.fail("EDGEINFER_REQUIRE_OPENVINO=1 but this onnxruntime has no OpenVINOExecutionProvider",
                pytrace=False)
pytestmark = pytest.mark.skipif(not OPENVINO, reason="no OpenVINOExecutionProvider here: .ci/run runs these "
                                "tests in .venv-openvino (pip install onnxruntime-openvino, in a venv of its own)")

FP32 = ("digits-rnn2", "digits-lstm2", "digits-gru2", "user-gru-features-classes",
        "user-lstm-features-values-per-step")
# int8 with fused operators, or both sequence forms (motions: OpenVINO runs its fused form): both
# graphs on OpenVINO alone
INT8_FUSED = ("digits", "characters", "characters-lstm-int8", "motions")
# int8 with only a decomposed sequence graph (a Scan, which OpenVINO's provider does not take): the
# step graph on OpenVINO alone, the sequence graph with the CPU fallback for the Scan
INT8_DECOMPOSED = ("digits-gru2-int8-decomposed", "digits-rnn1-int8-decomposed")


def _path(name: str) -> str | Path:
    return name if name in edgeinfer.builtin_models() else fixture_path(name)


def _steps(model: edgeinfer.Model, ref: edgeinfer.Model, steps: int = 20) -> float:
    """Max |difference| of `steps` stream steps of two models on the same inputs."""
    a, b = model.stream(), ref.stream()
    tokens = model.spec.input.kind in ("words", "chars")
    vocab = len(getattr(model.spec.input, "vocab", ())) + 2
    worst = 0.0
    for t in range(steps):
        x = 2 + (t * 3) % (vocab - 2) if tokens else np.sin(np.arange(model.spec.input_size, dtype=np.float32) + t)
        worst = max(worst, float(np.abs(a.step(x) - b.step(x)).max()))
    return worst


def _sequences(model: edgeinfer.Model) -> np.ndarray:
    if model.spec.input.kind in ("words", "chars"):
        vocab = len(getattr(model.spec.input, "vocab", ())) + 2
        return (2 + np.arange(3 * 8).reshape(3, 8) % (vocab - 2)).astype(np.int64)
    return np.sin(np.arange(3 * 8 * model.spec.input_size, dtype=np.float32) * 0.31).reshape(3, 8, -1)


@pytest.mark.parametrize("name", FP32 + INT8_FUSED)
def test_every_node_on_openvino(name: str) -> None:
    ov = edgeinfer.load(_path(name), "openvino", cpu_fallback=False)
    cpu = edgeinfer.load(_path(name), dequantize=ov.dequantize)  # the same arithmetic on the CPU provider
    assert ov.dequantize  # by default on OpenVINO (an fp32 file has nothing to rewrite)
    for session in (ov.sequence_session, ov.step_session):  # created with the fallback off: no node on the CPU
        assert session.get_providers()[0] == "OpenVINOExecutionProvider"
    x = _sequences(ov)
    # a file with both sequence forms runs its fused one on OpenVINO: the CPU's answer at batch 1
    want = np.concatenate([cpu.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(ov.predict(x), want, atol=1e-4, rtol=0)
    assert _steps(ov, cpu) <= 1e-4


@pytest.mark.parametrize("name", INT8_DECOMPOSED)
def test_a_decomposed_sequence_graph_needs_the_cpu_for_its_scan(name: str) -> None:
    strict = edgeinfer.load(_path(name), "openvino", cpu_fallback=False)
    assert strict.step_session.get_providers()[0] == "OpenVINOExecutionProvider"
    cpu = edgeinfer.load(_path(name), dequantize=True)
    assert _steps(strict, cpu) <= 1e-4
    with pytest.raises(ProviderError, match="cannot run every node of this graph and the CPU fallback is off"):
        strict.sequence_session  # noqa: B018
    ov = edgeinfer.load(_path(name), "openvino")  # the default: the Scan on the CPU
    x = _sequences(ov)
    np.testing.assert_allclose(ov.predict(x), cpu.predict(x), atol=1e-4, rtol=0)


def test_a_model_that_hashes_in_int64_is_refused() -> None:
    """OpenVINO computes int64 in 32 bits: the built-in sentiment model's hashed word trigrams
    overflow there and land in other buckets (its n-gram sum 0.4 off after 30 words, measured).
    Such a file is refused at load, never answered wrongly; tiny vocabularies hash within 32 bits,
    but the rule is the graph's, not the vocabulary's."""
    with pytest.raises(ProviderError, match=r"hashes with 64-bit integers .* use the CPU provider"):
        edgeinfer.load("sentiment", "openvino")
    refused = run_cli("sentiment", "a wonderful, moving film", "--provider", "openvino")
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1 and "64-bit integers" in refused.stderr


def test_the_cli_and_doctor_run_on_openvino() -> None:
    digit = run_cli("classify", "image", str(ROOT / "samples" / "digit-3-dark-on-light.pgm"), "--provider", "openvino")
    assert digit.returncode == 0 and digit.stdout.split(": ")[1].startswith("3 "), digit.stderr
    text = run_cli("generate", "--max-chars", "20", "--seed", "1", "--provider", "openvino")
    assert text.returncode == 0 and len(text.stdout) >= 20, text.stderr
    doctor = run_cli("doctor", "--provider", "openvino")
    assert doctor.returncode == 0 and "OpenVINOExecutionProvider" in doctor.stdout
    assert "int8 operators run dequantized" in doctor.stdout
    err = float(doctor.stdout.rsplit("difference from the CPU ", 1)[1].split()[0])
    assert err < 0.2, doctor.stdout  # the CPU's int8 kernel against OpenVINO's fp32 of the same weights
