"""ONNX export of a trained RecurrentNet as a sequence graph and a step graph, in one file.

The file's main graph is the sequence graph `x (B, T, F), h[, c] (L, B, H) -> y (B, C),
h_next[, c_next]`. The step graph `x (B, F), h[, c] -> y, h_next[, c_next]` is an ONNX model
stored (base64) in the metadata next to the spec, so one file carries everything. Weights the
two graphs share are stored once: in the step graph they are marked as external data, and the
metadata maps each to the sequence graph's initializer that holds the bytes.
"""
from __future__ import annotations

import base64
import io
import json
import warnings

import onnx
import torch
from torch import nn

from edgeinfer.spec import SPEC_KEY, STEP_GRAPH_KEY, STEP_SHARED_KEY, ModelSpec
from train.models import RecurrentNet

OPSET = 17  # pinned: every graph is written with this opset
IR_VERSION = 8  # what onnxruntime >= 1.14 reads


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


SHARED_LOCATION = "edgeinfer-shared"  # external-data location of weights kept in the main graph
MIN_SHARED_BYTES = 256


def share_weights(seq: onnx.ModelProto, step: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """A copy of `step` whose weights equal to a sequence-graph initializer become references.

    Returns the new step graph and {step initializer name: sequence initializer name}.
    """
    index = {(t.data_type, tuple(t.dims), t.raw_data): t.name
             for t in seq.graph.initializer if len(t.raw_data) >= MIN_SHARED_BYTES}
    out = onnx.ModelProto()
    out.CopyFrom(step)
    shared: dict[str, str] = {}
    for t in out.graph.initializer:
        source = index.get((t.data_type, tuple(t.dims), t.raw_data))
        if source is None or not t.raw_data:
            continue
        shared[t.name] = source
        size = len(t.raw_data)
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (("location", SHARED_LOCATION), ("offset", "0"), ("length", str(size))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    return out, shared


def bundle(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    """One model file: the sequence graph, with the step graph and the spec in its metadata."""
    out = onnx.ModelProto()
    out.CopyFrom(seq)
    del out.metadata_props[:]
    light_step, shared = share_weights(seq, step)
    for key, value in (
        (SPEC_KEY, spec.to_json()),
        (STEP_GRAPH_KEY, base64.b64encode(light_step.SerializeToString()).decode("ascii")),
        (STEP_SHARED_KEY, json.dumps(shared, sort_keys=True)),
    ):
        prop = out.metadata_props.add()
        prop.key, prop.value = key, value
    out.producer_name = "edgeinfer-export"
    onnx.checker.check_model(out)
    return out


def unbundle(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The sequence and step graphs of a bundled file, each whole and without metadata."""
    props = {p.key: p.value for p in model.metadata_props}
    seq = onnx.ModelProto()
    seq.CopyFrom(model)
    del seq.metadata_props[:]
    step = onnx.load_from_string(base64.b64decode(props[STEP_GRAPH_KEY]))
    shared = json.loads(props.get(STEP_SHARED_KEY, "{}"))
    weights = {t.name: t for t in seq.graph.initializer}
    for t in step.graph.initializer:
        if t.name in shared:
            name = t.name
            t.CopyFrom(weights[shared[name]])
            t.name = name
    return seq, step

