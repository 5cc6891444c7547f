"""Reading stdin for the commands that accept `-`: bounded, and a closed stdin is a clear error."""
from __future__ import annotations

import sys

from edgeinfer.errors import InputError


def read_stdin_bytes(limit: int) -> bytes:
    """All of stdin as bytes, at most `limit` of them (InputError beyond, or when stdin is closed)."""
    if sys.stdin is None or sys.stdin.closed:
        raise InputError("stdin is closed; pipe the input in, or give a file name")
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"stdin: more than {limit >> 20} MB; give a file instead")
    return data
