"""The real test sets, read with numpy and the standard library only (no torch, no train/).

The runtime's tests run where only the runtime is installed, so they cannot use train.data;
these readers follow the same files and the same rules (tests/train checks that both agree:
the MNIST mirror test compares the labels, the tokenizer test compares every IMDB review).
"""
from __future__ import annotations

import gzip
import os
import struct
import tarfile
from pathlib import Path

import numpy as np

DATA_ENV = "EDGEINFER_DATA"  # as train.data: --data, else $EDGEINFER_DATA, else ../shared/data
MNIST_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
IMDB_LABELLED = "imdb/aclImdb_labelled.tar.gz"


def data_dir() -> Path:
    """$EDGEINFER_DATA, else ../shared/data beside the project."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def read_idx(path: Path) -> np.ndarray:
    """A gzip-ed unsigned-byte IDX file as an array of its declared shape."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[:3] != b"\0\0\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{raw[3]}I", raw[4 : 4 + 4 * raw[3]])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def mnist_test(root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images (N, 28, 28) uint8 and labels (N,); FileNotFoundError if missing."""
    folder = (root or data_dir()) / "mnist"
    paths = [folder / name for name in MNIST_TEST]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"MNIST files missing in {folder}: {', '.join(missing)}")
    return read_idx(paths[0]), read_idx(paths[1])


def imdb_test(root: Path | None = None) -> tuple[list[str], np.ndarray]:
    """The 25,000 IMDB test reviews and labels (0 neg, 1 pos), sorted by 'neg/NAME' / 'pos/NAME'
    as train.data.load_imdb sorts them; from an unpacked aclImdb/ folder or the published archive."""
    root = root or data_dir()
    folder, prefix = root / "imdb" / "aclImdb", "aclImdb/test/"
    rows: list[tuple[str, str, int]] = []
    if folder.is_dir():
        for label, cls in enumerate(("neg", "pos")):
            for path in sorted((folder / "test" / cls).glob("*.txt")):
                rows.append((f"{cls}/{path.name}", path.read_text(encoding="utf-8"), label))
    else:
        archive = root / IMDB_LABELLED
        if not archive.is_file():
            raise FileNotFoundError(f"IMDB archive missing: {archive}")
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name[len(prefix):]
                cls = name.split("/")[0]
                wanted = member.name.startswith(prefix) and name.endswith(".txt") and cls in ("neg", "pos")
                if member.isfile() and wanted:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    rows.append((name, fh.read().decode("utf-8"), ("neg", "pos").index(cls)))
    if not rows:
        raise FileNotFoundError(f"no IMDB test reviews found under {root / 'imdb'}")
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows], np.array([r[2] for r in rows], dtype=np.int64)
