"""The edgeinfer file format, read without the onnx package: a minimal protobuf walk.

An edgeinfer file is an ONNX ModelProto whose main graph is the sequence graph and whose
`metadata_props` (field 14; entries hold key = 1, value = 2) carry the spec (JSON), the step
graph (a base64 ONNX model) and the map of the step graph's shared weights onto the sequence
graph's initializers. Fields are read wherever they stand; a file that is not a protobuf, or
whose fields run past its end, is reported here, before onnxruntime sees it.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import numpy as np

from edgeinfer.errors import ModelFileError, SpecError
from edgeinfer.spec import SPEC_KEY, STEP_GRAPH_KEY, STEP_SHARED_KEY, ModelSpec

_IR_VERSION_FIELD = 1
_GRAPH_FIELD = 7
_METADATA_FIELD = 14
_INITIALIZER_FIELD = 5  # GraphProto.initializer
# TensorProto fields
_DIMS, _DATA_TYPE, _NAME, _RAW_DATA = 1, 2, 8, 9
# TensorProto data_type -> numpy dtype, for the types exporters and quantizers write
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}

Field = tuple[int, int, "bytes | int"]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise EOFError
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> list[Field]:
    """Top-level (field number, wire type, value) triples; EOFError when truncated."""
    out: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise EOFError
            out.append((number, wire, data[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise EOFError
            out.append((number, wire, int.from_bytes(data[pos : pos + width], "little")))
            pos += width
        else:
            raise ValueError(f"wire type {wire}")
    return out


def _top_fields(data: bytes, source: str) -> list[Field]:
    """The ModelProto's fields, checked to hold an IR version and a graph."""
    if not data:
        raise ModelFileError(f"{source}: empty file; expected an ONNX model")
    try:
        top = _fields(data)
    except EOFError:
        if data[0] == 0x08:  # serializers write ir_version (field 1) first: an ONNX file cut short
            raise ModelFileError(f"{source}: truncated ONNX file; copy or export it again") from None
        raise ModelFileError(f"{source}: not an ONNX model file") from None
    except ValueError:
        raise ModelFileError(f"{source}: not an ONNX model file") from None
    numbers = {(f, w) for f, w, _ in top}
    if (_IR_VERSION_FIELD, 0) not in numbers:
        raise ModelFileError(f"{source}: not an ONNX model file (no IR version)")
    if (_GRAPH_FIELD, 2) not in numbers:
        raise ModelFileError(f"{source}: not an ONNX model file (no graph)")
    return top


