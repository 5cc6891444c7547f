"""ONNX export of a trained RecurrentNet as a sequence graph and a step graph, in one file.

The file's main graph is the sequence graph `x (B, T, F), h[, c] (L, B, H) -> y (B, C),
h_next[, c_next]`. The step graph `x (B, F), h[, c] -> y, h_next[, c_next]` is an ONNX model
stored (base64) in the metadata next to the spec, so one file carries everything. Weights the
two graphs share are stored once: in the step graph they are external data whose location is
the file itself (SELF_LOCATION) at the byte range of the sequence graph's initializer.
"""
from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from edgeinfer.spec import ModelSpec
from edgeinfer_export.bundle import IR_VERSION, OPSET
from train.models import RecurrentNet


class SequenceGraph(nn.Module):
    """x (B, T, F), state... -> y (B, C), next state..."""

    def __init__(self, net: RecurrentNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net(x, list(state))
        return (y, *new)


class TokenSequenceGraph(SequenceGraph):
    """x (B, T) int64, lengths (B,) int64, state... -> y (B, C) after each row's last token, state there."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net(x, list(state), lengths, exact_state=True)
        return (y, *new)


class StepGraph(SequenceGraph):
    """x (B, F) or token ids (B,), state... -> y (B, C), next state..., p (B, C): one time step.

    p = softmax(y) is computed in the graph, so a stream's step needs no numpy work after it.
    """

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net.step(x, list(state))
        return (y, *new, torch.softmax(y, dim=-1))


def _export(module: nn.Module, example: tuple[torch.Tensor, ...], spec: ModelSpec, step: bool) -> onnx.ModelProto:
    """Trace `module` with the TorchScript exporter; dynamic batch (and time) axes, named I/O."""
    state_in = [s.name for s in spec.state]
    state_out = [s.output for s in spec.state]
    x_name = spec.io.step_input if step else spec.io.seq_input
    axes: dict[str, dict[int, str]] = {x_name: {0: "batch"} if step else {0: "batch", 1: "time"}}
    extra = [spec.io.lengths] if spec.io.lengths and not step else []
    axes.update({n: {0: "batch"} for n in extra})
    axes.update({n: {1: "batch"} for n in state_in + state_out})
    axes[spec.io.output] = {0: "batch"}
    probs = [spec.io.step_probabilities] if step else []
    axes.update({n: {0: "batch"} for n in probs})
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), example, buf, dynamo=False, opset_version=OPSET,
            input_names=[x_name, *extra, *state_in], output_names=[spec.io.output, *state_out, *probs],
            dynamic_axes=axes,
        )
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = min(model.ir_version, IR_VERSION)
    _check_dims(model, x_name, step)
    return model


def _check_dims(model: onnx.ModelProto, x_name: str, step: bool) -> None:
    """Every export is checked: batch (and time) of the input must be symbolic, not fixed."""
    x = next(i for i in model.graph.input if i.name == x_name)
    dims = x.type.tensor_type.shape.dim
    dynamic = [0] if step else [0, 1]
    fixed = [d for d in dynamic if not dims[d].dim_param]
    if fixed:
        raise RuntimeError(f"export fixed dimension(s) {fixed} of {x_name}; expected dynamic batch/time")


def export_graphs(net: RecurrentNet, spec: ModelSpec) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Export the sequence and the step graph of `net`, both with the names the spec gives."""
    if not spec.io.step_probabilities:
        raise ValueError("the spec names no step_probabilities output; expected GraphIO(step_probabilities=...)")
    c = net.config
    state = tuple(torch.from_numpy(s.initial_value(2)) for s in spec.state)
    if c.vocab:
        ids = torch.ones(2, 3, dtype=torch.int64)
        seq = _export(TokenSequenceGraph(net), (ids, torch.tensor([3, 2]), *state), spec, step=False)
        step = _export(StepGraph(net), (ids[:, 0], *state), spec, step=True)
    else:
        seq = _export(SequenceGraph(net), (torch.zeros(2, 3, c.input_size), *state), spec, step=False)
        step = _export(StepGraph(net), (torch.zeros(2, c.input_size), *state), spec, step=True)
    return seq, step
