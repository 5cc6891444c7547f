"""Fetch published data files and verify their published sizes and checksums before use.

A download is bounded in bytes and in time: reading stops as soon as a response grows past the
file's published size (a Content-Length over it is refused before reading), and `timeout_s`
bounds the whole transfer of one URL, not just each socket read.
"""
from __future__ import annotations

import hashlib
import http.client
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edgeinfer.atomic import atomic_path

CHUNK = 1 << 16  # bytes asked of one socket read at most


class DownloadError(RuntimeError):
    """A file could not be fetched, or failed its size or checksum check."""


class RefusedError(ValueError):
    """A mirror's answer is not the published file (too long, too short, too slow); the message
    is one line naming the URL."""


class ChecksumError(RefusedError):
    """A downloaded file's checksum is not the published one."""


@dataclass(frozen=True)
class Resource:
    """A published file: its name, its mirrors (tried in order), its published checksum and size."""

    filename: str
    urls: tuple[str, ...]
    md5: str
    size: int  # bytes; a download is cut off as soon as it grows past this


def file_md5(path: Path) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bound_next_read(resp: object, seconds: float) -> None:
    """Let the next socket read of `resp` wait `seconds` at most, where its socket can be reached
    (http.client keeps it in private attributes; without it the urlopen timeout bounds each read)."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(max(seconds, 0.001))


def download(url: str, dest: Path, size: int, timeout_s: float) -> None:
    """Write the body at `url` to `dest`, `size` bytes exactly.

    RefusedError as soon as more than `size` bytes arrive (at most `size` + 1 are read), when the
    response's Content-Length is over `size` (before reading any of it), when it ends short, or
    when it is not finished `timeout_s` seconds after the request began (the elapsed time is
    checked between reads, and each read waits no longer than the time left). The status line
    and headers are bounded by the urlopen timeout per socket read.
    """
    deadline = time.monotonic() + timeout_s
    got = 0

    def late() -> RefusedError:
        return RefusedError(f"{url}: not finished within the {timeout_s:g} s timeout ({got:,} of {size:,} bytes); "
                            "deleted")

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(dest, "wb") as out:
            length = (resp.headers.get("Content-Length") or "").strip()
            if length.isdigit() and int(length) > size:
                raise RefusedError(f"{url}: Content-Length {int(length):,} bytes is more than the expected "
                                   f"{size:,} bytes; nothing read")
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise late()
                _bound_next_read(resp, left)
                block = resp.read1(min(CHUNK, size + 1 - got))  # returns what one socket read gives
                if not block:
                    break
                got += len(block)
                if got > size:
                    raise RefusedError(f"{url}: more than the expected {size:,} bytes (stopped reading at {got:,}); "
                                       "deleted")
                out.write(block)
    except TimeoutError:
        if time.monotonic() >= deadline:
            raise late() from None
        raise
    if got < size:
        raise RefusedError(f"{url}: ended after {got:,} of the expected {size:,} bytes; deleted")


def fetch(resource: Resource, folder: Path, timeout_s: float = 60.0) -> Path:
    """Download `resource` into `folder` unless a verified copy is there.

    Each mirror gets `timeout_s` seconds for the whole transfer and at most the published size
    (see `download`). The file is written to a temporary name, checked against its published
    size and MD5 and only then renamed into place (edgeinfer.atomic); a file that fails a check
    is deleted and reported, and the next mirror is tried. DownloadError names every failure.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / resource.filename
    if target.exists():
        if target.stat().st_size == resource.size and file_md5(target) == resource.md5:
            return target
        target.unlink()
        print(f"{target}: size or checksum mismatch, deleted; downloading again", file=sys.stderr)
    errors: list[str] = []
    for url in resource.urls:
        try:
            with atomic_path(target) as tmp:  # renamed into place only when the checksum matches
                download(url, tmp, resource.size, timeout_s)
                got = file_md5(tmp)
                if got != resource.md5:
                    raise ChecksumError(f"{url}: checksum mismatch (md5 {got}, expected {resource.md5}); deleted")
            return target
        except RefusedError as exc:
            errors.append(str(exc))
        except urllib.error.HTTPError as exc:
            errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # TimeoutError is an OSError
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise DownloadError(f"could not fetch {resource.filename}: " + "; ".join(errors))
