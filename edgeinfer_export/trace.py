"""Tracing a streaming module into an ONNX graph with the spec's names (the TorchScript exporter).

The TorchScript exporter (`dynamo=False`) keeps one dynamic `RNN`/`LSTM`/`GRU` operator per
recurrent module, with dynamic batch and time axes; every export is checked for them.
"""
from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from edgeinfer.spec import ModelSpec
from edgeinfer_export.bundle import IR_VERSION, OPSET


def trace_graph(module: nn.Module, example: tuple[torch.Tensor, ...], spec: ModelSpec, step: bool) -> onnx.ModelProto:
    """Trace `module` with the TorchScript exporter; dynamic batch (and time) axes, named I/O."""
    state_in = [s.name for s in spec.state]
    state_out = [s.output for s in spec.state]
    x_name = spec.io.step_input if step else spec.io.seq_input
    axes: dict[str, dict[int, str]] = {x_name: {0: "batch"} if step else {0: "batch", 1: "time"}}
    extra = [spec.io.lengths] if spec.io.lengths and not step else []
    axes.update({n: {0: "batch"} for n in extra})
    axes.update({n: {1: "batch"} for n in state_in + state_out})
    axes[spec.io.output] = {0: "batch"}
    probs = [spec.io.step_probabilities] if step and spec.io.step_probabilities else []
    axes.update({n: {0: "batch"} for n in probs})
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), example, buf, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]  # a BytesIO
            input_names=[x_name, *extra, *state_in], output_names=[spec.io.output, *state_out, *probs],
            dynamic_axes=axes,
        )
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = min(model.ir_version, IR_VERSION)
    check_dims(model, x_name, step)
    return model


def check_dims(model: onnx.ModelProto, x_name: str, step: bool) -> None:
    """Every export is checked: batch (and time) of the input must be symbolic, not fixed."""
    x = next(i for i in model.graph.input if i.name == x_name)
    dims = x.type.tensor_type.shape.dim
    dynamic = [0] if step else [0, 1]
    fixed = [d for d in dynamic if not dims[d].dim_param]
    if fixed:
        raise RuntimeError(f"export fixed dimension(s) {fixed} of {x_name}; expected dynamic batch/time")


__all__ = ["check_dims", "trace_graph"]
