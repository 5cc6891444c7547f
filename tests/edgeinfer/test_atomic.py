"""Atomic writes: the file mode follows the umask, a failed write leaves the old file, and temp
files of a killed writer are removed by the next write."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edgeinfer.atomic import atomic_path, stale_temps, write_atomic


def test_write_replaces_whole_files_with_the_usual_mode(tmp_path) -> None:
    path = tmp_path / "out" / "model.onnx"
    write_atomic(path, b"first")
    write_atomic(path, "second")
    assert path.read_bytes() == b"second"
    mask = os.umask(0o22)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"second" and os.listdir(path.parent) == ["model.onnx"]


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path) -> None:
    path = tmp_path / "model.onnx"
    code = ("import os, sys; from edgeinfer.atomic import atomic_path\n"
            f"with atomic_path({str(path)!r}) as tmp:\n"
            "    tmp.write_bytes(b'partial'); sys.stdout.write('ready'); sys.stdout.flush(); os._exit(9)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 9 and out.stdout == "ready"
    left = stale_temps(path)
    assert len(left) == 1 and left[0].name.startswith(".model.onnx.") and not path.exists()
    write_atomic(path, b"done")
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
