"""Edit an ONNX file's metadata without the onnx package (torch- and onnx-free, for the runtime's tests).

A serialized ModelProto is a list of top-level protobuf fields; metadata_props is field 14, each
entry a message with key (field 1) and value (field 2). Every other field is copied byte for byte.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from edgeinfer.fileformat import proto_spans
from edgeinfer.spec import CHECKSUMS_KEY, SPEC_KEY

_METADATA = 14


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(data: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """Top-level (field number, wire type, payload, the field's raw bytes) of a message, read by
    the runtime's own protobuf walker (its bounds checks are tested on their own)."""
    return [(number, wire, data[at:end], data[start:end]) for number, wire, start, at, end in proto_spans(data)]


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def read_metadata(data: bytes) -> dict[str, str]:
    """metadata_props of a serialized ModelProto, in file order."""
    meta = {}
    for field, wire, payload, _ in fields(data):
        if field == _METADATA and wire == 2:
            entry = {f: p for f, w, p, _ in fields(payload) if w == 2}
            meta[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
    return meta


def with_metadata(data: bytes, meta: dict[str, str]) -> bytes:
    """`data` with its metadata_props replaced by `meta` (written where the first entry was, else
    at the end); every other field is kept byte for byte."""
    entries = b"".join(_length_delimited(_METADATA, _length_delimited(1, k.encode("utf-8"))
                                         + _length_delimited(2, v.encode("utf-8"))) for k, v in meta.items())
    out, placed = bytearray(), False
    for field, wire, _, raw in fields(data):
        if field == _METADATA and wire == 2:
            if not placed:
                out += entries
                placed = True
        else:
            out += raw
    if not placed:
        out += entries
    return bytes(out)


def strip_spec(src: Path, dst: Path) -> None:
    """Copy `src` to `dst` without any metadata (an ONNX file without an edgeinfer spec)."""
    dst.write_bytes(with_metadata(Path(src).read_bytes(), {}))


def rewrite_spec(src: Path, dst: Path, edit: Callable[[dict], None], fix: bool = True) -> None:
    """Copy `src` to `dst` with its spec JSON changed in place by `edit(raw_dict)`; the checksums'
    sha256 of the spec (format 8) follows the edit unless `fix` is false (so that the check under
    test is the one that fails)."""
    data = Path(src).read_bytes()
    meta = read_metadata(data)
    raw = json.loads(meta[SPEC_KEY])
    edit(raw)
    meta[SPEC_KEY] = json.dumps(raw)
    sums = json.loads(meta.get(CHECKSUMS_KEY, "{}"))
    if fix and isinstance(sums, dict) and "spec" in sums:
        sums["spec"] = hashlib.sha256(meta[SPEC_KEY].encode("utf-8")).hexdigest()
        meta[CHECKSUMS_KEY] = json.dumps(sums, sort_keys=True)
    dst.write_bytes(with_metadata(data, meta))
