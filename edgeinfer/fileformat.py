"""The edgeinfer file format, read without the onnx package: a minimal protobuf walk.

An edgeinfer file is an ONNX ModelProto whose main graph is the sequence graph and whose
`metadata_props` (field 14; entries hold key = 1, value = 2) carry the spec (JSON), the step
graph (a base64 ONNX model whose shared weights are byte ranges of the file itself) and the
checksums. One walker (`proto_spans`) reads every message, fields wherever they stand; a file
that is not a protobuf, or whose fields run past its end, is reported here, before onnxruntime
sees it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgeinfer.errors import ModelFileError, SpecError
from edgeinfer.spec import (
    CHECKSUMS_KEY,
    FORMAT_VERSION,
    RELAYOUT_COMMAND,
    SELF_LOCATION,
    SELF_RANGES_FORMAT,
    SPEC_CHECKSUM_FORMAT,
    SPEC_KEY,
    STEP_GRAPH_KEY,
    ModelSpec,
)

_IR_VERSION_FIELD = 1
_GRAPH_FIELD = 7
_METADATA_FIELD = 14
_INITIALIZER_FIELD = 5  # GraphProto.initializer
# TensorProto fields
_DIMS, _DATA_TYPE, _NAME, _RAW_DATA = 1, 2, 8, 9
# TensorProto data_type -> numpy dtype, for the types exporters and quantizers write
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}

Field = tuple[int, int, "bytes | int"]


def _varint(data: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """The varint at `pos` and the position after it; EOFError when it runs past `end` (default: the
    end of `data`), ValueError when it is longer than ten bytes."""
    stop = len(data) if end is None else end
    value, shift = 0, 0
    while True:
        if pos >= stop:
            raise EOFError
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


MAX_FIELDS_PER_MESSAGE = 100_000  # the built-ins' largest message has 527 fields
MAX_FIELDS_TOTAL = 1_000_000  # fields walked in a whole file (the built-ins: at most 4,420)
TOO_MANY_FIELDS = (f"more protobuf fields than any model needs (over {MAX_FIELDS_PER_MESSAGE:,} in one message or "
                   f"{MAX_FIELDS_TOTAL:,} in the file); not an edgeinfer model, refusing the file")


class _TooManyFields(ValueError):
    """A message with more fields than MAX_FIELDS_PER_MESSAGE (or a file over MAX_FIELDS_TOTAL)."""


Span = tuple[int, int, int, int, int]  # field number, wire type, key start, value start, value end


def proto_spans(data: bytes, begin: int = 0, end: int | None = None) -> Iterator[Span]:
    """The one protobuf walker: the top-level fields of the message data[begin:end] (default: all of
    `data`), each as (field number, wire type, where its key starts, where its value starts, where
    its value ends), offsets into `data`; a varint field's value is its encoded bytes.

    EOFError when a field runs past the message's end; ValueError for bytes that cannot be a
    message (field number 0, wire types 3, 4, 6 and 7, a varint over ten bytes); _TooManyFields
    (a ValueError) past MAX_FIELDS_PER_MESSAGE: the walk stops there, so time and memory stay bounded."""
    stop = len(data) if end is None else end
    pos, count = begin, 0
    while pos < stop:
        if count >= MAX_FIELDS_PER_MESSAGE:
            raise _TooManyFields(TOO_MANY_FIELDS)
        count += 1
        start = pos
        key, pos = _varint(data, pos, stop)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value_end = _varint(data, pos, stop)[1]
        elif wire == 2:
            size, pos = _varint(data, pos, stop)
            value_end = pos + size
        elif wire in (1, 5):
            value_end = pos + (8 if wire == 1 else 4)
        else:
            raise ValueError(f"wire type {wire}")
        if value_end > stop:
            raise EOFError
        yield number, wire, start, pos, value_end
        pos = value_end


def _fields(data: bytes) -> list[Field]:
    """Top-level (field number, wire type, value) triples: bytes for length-delimited fields, the
    number for the others (errors as proto_spans)."""
    out: list[Field] = []
    for number, wire, _, at, end in proto_spans(data):
        if wire == 2:
            out.append((number, wire, data[at:end]))
        elif wire == 0:
            out.append((number, wire, _varint(data, at, end)[0]))
        else:
            out.append((number, wire, int.from_bytes(data[at:end], "little")))
    return out


def proto_fields(data: bytes) -> list[Field]:
    """A protobuf message's top-level (field number, wire type, value) triples, for readers of
    messages this module has validated (EOFError or ValueError on bytes that are not one)."""
    return _fields(data)


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
    except _TooManyFields:
        raise ModelFileError(f"{source}: {TOO_MANY_FIELDS}") from None
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


def tensor_header(fields: list[Field]) -> tuple[str, list[int], int]:
    """A TensorProto's name, dims (packed or not) and data type, from its fields."""
    name, dims, dtype = "", [], 0
    for f, _wire, v in fields:
        if f == _NAME and isinstance(v, bytes):
            name = v.decode("utf-8")
        elif f == _DIMS and isinstance(v, int):
            dims.append(v)
        elif f == _DIMS and isinstance(v, bytes):  # packed dims
            pos = 0
            while pos < len(v):
                d, pos = _varint(v, pos)
                dims.append(d)
        elif f == _DATA_TYPE and isinstance(v, int):
            dtype = v
    return name, dims, dtype


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


