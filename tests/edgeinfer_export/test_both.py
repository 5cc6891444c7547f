"""Both int8 sequence forms in one file (edgeinfer_export.both): the decomposed graph from a batch
size on, bit for bit as before; the fused operator below it, equal to the step graph stepped T
times; a file re-chosen on another machine; refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeinfer
from edgeinfer_export.both import THRESHOLD, main, rewrite
from tests.fixtures import fixture_path

DECOMPOSED = ("digits-gru2-int8-decomposed", "digits-rnn1-int8-decomposed", "digits-lstm1-int8-decomposed",
              "sentiment-gru1-readout-int8-decomposed", "sentiment-gru1-short-int8-decomposed")


def _inputs(model: edgeinfer.Model, batch: int, steps: int = 9) -> np.ndarray:
    rng = np.random.default_rng(batch)
    vocab = model.spec.token_vocab
    if vocab is not None:
        return rng.integers(2, vocab.vocab_size, (batch, steps)).astype(np.int64)
    return rng.standard_normal((batch, steps, model.spec.input_size)).astype(np.float32)


def _stepped(model: edgeinfer.Model, x: np.ndarray) -> np.ndarray:
    """The logits after stepping the (fused) step graph through every row of x."""
    stream = model.stream(len(x))
    for t in range(x.shape[1]):
        stream.step(x[:, t])
    return stream.logits


@pytest.mark.parametrize("name", DECOMPOSED)
def test_each_batch_gets_its_form(name: str, tmp_path: Path) -> None:
    src, dst = fixture_path(name), tmp_path / f"{name}.onnx"
    assert rewrite(src, dst, decomposed_from=4) == 4
    old, new = edgeinfer.load(src), edgeinfer.load(dst)
    graph = onnx.load(str(dst)).graph
    assert [n.op_type for n in graph.node][-1] == "If"
    assert [int(onnx.numpy_helper.to_array(t)) for t in graph.initializer if t.name == THRESHOLD] == [4]
    assert dst.stat().st_size < src.stat().st_size * 1.05 + 16384  # the weights are shared, not copied
    assert "both forms behind an If on the batch size: decomposed from batch 4" in new.spec.quantization
    for batch in (4, 7):  # the decomposed branch: the old graph, bit for bit
        x = _inputs(old, batch)
        np.testing.assert_array_equal(new.sequence_logits(x), old.sequence_logits(x))
    # the fused branch: the step graph's operator over the whole sequence (an int8 LSTM quantizes its
    # input once per call, over all its steps, so it rounds otherwise than step by step)
    atol = 2e-2 if old.spec.cell == "lstm" else 1e-5
    for batch in (1, 3):
        x = _inputs(old, batch)
        np.testing.assert_allclose(new.sequence_logits(x), _stepped(old, x), atol=atol, rtol=0)
        assert np.abs(new.predict(x) - old.predict(x)).max() <= 0.08  # the int8 tolerance of the two forms
    x = _inputs(old, 1)
    s, t = old.stream(), new.stream()
    for k in range(x.shape[1]):  # the step graph is untouched
        np.testing.assert_array_equal(s.step(x[0, k]), t.step(x[0, k]))


def test_a_file_is_chosen_again(tmp_path: Path) -> None:
    """Run on a file that holds both forms, the tool starts from its decomposed graph: a user's
    machine sets its own threshold, and nothing else changes."""
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    rewrite(fixture_path("sentiment-gru1-readout-int8-decomposed"), first, decomposed_from=4)
    rewrite(first, second, decomposed_from=2)
    a, b = edgeinfer.load(first), edgeinfer.load(second)
    assert "decomposed from batch 2" in b.spec.quantization and b.spec.quantization.count("both forms") == 1
    x = _inputs(a, 3)  # fused in a, decomposed in b
    np.testing.assert_allclose(a.sequence_logits(x), _stepped(a, x), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(b.sequence_logits(x), edgeinfer.load(
        fixture_path("sentiment-gru1-readout-int8-decomposed")).sequence_logits(x))
    assert abs(second.stat().st_size - first.stat().st_size) < 256


def test_a_file_without_a_decomposed_graph_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.onnx"
    assert main([str(fixture_path("characters-lstm-int8")), str(out)]) == 2
    assert "not decomposed" in capsys.readouterr().err and not out.exists()
