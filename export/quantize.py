"""int8 dynamic quantization of exported graphs (onnxruntime `quantize_dynamic`)."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

METHOD = "onnxruntime quantize_dynamic: int8 weights (per-tensor, symmetric), uint8 activations quantized at run time"


def quantize(model: onnx.ModelProto, cell: str) -> onnx.ModelProto:
    """Quantize one graph's MatMul/Gemm/LSTM/Gather weights to int8.

    onnxruntime has no quantized GRU or RNN kernel, so those ops stay fp32 (their head and
    input layers are quantized); an LSTM must become DynamicQuantizeLSTM, or this fails.
    """
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic warns about pre-processing on the root logger
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=False)
        finally:
            root.setLevel(level)
        out = onnx.load(dst)
    ops = {n.op_type for n in out.graph.node}
    if cell == "lstm" and "DynamicQuantizeLSTM" not in ops:
        raise RuntimeError("quantization left the LSTM in fp32 (no DynamicQuantizeLSTM in the result)")
    out.ir_version = model.ir_version
    return out
