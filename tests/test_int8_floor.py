"""benchmarks/int8_floor.py: its floor graph multiplies what an LSTM multiplies, exactly."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from benchmarks import int8_floor


def test_products_are_the_lstm_layers_products() -> None:
    from train.models import NetConfig, build

    net = build(NetConfig("lstm", 28, 128, 1, 10))
    assert int8_floor.products(net, 28) == [(28 * 256, 28, 512, 28)]
    two = build(NetConfig("lstm", 64, 512, 2, 67))
    assert int8_floor.products(two, 100) == [(100 * 256, 64, 2048, 100), (100 * 256, 512, 2048, 100)]


def test_floor_graph_computes_uint8_by_int8_products() -> None:
    data = int8_floor.int8_products_graph(rows=6, inputs=5, gates=8, hidden=4, steps=3)
    model = onnx.load_from_string(data)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert [n.op_type for n in model.graph.node] == ["MatMulInteger"] * 4
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    h = rng.integers(0, 256, (256, 4), dtype=np.uint8)
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x, "h": h})
    assert np.array_equal(got[0], x.astype(np.int32) @ weights["w_ih"].astype(np.int32))
    for out in got[1:]:
        assert np.array_equal(out, h.astype(np.int32) @ weights["w_hh"].astype(np.int32))
