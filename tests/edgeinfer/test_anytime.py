"""Anytime results: probabilities after every step, early exit at a threshold; the step hot path."""
from __future__ import annotations

import numpy as np
import pytest

import edgeinfer
from edgeinfer.errors import InputError
from tests.conftest import ROOT, run_cli


def test_trace_equals_stepping_and_predict(make_model) -> None:
    model = edgeinfer.load(make_model("lstm", 2))
    x = np.random.default_rng(0).standard_normal((3, 28, 28)).astype(np.float32)
    trace = model.stream(3).trace(x)  # (B, T, C)
    assert trace.shape == (3, 28, 10)
    alone = model.stream()
    want = np.stack([alone.step(x[1, t]) for t in range(28)])
    assert np.abs(trace[1] - want).max() <= 1e-6
    assert np.abs(trace[:, -1] - model.predict(x)).max() <= 1e-5


def test_early_exit_stops_at_the_first_confident_step(make_model) -> None:
    model = edgeinfer.load(make_model("gru", 1))
    x = np.random.default_rng(1).standard_normal((16, 28, 28)).astype(np.float32)
    trace = model.stream(16).trace(x)
    top = trace.max(axis=2)  # (B, T)
    threshold = float(np.median(top))  # some rows stop early, some never
    result = model.early_exit(x, threshold)
    for row in range(16):
        hits = np.flatnonzero(top[row] >= threshold)
        want = int(hits[0]) + 1 if len(hits) else 28
        assert result.steps[row] == want
        assert np.abs(result.probabilities[row] - trace[row, want - 1]).max() <= 1e-6
    assert 1 < result.steps.mean() < 28
    full = model.early_exit(x, 1.0)  # reads everything
    assert (full.steps == 28).all() and full.total_steps == 28
    assert np.abs(full.probabilities - model.predict(x)).max() <= 1e-5
    assert (full.label_ids == model.predict(x).argmax(1)).all()
    assert full.labels == [model.spec.labels[i] for i in full.label_ids]


def test_early_exit_rejects_bad_thresholds(make_model) -> None:
    model = edgeinfer.load(make_model("gru", 1))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="threshold"):
            model.early_exit(np.zeros((28, 28), np.float32), bad)


def test_cli_early_exit() -> None:
    samples = sorted(str(p) for p in (ROOT / "samples").glob("*.pgm"))
    r = run_cli("classify", "image", *samples, "--early-exit", "0.999999", "--json")
    assert r.returncode == 0, r.stderr
    import json
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    full = run_cli("classify", "image", *samples, "--json")
    for got, want in zip(rows, [json.loads(line) for line in full.stdout.splitlines()], strict=True):
        assert 1 <= got["rows"] <= got["of_rows"] == 28
        if got["rows"] == 28:  # never confident enough: the full read's answer
            assert got["label"] == want["label"]
    r = run_cli("classify", "image", samples[0], "--early-exit", "1.5")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--early-exit" in r.stderr


def test_step_returns_fresh_arrays_equal_to_bare_onnxruntime(make_model) -> None:
    model = edgeinfer.load(make_model("lstm", 1))
    x = np.random.default_rng(2).standard_normal((5, 28)).astype(np.float32)
    stream = model.stream()
    first = stream.step(x[0])
    kept = first.copy()
    stream.step(x[1])
    assert np.array_equal(first, kept)  # a later step does not overwrite an earlier result
    state = model.spec.initial_state(1)
    for t in range(2):
        out = model.step_session.run(None, {"x": x[t][None], **state})
        state = {"h": out[1], "c": out[2]}
    assert np.abs(stream.logits - out[0]).max() <= 1e-6
    assert np.abs(stream.state["h"] - state["h"]).max() <= 1e-6
    # every input form: list, float64, (1, F)
    for form in (x[2].tolist(), x[2].astype(np.float64), x[2][None]):
        a, b = stream.fork(), stream.fork()
        np.testing.assert_allclose(np.squeeze(a.step(form)), b.step(x[2]), atol=1e-7)