@dataclass(frozen=True)
class ExternalRef:
    """A tensor that refers to external data: where it says its bytes are, and how many it needs."""

    name: str
    initializer: bool  # a main-graph initializer (not inside a node, subgraph or function)
    location: str
    offset: int
    length: int  # -1 when the reference gives none
    nbytes: int  # what its dims and data type need; -1 when they cannot be read


def _external_ref(fields: list[Field], top: bool) -> ExternalRef:
    name = next((v.decode("utf-8", "replace") for f, _, v in fields if f == _NAME and isinstance(v, bytes)), "")
    info: dict[str, str] = {}
    for f, _, v in fields:
        if f == _EXTERNAL_DATA and isinstance(v, bytes):
            entry = {k: x for k, w, x in _fields(v) if w == 2 and isinstance(x, bytes)}
            info[entry.get(1, b"").decode("utf-8", "replace")] = entry.get(2, b"").decode("utf-8", "replace")
    dims = [v for f, _, v in fields if f == _DIMS and isinstance(v, int)]
    dtype = next((v for f, _, v in fields if f == _DATA_TYPE and isinstance(v, int)), 0)
    packed = any(f == _DIMS and isinstance(v, bytes) for f, _, v in fields)
    nbytes = -1
    if dtype in _DTYPES and not packed and all(d < 1 << 40 for d in dims):
        nbytes = int(np.prod(dims, dtype=np.float64)) * np.dtype(_DTYPES[dtype]).itemsize

    def number(key: str) -> int:
        text = info.get(key, "")
        return int(text) if text.isdigit() and len(text) < 20 else -1

    offset = number("offset") if "offset" in info else 0  # ONNX's default offset
    return ExternalRef(name, top, info.get("location", ""), offset, number("length"), nbytes)


