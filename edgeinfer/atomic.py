"""Atomic file writes: a temp file in the destination's folder, fsync, then rename.

A reader never sees a half-written file, and a crash leaves the old file (or none) in place.
Temp files are named `.NAME.PID.XXXX.tmp`; one left behind by a process that no longer runs (a
killed export or checkpoint save) is removed by the next write to the same destination. The one
helper for the runtime, training (checkpoints, vectors, downloads) and export (model files).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it where /proc allows."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Temp files of earlier writes to `path` whose writing process is gone."""
    dest = Path(path)
    stale = []
    for tmp in dest.parent.glob(f".{dest.name}.*.tmp"):
        pid = tmp.name[len(dest.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or not _alive(int(pid)):
            stale.append(tmp)
    return stale


def remove_stale_temps(path: str | os.PathLike[str]) -> int:
    """Remove the temp files that `stale_temps` finds; returns how many."""
    removed = 0
    for tmp in stale_temps(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; when the block ends without error, it replaces `path`.

    For writers that want a file name (`torch.save`, `np.save`); the temp file is removed
    whatever happens, and the destination's folder is created if needed.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # what open() would give; mkstemp makes 0600
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write bytes (or UTF-8 text) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


__all__ = ["atomic_path", "remove_stale_temps", "stale_temps", "write_atomic"]
