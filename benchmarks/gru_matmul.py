"""A GRU step as the ONNX GRU operator or as MatMul nodes, fp32 and int8 (quantize_dynamic).

    .venv/bin/python benchmarks/gru_matmul.py

onnxruntime has no quantized GRU kernel, so `quantize_dynamic` leaves the GRU operator fp32;
written as MatMul nodes the same cell becomes DynamicQuantizeMatMul. This measures whether that
pays: median latency per call at batch 1 and 1,024 streams, one and two threads, and the max abs
difference of the next state from the GRU operator's (random weights, a 128→128 GRU).
"""
from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn

E, H = 128, 128


class OperatorStep(nn.Module):
    """x (B, E), h (1, B, H) -> h_next through nn.GRU (exported as the ONNX GRU operator)."""

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        self.gru = gru

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.gru(x[:, None], h)[1]


class MatMulStep(nn.Module):
    """The same cell written out: two Linear layers (MatMul + Add) and the gate arithmetic."""

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        self.ih, self.hh = nn.Linear(E, 3 * H), nn.Linear(H, 3 * H)
        self.ih.weight.data, self.ih.bias.data = gru.weight_ih_l0.data.clone(), gru.bias_ih_l0.data.clone()
        self.hh.weight.data, self.hh.bias.data = gru.weight_hh_l0.data.clone(), gru.bias_hh_l0.data.clone()

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        h0 = h[0]
        ir, iz, i_n = self.ih(x).chunk(3, 1)
        hr, hz, h_n = self.hh(h0).chunk(3, 1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(i_n + r * h_n)
        return ((1 - z) * n + z * h0)[None]


def export(module: nn.Module) -> bytes:
    """TorchScript export with a dynamic batch."""
    buf = io.BytesIO()
    torch.onnx.export(module, (torch.zeros(2, E), torch.zeros(1, 2, H)), buf, dynamo=False, opset_version=17,
                      input_names=["x", "h"], output_names=["h_next"],
                      dynamic_axes={"x": {0: "b"}, "h": {1: "b"}, "h_next": {1: "b"}})
    return buf.getvalue()


def int8(model: bytes) -> bytes:
    """quantize_dynamic, weights QInt8."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "m.onnx", Path(tmp) / "q.onnx"
        src.write_bytes(model)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return dst.read_bytes()


def main() -> None:
    """Print one row per (batch, threads, graph)."""
    torch.manual_seed(0)
    gru = nn.GRU(E, H, batch_first=True)
    graphs = {"GRU operator fp32": export(OperatorStep(gru)), "MatMul fp32": export(MatMulStep(gru))}
    graphs["GRU operator int8"] = int8(graphs["GRU operator fp32"])
    graphs["MatMul int8"] = int8(graphs["MatMul fp32"])
    rng = np.random.default_rng(0)
    print("| streams | threads | graph | median µs per call | max abs diff |")
    print("|---|---|---|---|---|")
    for batch, threads in ((1, 1), (1024, 1), (1024, 2)):
        x = rng.standard_normal((batch, E)).astype(np.float32)
        h = 0.5 * rng.standard_normal((1, batch, H)).astype(np.float32)
        ref = None
        for name, model in graphs.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            for _ in range(20):
                out = session.run(None, {"x": x, "h": h})[0]
            times = []
            for _ in range(2000 if batch == 1 else 100):
                t0 = time.perf_counter_ns()
                session.run(None, {"x": x, "h": h})
                times.append(time.perf_counter_ns() - t0)
            ref = out if ref is None else ref
            print(f"| {batch} | {threads} | {name} | {np.median(times) / 1000:.1f} | {np.abs(out - ref).max():.1e} |")


if __name__ == "__main__":
    main()
