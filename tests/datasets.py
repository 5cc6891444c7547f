"""The real test sets, read with numpy and the standard library only (no torch, no train/).

The runtime's tests run where only the runtime is installed, so they cannot use train.data;
these readers follow the same files and the same rules (tests/train checks that both agree:
the MNIST mirror test compares the labels, the tokenizer test compares every IMDB review).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import struct
import tarfile
from collections.abc import Sequence
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


# Human-rated sentences (Hutto and Gilbert 2014, the VADER paper's ground truth): the
# vaderSentiment 3.3.2 source distribution on PyPI (MIT licence) ships them in
# additional_resources/hutto_ICWSM_2014.tar.gz; its wheel does not, so they are read from the sdist
# as pip downloads it (`python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR`).
MOTIONS_TEST = Path(__file__).resolve().parents[1] / "samples" / "basicmotions-test.csv"


def motions_test(channels: Sequence[str], path: Path = MOTIONS_TEST) -> tuple[list[np.ndarray], list[str]]:
    """The 40 held-out BasicMotions recordings shipped in samples/ (one row per step): each one's raw
    values of `channels` (steps, channels) and its activity, in the order of their ids."""
    rows: dict[str, list[list[float]]] = {}
    labels: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["recording"], []).append([float(r[c]) for c in channels])
            labels[r["recording"]] = r["activity"]
    ids = sorted(rows)
    return [np.array(rows[i], np.float32) for i in ids], [labels[i] for i in ids]


VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_SDIST_ENV = "EDGEINFER_VADER_SDIST"  # the sdist's path, else ~/.cache/edgeinfer/, else DATA/vader/
RATED_SETS = {  # name -> the file in hutto_ICWSM_2014/: ID, mean rating (-4..4, 20 raters or more), text
    "movie snippets": "movieReviewSnippets_GroundTruth.txt",  # 10,605 sentences of Pang & Lee's reviews
    "product snippets": "amazonReviewSnippets_GroundTruth.txt",  # 3,708 of Hu & Liu's Amazon reviews
    "tweets": "tweets_GroundTruth.txt",  # 4,200 tweet-like texts (200 of them contrived by the authors)
    "editorial snippets": "nytEditorialSnippets_GroundTruth.txt",  # 5,190 New York Times opinion sentences
}
RATED_MIN = 1.0  # a sentence is labelled when its raters' mean is at least this far from neutral (0)


def vader_sdist(path: Path | None = None) -> Path:
    """The vaderSentiment 3.3.2 sdist: `path`, else $EDGEINFER_VADER_SDIST, else
    ~/.cache/edgeinfer/, else DATA/vader/; FileNotFoundError saying how to get it."""
    candidates = [path] if path is not None else [
        Path(p) for p in (os.environ.get(VADER_SDIST_ENV),) if p] + [
        Path.home() / ".cache" / "edgeinfer" / VADER_SDIST, data_dir() / "vader" / VADER_SDIST]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"the human-rated sentences come in {VADER_SDIST} (not found at {', '.join(map(str, candidates))}): "
        f"python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d ~/.cache/edgeinfer "
        f"(or set ${VADER_SDIST_ENV} to the file)")


def rated_sentences(path: Path | None = None, min_rating: float = RATED_MIN
                    ) -> dict[str, tuple[list[str], np.ndarray]]:
    """The human-rated sentence sets by name (RATED_SETS): the texts whose raters' mean is at least
    `min_rating` from neutral, labelled 1 (positive) or 0 (negative) by its sign, in file order.
    From the vaderSentiment 3.3.2 sdist (`vader_sdist`); ValueError when the file is not that sdist."""
    sdist = vader_sdist(path)
    raw = sdist.read_bytes()
    if hashlib.sha256(raw).hexdigest() != VADER_SDIST_SHA256:
        raise ValueError(f"{sdist} is not the vaderSentiment 3.3.2 sdist (its sha256 differs)")
    return rated_from_sdist(raw, min_rating)


def rated_from_sdist(raw: bytes, min_rating: float = RATED_MIN) -> dict[str, tuple[list[str], np.ndarray]]:
    """`rated_sentences` from the bytes of an sdist laid out as vaderSentiment 3.3.2's (unchecked)."""
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as outer:
        member = outer.extractfile(f"{VADER_SDIST[:-len('.tar.gz')]}/additional_resources/hutto_ICWSM_2014.tar.gz")
        assert member is not None
        inner_bytes = member.read()
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        for name, filename in RATED_SETS.items():
            fh = inner.extractfile(f"hutto_ICWSM_2014/{filename}")
            assert fh is not None
            texts, labels = [], []
            for line in fh.read().decode("latin-1").splitlines():  # ID, mean rating, text
                fields = line.split("\t")
                if len(fields) < 3 or not fields[2].strip():
                    continue
                rating = float(fields[1])
                if abs(rating) >= min_rating:
                    texts.append(fields[2].strip())
                    labels.append(int(rating > 0))
            out[name] = texts, np.array(labels, dtype=np.int64)
    return out
