"""Fetch published data files and verify their published checksums before use."""
from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edgeinfer.atomic import atomic_path


class DownloadError(RuntimeError):
    """A file could not be fetched, or failed its checksum."""


class ChecksumError(ValueError):
    """A downloaded file's checksum is not the published one."""


@dataclass(frozen=True)
class Resource:
    """A published file: its name, its mirrors (tried in order) and its published checksum."""

    filename: str
    urls: tuple[str, ...]
    md5: str


def file_md5(path: Path) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(resource: Resource, folder: Path, timeout_s: float = 60.0) -> Path:
    """Download `resource` into `folder` unless a verified copy is there.

    The file is written to a temporary name, checked against its published MD5 and only then
    renamed into place (edgeinfer.atomic); a file that fails the check is deleted and reported.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / resource.filename
    if target.exists():
        if file_md5(target) == resource.md5:
            return target
        target.unlink()
        print(f"{target}: checksum mismatch, deleted; downloading again", file=sys.stderr)
    errors: list[str] = []
    for url in resource.urls:
        try:
            with atomic_path(target) as tmp:  # renamed into place only when the checksum matches
                with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
                    for block in iter(lambda: resp.read(1 << 20), b""):
                        out.write(block)
                got = file_md5(tmp)
                if got != resource.md5:
                    raise ChecksumError(f"{url}: checksum mismatch (md5 {got}, expected {resource.md5}); deleted")
            return target
        except ChecksumError as exc:
            errors.append(str(exc))
        except urllib.error.HTTPError as exc:
            errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise DownloadError(f"could not fetch {resource.filename}: " + "; ".join(errors))