def external_tensors(data: bytes, source: str) -> list[ExternalRef]:
    """Every tensor of a serialized model that refers to external data, anywhere in it (initializers,
    node attributes, subgraphs, functions, sparse tensors, training info)."""
    found: list[ExternalRef] = []
    walked = [0]

    def walk(message: bytes, kind: str, depth: int, top: bool) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise ModelFileError(f"{source}: graphs nested deeper than {MAX_GRAPH_DEPTH} levels; refusing the file")
        fields = _fields(message)
        walked[0] += len(fields)
        if walked[0] > MAX_FIELDS_TOTAL:
            raise _TooManyFields(TOO_MANY_FIELDS)
        if kind == "tensor":
            if any(f == _EXTERNAL_DATA or (f == _DATA_LOCATION and v == 1) for f, _, v in fields):
                found.append(_external_ref(fields, top))
            return
        for number, wire, value in fields:
            child = _SCHEMA[kind].get(number)
            if child is not None and wire == 2 and isinstance(value, bytes):
                initializer = kind == "graph" and number == _INITIALIZER_FIELD and depth == 1
                walk(value, child, depth + (child == "graph"), initializer)

    try:
        walk(data, "model", 0, False)
    except _TooManyFields:
        raise ModelFileError(f"{source}: {TOO_MANY_FIELDS}") from None
    except (EOFError, ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{source}: corrupt ONNX file; export it again") from None
    return found


def _refuse(source: str, name: str, why: str) -> ModelFileError:
    return ModelFileError(f"{source}: tensor {name[:80]!r} refers to external data {why}; an edgeinfer file "
                          "carries every weight inside it, so this file is refused; export it again")


def check_external_data(data: bytes, allowed: set[str], source: str) -> None:
    """Refuse a model that would make onnxruntime read a file: the only external tensors allowed
    are main-graph initializers named in `allowed` (those the runtime supplies itself)."""
    for ref in external_tensors(data, source):
        if not (ref.initializer and ref.name in allowed):
            raise _refuse(source, ref.name, "(a file onnxruntime would read)")


def check_self_ranges(step: bytes, data: bytes, source: str) -> None:
    """Format 4: every external tensor of the step graph must be a main-graph initializer whose
    bytes are a range of the model file itself (location SELF_LOCATION): exactly the raw bytes of
    one of the sequence graph's initializers, of the size its dims and data type need. The
    runtime hands onnxruntime the file's bytes under that name, so nothing is read from disk."""
    file_size = len(data)
    try:
        spans = set(initializer_ranges(data).values())
    except (EOFError, ValueError):  # UnicodeDecodeError and _TooManyFields included
        raise ModelFileError(f"{source}: corrupt ONNX file; export it again") from None
    for ref in external_tensors(step, source):
        if not ref.initializer or ref.location != SELF_LOCATION:
            raise _refuse(source, ref.name, f"at {ref.location[:60]!r} (only {SELF_LOCATION!r}, the file itself, "
                          "is allowed)")
        if ref.offset < 0 or ref.length < 0 or ref.offset + ref.length > file_size:
            raise _refuse(source, ref.name, f"outside the file (bytes {ref.offset} + {ref.length} of {file_size})")
        if ref.nbytes != ref.length:
            raise _refuse(source, ref.name, f"of {ref.length} bytes where its shape needs {ref.nbytes}")
        if (ref.offset, ref.length) not in spans:
            raise _refuse(source, ref.name, f"at bytes {ref.offset} + {ref.length}, which are not a weight "
                          "of the sequence graph")


def checksums(data: bytes, step: bytes, spec_json: str | None = None) -> dict[str, str]:
    """The sha256 of the file without its metadata (the sequence graph and every weight), of the
    step graph and (format 8 on) of the spec's JSON as stored: what export writes under
    CHECKSUMS_KEY, and a runtime checks."""
    body = hashlib.sha256()
    for number, _, start, _, end in proto_spans(data):
        if number != _METADATA_FIELD:
            body.update(data[start:end])
    sums = {"graph": body.hexdigest(), "step_graph": hashlib.sha256(step).hexdigest()}
    if spec_json is not None:
        sums["spec"] = hashlib.sha256(spec_json.encode("utf-8")).hexdigest()
    return sums


def _check_checksums(meta: dict[str, str], data: bytes, step: bytes, source: str, version: int) -> None:
    try:
        want = json.loads(meta.get(CHECKSUMS_KEY, ""))
    except (json.JSONDecodeError, RecursionError):
        want = None
    if not isinstance(want, dict):
        raise ModelFileError(f"{source}: no valid {CHECKSUMS_KEY} in the file; export it again")
    # the spec decides what the answers mean (labels, normalisation, what is read): from format 8
    # a damaged spec is refused like a damaged graph, not read as another model
    covered = version >= SPEC_CHECKSUM_FORMAT or "spec" in want
    got = checksums(data, step, meta[SPEC_KEY] if covered else None)
    for part, digest in got.items():
        if want.get(part) != digest:
            raise ModelFileError(f"{source}: the {part.replace('_', ' ')} is damaged (its sha256 does not match "
                                 "the one written at export); copy or export the file again")


def initializer_ranges(data: bytes) -> dict[str, tuple[int, int]]:
    """Where each main-graph initializer's raw_data lies in a serialized model: name -> (offset,
    length). For the exporter, which writes the step graph's shared weights as these ranges (errors
    as proto_spans, and UnicodeDecodeError for a name that is not UTF-8)."""
    ranges: dict[str, tuple[int, int]] = {}
    for number, wire, _, start, end in proto_spans(data):
        if number != _GRAPH_FIELD or wire != 2:
            continue
        for g_number, g_wire, _, g_start, g_end in proto_spans(data, start, end):
            if g_number != _INITIALIZER_FIELD or g_wire != 2:
                continue
            name, raw = "", (0, 0)
            for t_number, t_wire, _, t_start, t_end in proto_spans(data, g_start, g_end):
                if t_number == _NAME and t_wire == 2:
                    name = data[t_start:t_end].decode("utf-8")
                elif t_number == _RAW_DATA and t_wire == 2:
                    raw = (t_start, t_end - t_start)
            if raw[1]:
                ranges[name] = raw
    return ranges


@dataclass(frozen=True)
class ModelFile:
    """A parsed edgeinfer file (format 4 or later): its bytes, spec and step graph, whose shared
    weights are byte ranges of the file itself (location SELF_LOCATION)."""

    source: str  # how the user named the file, for messages
    data: bytes  # the whole file: the sequence graph with its metadata
    spec: ModelSpec
    step_graph: bytes  # a serialized ONNX model

    def external_files(self) -> dict[str, bytes]:
        """The in-memory "files" the step graph's external references name: the file itself."""
        return {SELF_LOCATION: self.data}


def older_layout(source: str, version: int) -> ModelFileError:
    """The refusal of a file of formats 1-3 (SELF_RANGES_FORMAT - 1 and before), whose step graph
    names its shared weights by tensor name: the command that rewrites it is the fix."""
    return ModelFileError(f"{source}: a format {version} file, whose step graph names its shared weights by tensor "
                          f"name (formats 1-{SELF_RANGES_FORMAT - 1}), which edgeinfer no longer reads; rewrite it "
                          f"in format {FORMAT_VERSION} with `{RELAYOUT_COMMAND}` (weights untouched)")


def read_spec(meta: dict[str, str], source: str) -> ModelSpec:
    """The spec in a file's metadata (`read_metadata`), validated; SpecError naming `source`."""
    if SPEC_KEY not in meta:
        raise SpecError(f"{source}: ONNX file without an edgeinfer spec; export it with `python -m export`")
    try:
        return ModelSpec.from_json(meta[SPEC_KEY])
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None


def parse_model_file(data: bytes, source: str) -> ModelFile:
    """Read an edgeinfer file's metadata: spec and step graph, everything validated (the checksums,
    and every external-data reference in either graph). Files of formats 1-3 are refused
    (`older_layout`: the command that rewrites them is in the message)."""
    meta = read_metadata(data, source)
    spec = read_spec(meta, source)
    if spec.format_version < SELF_RANGES_FORMAT:
        raise older_layout(source, spec.format_version)
    try:
        step = base64.b64decode(meta.get(STEP_GRAPH_KEY, ""), validate=True)
    except (binascii.Error, ValueError):
        raise SpecError(f"{source}: the embedded step graph is corrupt; export the model again") from None
    if not step:
        raise SpecError(f"{source}: no step graph in the file; export it with `python -m export`")
    check_external_data(data, set(), source)
    step_source = f"{source} (step graph)"
    _top_fields(step, step_source)
    _check_checksums(meta, data, step, source, spec.format_version)
    check_self_ranges(step, data, step_source)
    return ModelFile(source, data, spec, step)


__all__ = ["ExternalRef", "ModelFile", "check_external_data", "check_self_ranges", "checksums", "external_tensors",
           "initializer_ranges", "older_layout", "parse_model_file", "proto_fields", "proto_spans", "read_metadata",
           "read_spec"]