def read_metadata(data: bytes, source: str) -> dict[str, str]:
    """The `metadata_props` of a serialized ModelProto, as a dict."""
    meta: dict[str, str] = {}
    for number, wire, value in _top_fields(data, source):
        if number != _METADATA_FIELD or wire != 2 or not isinstance(value, bytes):
            continue
        try:
            entry = {f: v for f, w, v in _fields(value) if w == 2 and isinstance(v, bytes)}
            meta[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
        except (EOFError, ValueError, UnicodeDecodeError):
            raise ModelFileError(f"{source}: corrupt metadata in ONNX file") from None
    return meta


def _tensor(value: bytes, names: set[str]) -> tuple[str, np.ndarray | None]:
    """A TensorProto's name, and its array when the name is in `names` (raw_data tensors only);
    ValueError when a wanted tensor is inconsistent."""
    fields = _fields(value)
    name = next((v.decode("utf-8") for f, _, v in fields if f == _NAME and isinstance(v, bytes)), "")
    if name not in names:
        return name, None
    dims: list[int] = []
    dtype, raw = 0, b""
    for f, _wire, v in fields:
        if f == _DIMS and isinstance(v, int):
            dims.append(v)
        elif f == _DIMS and isinstance(v, bytes):  # packed dims
            pos = 0
            while pos < len(v):
                d, pos = _varint(v, pos)
                dims.append(d)
        elif f == _DATA_TYPE and isinstance(v, int):
            dtype = v
        elif f == _RAW_DATA and isinstance(v, bytes):
            raw = v
    if dtype not in _DTYPES:
        raise ValueError(f"data type {dtype}")
    itemsize = np.dtype(_DTYPES[dtype]).itemsize
    elements = float(np.prod(dims, dtype=np.float64))
    if any(d >= 1 << 40 for d in dims) or elements * itemsize != len(raw):
        raise ValueError("dims do not match the data")
    return name, np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(dims)


def read_initializers(data: bytes, names: set[str], source: str) -> dict[str, np.ndarray]:
    """The named initializers (raw_data tensors) of a serialized ModelProto's main graph."""
    found: dict[str, np.ndarray] = {}
    try:
        graph = next(v for f, w, v in _top_fields(data, source) if f == _GRAPH_FIELD and isinstance(v, bytes))
        for number, _, value in _fields(graph):
            if number == _INITIALIZER_FIELD and isinstance(value, bytes):
                name, arr = _tensor(value, names)
                if arr is not None:
                    found[name] = arr
    except (EOFError, ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{source}: corrupt weights in ONNX file; export it again") from None
    missing = names - set(found)
    if missing:
        raise ModelFileError(f"{source}: weights {sorted(missing)[:3]} missing from the file; export it again")
    return found


# Where TensorProtos can stand in an ONNX model: message kind -> {field number: kind of its value}.
_SCHEMA: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto: initialization, algorithm
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # nodes, initializers, sparse initializers
    "function": {7: "node"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},  # values, indices
}
_EXTERNAL_DATA, _DATA_LOCATION = 13, 14  # TensorProto fields
MAX_GRAPH_DEPTH = 16  # subgraphs (If, Loop, Scan bodies) nested deeper than this are refused


def external_tensors(data: bytes, source: str) -> list[tuple[str, bool]]:
    """Every tensor of a serialized model that refers to external data, anywhere in it (initializers,
    node attributes, subgraphs, functions): (name, True when it is a main-graph initializer)."""
    found: list[tuple[str, bool]] = []

    def walk(message: bytes, kind: str, depth: int, top: bool) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise ModelFileError(f"{source}: graphs nested deeper than {MAX_GRAPH_DEPTH} levels; refusing the file")
        fields = _fields(message)
        if kind == "tensor":
            if any(f == _EXTERNAL_DATA or (f == _DATA_LOCATION and v == 1) for f, _, v in fields):
                name = next((v for f, _, v in fields if f == _NAME and isinstance(v, bytes)), b"")
                found.append((name.decode("utf-8", "replace"), top))
            return
        for number, wire, value in fields:
            child = _SCHEMA[kind].get(number)
            if child is not None and wire == 2 and isinstance(value, bytes):
                initializer = kind == "graph" and number == 5 and depth == 1
                walk(value, child, depth + (child == "graph"), initializer)

    try:
        walk(data, "model", 0, False)
    except (EOFError, ValueError):
        raise ModelFileError(f"{source}: corrupt ONNX file; export it again") from None
    return found


def check_external_data(data: bytes, allowed: set[str], source: str) -> None:
    """Refuse a model that would make onnxruntime read a file: the only external tensors allowed
    are main-graph initializers named in `allowed` (those the runtime supplies itself)."""
    for name, initializer in external_tensors(data, source):
        if not (initializer and name in allowed):
            raise ModelFileError(f"{source}: tensor {name[:80]!r} refers to external data (a file "
                                 "onnxruntime would read); an edgeinfer file carries every weight inside "
                                 "it, so this file is refused; export it again")


@dataclass(frozen=True)
class ModelFile:
    """A parsed edgeinfer file: its bytes, spec, step graph and the step graph's shared weights."""

    source: str  # how the user named the file, for messages
    data: bytes  # the whole file: the sequence graph with its metadata
    spec: ModelSpec
    step_graph: bytes  # a serialized ONNX model
    step_shared: dict[str, str]  # step initializer name -> sequence initializer holding its bytes

    def shared_weights(self) -> dict[str, np.ndarray]:
        """The step graph's external weights, read from the sequence graph's initializers."""
        if not self.step_shared:
            return {}
        weights = read_initializers(self.data, set(self.step_shared.values()), self.source)
        return {name: weights[src] for name, src in self.step_shared.items()}


def parse_model_file(data: bytes, source: str) -> ModelFile:
    """Read an edgeinfer file's metadata: spec, step graph and shared-weight map, all validated."""
    meta = read_metadata(data, source)
    if SPEC_KEY not in meta:
        raise SpecError(f"{source}: ONNX file without an edgeinfer spec; export it with `python -m export`")
    try:
        spec = ModelSpec.from_json(meta[SPEC_KEY])
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    try:
        step = base64.b64decode(meta.get(STEP_GRAPH_KEY, ""), validate=True)
    except (binascii.Error, ValueError):
        raise SpecError(f"{source}: the embedded step graph is corrupt; export the model again") from None
    if not step:
        raise SpecError(f"{source}: no step graph in the file; export it with `python -m export`")
    check_external_data(data, set(), source)
    try:
        shared = json.loads(meta.get(STEP_SHARED_KEY, "{}"))
    except (json.JSONDecodeError, RecursionError):
        shared = None
    if not isinstance(shared, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in shared.items()):
        raise SpecError(f"{source}: corrupt {STEP_SHARED_KEY} metadata; export the model again")
    step_source = f"{source} (step graph)"
    _top_fields(step, step_source)
    check_external_data(step, set(shared), step_source)
    return ModelFile(source, data, spec, step, shared)


__all__ = ["ModelFile", "check_external_data", "external_tensors", "parse_model_file", "read_initializers",
           "read_metadata"]
