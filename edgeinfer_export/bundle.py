"""One model file: the sequence graph, with the step graph and the spec in its metadata.

Weights the two graphs share are stored once: in the step graph they are external data whose
location is the file itself (SELF_LOCATION) at the byte range of the sequence graph's initializer
(docs/format.md, section 4).
"""
from __future__ import annotations

import base64
import json

import onnx

from edgeinfer.fileformat import check_self_ranges, checksums, initializer_ranges
from edgeinfer.spec import CHECKSUMS_KEY, SELF_LOCATION, SPEC_KEY, STEP_GRAPH_KEY, STEP_SHARED_KEY, ModelSpec

OPSET = 17  # pinned: every graph is written with this opset
IR_VERSION = 8  # what onnxruntime >= 1.14 reads

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
    spec_json = spec.to_json()
    for key, value in (
        (SPEC_KEY, spec_json),
        (STEP_GRAPH_KEY, base64.b64encode(step_bytes).decode("ascii")),
    ):
        prop = out.metadata_props.add()
        prop.key, prop.value = key, value
    prop = out.metadata_props.add()  # computed without the metadata, so adding it changes nothing
    prop.key, prop.value = CHECKSUMS_KEY, json.dumps(checksums(out.SerializeToString(), step_bytes, spec_json),
                                                sort_keys=True)
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

