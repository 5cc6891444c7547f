"""int8 dynamic quantization of exported graphs (onnxruntime `quantize_dynamic`)."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from edgeinfer.spec import GraphIO

# 7-bit weights: onnxruntime's uint8 x int8 kernels on x86 CPUs without VNNI (AVX2's vpmaddubsw) add
# pairs of products in int16 with saturation (255 x 127 x 2 overflows; 255 x 64 x 2 does not), so
# full-range int8 weights give other answers there than on VNNI CPUs and in wasm (measured: the
# digits LSTM's state 0.1 apart after one step)
METHOD = ("onnxruntime quantize_dynamic: 7-bit int8 weights (per-tensor, symmetric, whose products never "
          "saturate), uint8 activations quantized at run time")


def quantize(model: onnx.ModelProto, cell: str, output: str = GraphIO.output) -> onnx.ModelProto:
    """Quantize one graph's LSTM, Gather (embedding) and input-layer weights to int8.

    onnxruntime has no quantized GRU or RNN kernel, so those ops stay fp32; an LSTM must become
    DynamicQuantizeLSTM, or this fails. The output head (the nodes writing the logits, the output
    named `output`) stays fp32: it is tiny, and dynamic quantization picks activation scales over
    the whole batch, which would make a row's result depend on the rows beside it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic warns about pre-processing on the root logger
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=False, reduce_range=True,
                             nodes_to_exclude=head_nodes(model, output))
        finally:
            root.setLevel(level)
        out = onnx.load(dst)
    ops = {n.op_type for n in out.graph.node}
    if cell == "lstm" and "DynamicQuantizeLSTM" not in ops:
        raise RuntimeError("quantization left the LSTM in fp32 (no DynamicQuantizeLSTM in the result)")
    out.ir_version = model.ir_version
    return out


HEAD_SCOPES = ("/head/", "/ngram_head/", "/short_head/")  # the exporter's scope names of the classifier heads


def head_nodes(model: onnx.ModelProto, output: str = GraphIO.output) -> list[str]:
    """Names of the classifier head's nodes: those writing the logits (the output named `output`), and those
    of the head modules (a readout adds its n-gram logits after the head's Gemm).

    The quantizer first splits a Gemm into `NAME_MatMul` + `NAME_Add`, so those names are listed too.
    """
    if output not in {o.name for o in model.graph.output}:
        raise ValueError(f"the graph has no output named {output!r}")
    names = [n.name for n in model.graph.node
             if n.name and (output in n.output or any(scope in n.name for scope in HEAD_SCOPES))]
    return names + [f"{n}_MatMul" for n in names]
