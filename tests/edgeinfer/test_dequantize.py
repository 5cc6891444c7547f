"""int8 operators rewritten into standard fp32 ones at load (edgeinfer.dequantize): what is
rewritten, what is kept, and how far the answers move (torch-free)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer import InputError
from edgeinfer.dequantize import dequantize_graph, fused_form
from edgeinfer.fileformat import parse_model_file, proto_fields
from edgeinfer.model import builtin_models
from tests.fixtures import fixture_path

ROOT = Path(__file__).resolve().parents[2]
INT8_OPS = {"DynamicQuantizeLSTM", "MatMulIntegerToFloat"}
# each step from the same state: the fp32 LSTM of the dequantized weights against the int8 kernel
# (measured in Node against Python's numbers: digits 1.2e-2, characters 2.2e-3)
DEQUANTIZED_TOL = 2e-2


def _ops(graph: bytes, found: list[str]) -> list[str]:
    """Every node's op type in a GraphProto, nested graphs included."""
    for number, _, value in proto_fields(graph):
        if number != 1 or not isinstance(value, bytes):
            continue
        node = proto_fields(value)
        found += [v.decode() for n, _, v in node if n == 4 and isinstance(v, bytes)]
        for n, _, attribute in node:
            if n == 5 and isinstance(attribute, bytes):
                for a, _, g in proto_fields(attribute):
                    if a == 6 and isinstance(g, bytes):
                        _ops(g, found)
    return found


def _graph(model: bytes) -> tuple[list[str], list[bytes]]:
    """A model's op types (nested too) and its main graph's initializers, as bytes."""
    graph = next(v for n, _, v in proto_fields(model) if n == 7 and isinstance(v, bytes))
    inits = [v for n, _, v in proto_fields(graph) if n == 5 and isinstance(v, bytes)]
    return _ops(graph, []), inits


@pytest.mark.parametrize("name", ["digits", "sentiment", "characters", "motions"])
def test_every_int8_operator_is_rewritten_and_the_weights_are_kept(name: str) -> None:
    data = builtin_models()[name].read_bytes()
    file = parse_model_file(data, name)
    for graph in (file.data, file.step_graph):
        ops, inits = _graph(graph)
        out = dequantize_graph(graph)
        if not INT8_OPS & set(ops):
            assert out is None  # nothing to rewrite: the graph as it is
            continue
        assert out is not None
        new_ops, new_inits = _graph(out)
        assert not INT8_OPS & set(new_ops), sorted(set(new_ops))
        assert new_inits == inits  # the int8 weights, byte for byte
        assert new_ops.count("LSTM") == ops.count("DynamicQuantizeLSTM")
        assert new_ops.count("MatMul") == ops.count("MatMulIntegerToFloat") + ops.count("MatMul")
        # everything but the graph (metadata with the spec and the step graph, opsets) as it was
        assert [f for f in proto_fields(out) if f[0] != 7] == [f for f in proto_fields(graph) if f[0] != 7]


def test_an_fp32_file_has_nothing_to_rewrite() -> None:
    file = parse_model_file(fixture_path("digits-lstm1").read_bytes(), "f")
    assert dequantize_graph(file.data) is None and dequantize_graph(file.step_graph) is None
    m = edgeinfer.load(fixture_path("digits-lstm1"), dequantize=True)
    x = np.sin(np.arange(3 * 5 * 28, dtype=np.float32)).reshape(3, 5, 28)
    np.testing.assert_array_equal(m.predict(x), edgeinfer.load(fixture_path("digits-lstm1")).predict(x))


@pytest.mark.parametrize("name", ["digits-gru2-int8-decomposed", "digits-rnn1-int8-decomposed",
                                  "digits-lstm1-int8-decomposed", "sentiment-gru1-readout-int8-decomposed"])
def test_a_decomposed_graph_dequantized_computes_the_same_products(name: str) -> None:
    """MatMulIntegerToFloat as MatMul of the dequantized operands: the graph still quantizes its
    activations with its own nodes, so only float rounding differs (7-bit weights: no saturation)."""
    path = fixture_path(name)
    int8, fp32 = edgeinfer.load(path), edgeinfer.load(path, dequantize=True)
    assert not int8.dequantize and fp32.dequantize
    if int8.spec.input.kind == "words":
        x = np.array([[2, 5, 7, 3, 9, 4], [3, 3, 8, 2, 0, 0]], np.int64)
    else:
        x = np.sin(np.arange(4 * 6 * 28, dtype=np.float32) * 0.37).reshape(4, 6, 28)
    np.testing.assert_allclose(fp32.predict(x), int8.predict(x), atol=1e-4, rtol=0)


def test_an_int8_lstm_dequantized_steps_within_the_tolerance() -> None:
    """The fixture's int8 LSTM (7-bit weights) and the built-in digits model: every step from the
    int8 run's own state within DEQUANTIZED_TOL; the built-in reads the ten sample digits alike."""
    path = fixture_path("characters-lstm-int8")
    int8, fp32 = edgeinfer.load(path), edgeinfer.load(path, dequantize=True)
    a = int8.stream()
    worst = 0.0
    for t in range(40):
        b = fp32.stream()
        b.restore(a.snapshot())
        x = 2 + (t * 5) % (len(int8.spec.input.vocab) - 1)  # type: ignore[union-attr]
        worst = max(worst, float(np.abs(a.step(x) - b.step(x)).max()))
    assert 0 < worst <= DEQUANTIZED_TOL, worst
    digits, digits_fp32 = edgeinfer.load("digits"), edgeinfer.load("digits", dequantize=True)
    samples = sorted((ROOT / "samples").glob("digit-*.pgm"))
    assert len(samples) == 10
    want = [a.label for a in digits.classify([str(p) for p in samples])]
    got = digits_fp32.classify([str(p) for p in samples])
    assert [a.label for a in got] == want == [p.name.split("-")[1] for p in samples]


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="dequantize must be True, False or None"):
        edgeinfer.load("digits", dequantize="yes")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cpu_fallback must be True or False"):
        edgeinfer.load("digits", cpu_fallback=0)  # type: ignore[arg-type]
    assert edgeinfer.load("digits").dequantize is False  # the CPU has the int8 kernels


def test_the_fused_form_of_a_file_with_both() -> None:
    """For providers without a Scan kernel: the If's fused branch becomes the graph; it equals the
    step graph stepped through every row (the same operator and weights), at any batch size."""
    import onnxruntime as ort

    model = edgeinfer.load("motions")
    data = model.path.read_bytes()
    fused = fused_form(data)
    assert fused is not None
    ops, inits = _graph(fused)
    assert "GRU" in ops and not {"If", "Scan", "MatMulIntegerToFloat"} & set(ops)
    assert inits == _graph(data)[1]  # the same initializers, nothing copied
    assert fused_form(builtin_models()["digits"].read_bytes()) is None  # one form: nothing to do
    session = ort.InferenceSession(fused, providers=["CPUExecutionProvider"])
    x = np.sin(np.arange(300 * 12 * 6, dtype=np.float32) * 0.1).reshape(300, 12, 6)  # batch 300 >= 64
    spec = model.spec
    normalized = spec.input.normalize(x.copy())  # type: ignore[union-attr]  # (in place)
    got = session.run([spec.io.output], {spec.io.seq_input: normalized, **spec.initial_state(300)})[0]
    stream = model.stream(300)
    for t in range(12):
        stream.step(x[:, t])
    np.testing.assert_allclose(got, stream.logits, atol=1e-5, rtol=0)
