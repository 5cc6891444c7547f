"""Read an ONNX file's metadata without the onnx package: a minimal protobuf walk.

Only the top level of ModelProto is walked (metadata_props is field 14, entries hold key=1,
value=2). A file that is not a protobuf, or whose fields run past its end, is reported here,
before onnxruntime sees it.
"""
from __future__ import annotations

import numpy as np

from edgeinfer.errors import ModelFileError

_METADATA_FIELD = 14
_GRAPH_FIELD = 7


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


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """Top-level (field number, wire type, value) triples; EOFError when truncated."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((field, wire, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise EOFError
            out.append((field, wire, data[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise EOFError
            out.append((field, wire, int.from_bytes(data[pos : pos + width], "little")))
            pos += width
        else:
            raise ValueError(f"wire type {wire}")
    return out


def read_metadata(data: bytes, source: str) -> dict[str, str]:
    """The `metadata_props` of a serialized ModelProto, as a dict."""
    if not data:
        raise ModelFileError(f"{source}: empty file; expected an ONNX model")
    if data[0] != 0x08:  # every ONNX file starts with field 1, ir_version, a varint
        raise ModelFileError(f"{source}: not an ONNX model file")
    try:
        fields = _fields(data)
    except EOFError:
        raise ModelFileError(f"{source}: truncated ONNX file; copy or export it again") from None
    except (ValueError, IndexError):
        raise ModelFileError(f"{source}: not an ONNX model file") from None
    if not any(f == _GRAPH_FIELD and w == 2 for f, w, _ in fields):
        raise ModelFileError(f"{source}: not an ONNX model file (no graph)")
    meta: dict[str, str] = {}
    for field, wire, value in fields:
        if field != _METADATA_FIELD or wire != 2 or not isinstance(value, bytes):
            continue
        try:
            entry = {f: v for f, w, v in _fields(value) if w == 2}
            key = entry.get(1, b"")
            val = entry.get(2, b"")
            assert isinstance(key, bytes) and isinstance(val, bytes)
            meta[key.decode("utf-8")] = val.decode("utf-8")
        except (EOFError, ValueError, AssertionError, UnicodeDecodeError):
            raise ModelFileError(f"{source}: corrupt metadata in ONNX file") from None
    return meta


# TensorProto data_type -> numpy dtype, for the types exporters and quantizers write
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}


def read_initializers(data: bytes, names: set[str], source: str) -> dict[str, np.ndarray]:
    """The named initializers (raw_data tensors) of a serialized ModelProto's main graph."""
    found: dict[str, np.ndarray] = {}
    try:
        graph = next(v for f, w, v in _fields(data) if f == _GRAPH_FIELD and w == 2)
        assert isinstance(graph, bytes)
        for field, wire, value in _fields(graph):
            if field != 5 or wire != 2 or not isinstance(value, bytes):  # GraphProto.initializer
                continue
            dims: list[int] = []
            name, dtype, raw = "", 0, b""
            for f, w, v in _fields(value):
                if f == 1 and w == 0:
                    dims.append(int(v))  # type: ignore[arg-type]
                elif f == 1 and w == 2:  # packed dims
                    pos, packed = 0, v
                    assert isinstance(packed, bytes)
                    while pos < len(packed):
                        d, pos = _varint(packed, pos)
                        dims.append(d)
                elif f == 2:
                    dtype = int(v)  # type: ignore[arg-type]
                elif f == 8 and isinstance(v, bytes):
                    name = v.decode("utf-8")
                elif f == 9 and isinstance(v, bytes):
                    raw = v
            if name in names:
                found[name] = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(dims)
    except (StopIteration, EOFError, ValueError, KeyError, AssertionError, UnicodeDecodeError):
        raise ModelFileError(f"{source}: corrupt weights in ONNX file; export it again") from None
    missing = names - set(found)
    if missing:
        raise ModelFileError(f"{source}: weights {sorted(missing)[:3]} missing from the file; export it again")
    return found
