"""ONNX export of a trained RecurrentNet as a sequence graph and a step graph, in one file.

The file's main graph is the sequence graph `x (B, T, F), h[, c] (L, B, H) -> y (B, C),
h_next[, c_next]`. The step graph `x (B, F), h[, c] -> y, h_next[, c_next]` is an ONNX model
stored (base64) in the metadata next to the spec, so one file carries everything. Weights the
two graphs share are stored once: in the step graph they are external data whose location is
the file itself (SELF_LOCATION) at the byte range of the sequence graph's initializer.
"""
from __future__ import annotations

import base64
import io
import json
import warnings

import onnx
import torch
from torch import nn

from edgeinfer.fileformat import check_self_ranges, checksums, initializer_ranges
from edgeinfer.spec import CHECKSUMS_KEY, SELF_LOCATION, SPEC_KEY, STEP_GRAPH_KEY, STEP_SHARED_KEY, ModelSpec
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


MIN_SHARED_BYTES = 256  # smaller weights are simply kept in the step graph


def _share_as_ranges(step: onnx.ModelProto, seq: onnx.ModelProto, ranges: dict[str, tuple[int, int]]
                     ) -> onnx.ModelProto:
    """A copy of `step` whose weights equal to a sequence-graph initializer become references to
    that initializer's bytes in the file: location SELF_LOCATION, its offset and length."""
    index = {(t.data_type, tuple(t.dims), t.raw_data): t.name
             for t in seq.graph.initializer if len(t.raw_data) >= MIN_SHARED_BYTES}
    out = onnx.ModelProto()
    out.CopyFrom(step)
    for t in out.graph.initializer:
        source = index.get((t.data_type, tuple(t.dims), t.raw_data))
        if source is None or not t.raw_data:
            continue
        offset, length = ranges[source]
        assert length == len(t.raw_data)
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (("location", SELF_LOCATION), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    return out


def bundle(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    """One model file: the sequence graph, with the step graph and the spec in its metadata.

    The step graph's weights that equal a sequence-graph initializer are stored once: the step
    graph refers to them as byte ranges of the file itself (the spec's format 4). A serialized
    ModelProto holds its graph before its metadata, so adding the metadata moves no weight; the
    ranges are computed from the serialized graph and checked again in the final bytes.
    """
    out = onnx.ModelProto()
    out.CopyFrom(seq)
    del out.metadata_props[:]
    out.producer_name = "edgeinfer-export"
    ranges = initializer_ranges(out.SerializeToString())
    light_step = _share_as_ranges(step, seq, ranges)
    step_bytes = light_step.SerializeToString()
    for key, value in (
        (SPEC_KEY, spec.to_json()),
        (STEP_GRAPH_KEY, base64.b64encode(step_bytes).decode("ascii")),
    ):
        prop = out.metadata_props.add()
        prop.key, prop.value = key, value
    prop = out.metadata_props.add()  # computed without the metadata, so adding it changes nothing
    prop.key, prop.value = CHECKSUMS_KEY, json.dumps(checksums(out.SerializeToString(), step_bytes), sort_keys=True)
    data = out.SerializeToString()
    final = initializer_ranges(data)
    if any(final[name] != ranges[name] for name in ranges):
        raise RuntimeError("the metadata moved the weights; the step graph's byte ranges would be wrong")
    check_self_ranges(step_bytes, data, "export")
    onnx.checker.check_model(out)
    return out


def unbundle(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The sequence and step graphs of a bundled file, each whole and without metadata (either
    layout: format 4's byte ranges of the file, or older files' map of shared initializers)."""
    props = {p.key: p.value for p in model.metadata_props}
    data = model.SerializeToString()
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
        elif t.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            if info.get("location") != SELF_LOCATION:
                raise ValueError(f"step initializer {t.name!r} refers to {info.get('location')!r}")
            offset, length = int(info["offset"]), int(info["length"])
            del t.external_data[:]
            t.data_location = onnx.TensorProto.DEFAULT
            t.raw_data = data[offset : offset + length]
    return seq, step

