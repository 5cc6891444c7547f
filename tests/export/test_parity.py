"""Parity: torch vs sequence graph vs step graph, every cell type, 1 and 2 layers, B = 1 and 7."""
from __future__ import annotations

import base64

import numpy as np
import onnx
import pytest

from edgeinfer import Model
from edgeinfer.spec import FORMAT_VERSION, SELF_LOCATION, SPEC_KEY, STEP_GRAPH_KEY, STEP_SHARED_KEY, ModelSpec
from edgeinfer_export.bundle import unbundle
from edgeinfer_export.quantize import quantize
from export.graphs import export_graphs
from export.parity import FP32_TOLERANCE, parity_error
from tests.nets import tiny_net, tiny_spec

CASES = [(cell, layers) for cell in ("rnn", "lstm", "gru") for layers in (1, 2)]


@pytest.mark.parametrize("cell,layers", CASES)
def test_step_graph_equals_sequence_graph_and_torch(cell: str, layers: int) -> None:
    net = tiny_net(cell, layers, hidden=24)
    spec = tiny_spec(net)
    seq, step = export_graphs(net, spec)
    assert parity_error(net, seq, step, spec, steps=28, batches=(1, 7)) <= FP32_TOLERANCE


@pytest.mark.parametrize("cell,layers", CASES)
def test_runtime_stream_equals_predict(make_model, cell: str, layers: int) -> None:
    model = Model(make_model(cell, layers))
    x = np.random.default_rng(1).standard_normal((7, 28, 28)).astype(np.float32)
    whole = model.predict(x)
    stream = model.stream(batch=7)
    for t in range(28):
        stepped = stream.step(x[:, t])
    assert np.abs(whole - stepped).max() <= 1e-6
    assert stream.steps == 28
    # a chunk fed at once, then steps, equals stepping all the way
    chunked = model.stream(batch=7)
    chunked.feed(x[:, :10])
    for t in range(10, 28):
        out = chunked.step(x[:, t])
    assert np.abs(out - whole).max() <= 1e-6


def test_bundle_holds_both_graphs_and_spec(make_model) -> None:
    model = onnx.load(make_model("gru", 2))
    props = {p.key: p.value for p in model.metadata_props}
    spec = ModelSpec.from_json(props[SPEC_KEY])
    assert (spec.cell, spec.layers, [s.name for s in spec.state]) == ("gru", 2, ["h"])
    assert STEP_SHARED_KEY not in props and spec.format_version == FORMAT_VERSION
    light = onnx.load_from_string(base64.b64decode(props[STEP_GRAPH_KEY]))
    refs = {t.name: {e.key: e.value for e in t.external_data} for t in light.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL}
    assert len(refs) >= 3  # the two GRU layers' weights and the head are stored once
    assert len(props[STEP_GRAPH_KEY]) < 4000  # so the step graph is only its structure
    data = model.SerializeToString()
    raws = {t.raw_data for t in model.graph.initializer}
    for ref in refs.values():  # each a byte range of the file: a sequence initializer's raw bytes
        assert ref["location"] == SELF_LOCATION
        assert data[int(ref["offset"]) : int(ref["offset"]) + int(ref["length"])] in raws
    seq, step = unbundle(model)
    assert {t.name for t in step.graph.initializer if t.raw_data} >= set(refs)  # whole again
    assert [i.name for i in seq.graph.input] == ["x", "h"]
    assert [o.name for o in step.graph.output] == ["y", "h_next", "p"]  # p: softmax of y, in the graph
    assert [o.name for o in seq.graph.output] == ["y", "h_next"]
    x_dims = [d.dim_param or d.dim_value for d in seq.graph.input[0].type.tensor_type.shape.dim]
    assert x_dims == ["batch", "time", 28]
    assert seq.opset_import[0].version == 17


def test_quantized_lstm_uses_dynamic_quantize_lstm() -> None:
    net = tiny_net("lstm", 2, hidden=32)
    _, step = export_graphs(net, tiny_spec(net))
    q = quantize(step, "lstm")
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("DynamicQuantizeLSTM") == 2 and "LSTM" not in ops
    assert len(q.SerializeToString()) < 0.5 * len(step.SerializeToString())


def test_step_graph_softmax_output_and_files_without_it(tmp_path) -> None:
    """Stream.step returns the graph's own softmax output; a file whose step graph lacks it (made
    before the output existed) gives the same probabilities through the numpy softmax."""
    from dataclasses import replace

    from edgeinfer.atomic import write_atomic
    from edgeinfer.spec import GraphIO
    from edgeinfer_export.bundle import bundle

    net = tiny_net("lstm", 2, hidden=16)
    spec = tiny_spec(net)
    seq, step = export_graphs(net, spec)
    write_atomic(tmp_path / "new.onnx", bundle(seq, step, spec).SerializeToString())
    del step.graph.output[-1]  # the older layout: y and the state only
    old_spec = replace(spec, io=GraphIO())
    write_atomic(tmp_path / "old.onnx", bundle(seq, step, old_spec).SerializeToString())
    x = np.random.default_rng(3).standard_normal((28, 28)).astype(np.float32)
    new, old = Model(tmp_path / "new.onnx").stream(), Model(tmp_path / "old.onnx").stream()
    assert new._p is not None and old._p is None
    for t in range(28):
        p_new, p_old = new.step(x[t]), old.step(x[t])
        logits = new.logits[0].astype(np.float64)
        want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert np.abs(p_new - want).max() <= 1e-6 and np.abs(p_old - want).max() <= 1e-6
        assert p_new.shape == (10,) and abs(float(p_new.sum()) - 1) <= 1e-5
    first = new.step(x[0])
    new.step(x[1])
    assert not np.shares_memory(first, new._p)  # a returned row is the caller's to keep
