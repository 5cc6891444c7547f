"""Labelled sequences from the files people have: CSV/TSV (one row per step), a folder per label,
NumPy `.npz`, and the UEA/UCR `.ts` archive format.

Every reader returns `Sequences`: variable-length float32 steps (T_i, F), a label per sequence,
and where each came from (FILE:LINE), so that a problem is reported where it is. Bad data is a
`DataError` whose message is one line naming the file (and line) and the fix, raised before any
training starts. Numpy only: no torch here.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_FILE_BYTES = 1 << 31  # a larger input file is refused rather than read into memory
ID_NAMES = ("id", "sequence", "sequence_id", "seq", "seq_id", "series", "series_id", "sample", "sample_id",
            "recording", "session", "trial")
LABEL_NAMES = ("label", "class", "target", "y", "activity", "category")
TIME_NAMES = ("t", "time", "timestamp", "step", "frame", "index")
FILLS = ("previous", "zero")


class DataError(ValueError):
    """Training data that cannot be used; the message is one line naming where and why."""


@dataclass
class Sequences:
    """Labelled sequences: x[i] is (T_i, F) float32, y[i] the index of its label in `labels`."""

    x: list[np.ndarray]
    y: np.ndarray  # (N,) int64
    labels: tuple[str, ...]
    features: tuple[str, ...]
    where: list[str] = field(default_factory=list)  # FILE:LINE (or FILE) of each sequence

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: Sequence[int] | np.ndarray) -> Sequences:
        """The sequences at `index`, with the same labels and features."""
        idx = [int(i) for i in index]
        return Sequences([self.x[i] for i in idx], self.y[idx], self.labels, self.features,
                         [self.where[i] for i in idx] if self.where else [])

    @property
    def lengths(self) -> np.ndarray:
        """Steps of each sequence. # (N,)"""
        return np.array([len(s) for s in self.x], np.int64)


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if size == 0:
        raise DataError(f"{path}: empty file; expected labelled sequences")
    if size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {size:,} bytes; files over {MAX_FILE_BYTES >> 30} GB are not read")


def _number(text: str, where: str, fill: str | None) -> float:
    """One cell as a float; NaN for a missing value when filling (filled later), DataError otherwise."""
    text = text.strip()
    if text in ("", "?", "nan", "NaN", "NA", "null", "None"):
        if fill is None:
            raise DataError(f"{where}: missing value; fill it in, or pass --fill previous|zero")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        if fill is None:
            raise DataError(f"{where}: {text[:40]!r} is not a finite number; fix it, or pass --fill previous|zero")
        return math.nan
    return value


def fill_missing(x: np.ndarray, fill: str | None) -> np.ndarray:
    """NaN steps filled: `previous` carries each feature's last value forward (0 before the first),
    `zero` puts 0."""
    if fill is None or not np.isnan(x).any():
        return x
    if fill == "zero":
        zeroed: np.ndarray = np.nan_to_num(x, nan=0.0)
        return zeroed
    out: np.ndarray = x.copy()
    for t in range(len(out)):
        gap = np.isnan(out[t])
        out[t, gap] = out[t - 1, gap] if t else 0.0
    return out


def _pick(header: list[str], given: str | None, names: tuple[str, ...], what: str, option: str, path: Path,
          required: bool) -> int | None:
    """The index of a column: the one named `given`, else the one whose name is in `names`."""
    lower = [h.strip().lower() for h in header]
    if given is not None:
        if given not in header:
            raise DataError(f"{path}: no column {given!r} for the {what} (columns: {', '.join(header[:20])})")
        return header.index(given)
    found = [i for i, h in enumerate(lower) if h in names]
    if len(found) > 1:
        raise DataError(f"{path}: columns {', '.join(repr(header[i]) for i in found)} could each be the {what}; "
                        f"name it with {option}")
    if not found and required:
        raise DataError(f"{path}: no column looks like the {what} (named one of {', '.join(names[:4])}...); "
                        f"name it with {option} (columns: {', '.join(header[:20])})")
    return found[0] if found else None


def _columns(header: list[str], path: Path, id_column: str | None, label_column: str | None,
             feature_columns: Sequence[str] | None) -> tuple[int, int, list[int]]:
    """The id, label and feature columns' indexes: named, or guessed from the header."""
    id_i = _pick(header, id_column, ID_NAMES, "sequence id", "--id-column", path, required=True)
    label_i = _pick(header, label_column, LABEL_NAMES, "label", "--label-column", path, required=True)
    assert id_i is not None and label_i is not None
    if feature_columns:
        missing = [c for c in feature_columns if c not in header]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} among the features (columns: {', '.join(header[:20])})")
        feats = [header.index(c) for c in feature_columns]
    else:
        skip = {id_i, label_i} | {i for i, h in enumerate(header) if h.strip().lower() in TIME_NAMES}
        feats = [i for i in range(len(header)) if i not in skip]
    if not feats:
        raise DataError(f"{path}: no feature columns besides the id and the label")
    return id_i, label_i, feats


def read_table(path: Path, id_column: str | None = None, label_column: str | None = None,
               feature_columns: Sequence[str] | None = None, fill: str | None = None) -> Sequences:
    """A CSV or TSV file with a header and one row per time step: a sequence-id column, a label
    column and the feature columns (every other numeric column; a time column is left out). Rows of
    one sequence keep their order; sequences come in order of first appearance."""
    _check_size(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); expected CSV or TSV") from None
    if "\x00" in text[:8192]:
        raise DataError(f"{path}: a binary file; expected CSV or TSV")
    first_line = text.split("\n", 1)[0]
    tabs = path.suffix.lower() in (".tsv", ".tab") or first_line.count("\t") > first_line.count(",")
    rows = csv.reader(io.StringIO(text), delimiter="\t" if tabs else ",")
    header = next(rows, None)
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{path}: no header row; expected column names (an id, a label, the features)")
    id_i, label_i, feats = _columns(header, path, id_column, label_column, feature_columns)
    steps: dict[str, list[list[float]]] = {}
    seq_label: dict[str, tuple[str, int]] = {}
    for line, row in enumerate(rows, start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: {len(row)} fields; the header has {len(header)}")
        key, label = row[id_i].strip(), row[label_i].strip()
        if not label:
            raise DataError(f"{path}:{line}: no label")
        first = seq_label.setdefault(key, (label, line))
        if first[0] != label:
            raise DataError(f"{path}:{line}: sequence {key!r} is labelled {label!r} here and {first[0]!r} on line "
                            f"{first[1]}; a sequence has one label")
        steps.setdefault(key, []).append([_number(row[i], f"{path}:{line} ({header[i]})", fill) for i in feats])
    if not steps:
        raise DataError(f"{path}: a header and no rows; expected one row per time step")
    names = sorted({lab for lab, _ in seq_label.values()})
    x = [fill_missing(np.asarray(v, np.float32), fill) for v in steps.values()]
    y = np.array([names.index(seq_label[k][0]) for k in steps], np.int64)
    return Sequences(x, y, tuple(names), tuple(header[i].strip() for i in feats),
                     [f"{path}:{seq_label[k][1]}" for k in steps])


def _read_steps_file(path: Path, fill: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """One sequence in one file: `.npy` (T, F), or text with one step per line (numbers separated by
    commas, tabs or spaces; a header line of names is allowed)."""
    _check_size(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a NumPy array file ({str(exc)[:80]})") from None
        arr = np.asarray(arr, np.float32)
        arr = arr[:, None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or not np.isfinite(arr).all():
            raise DataError(f"{path}: an array of shape {arr.shape}; expected finite (T, F) steps")
        return arr, ()
    try:
        lines = path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected one step per line") from None
    names: tuple[str, ...] = ()
    rows = []
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        cells = [c for c in re.split(r"[,\t; ]+", text.strip()) if c]
        if line == 1 and not all(re.fullmatch(r"[-+.0-9eE?naNA]+", c) for c in cells):
            names = tuple(cells)
            continue
        rows.append([_number(c, f"{path}:{line}", fill) for c in cells])
    if not rows:
        raise DataError(f"{path}: no steps; expected one step per line")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataError(f"{path}: lines hold {sorted(widths)} values; every step needs the same count")
    return fill_missing(np.asarray(rows, np.float32), fill), names


SEQUENCE_SUFFIXES = (".csv", ".tsv", ".txt", ".npy")


def read_folder(root: Path, fill: str | None = None) -> Sequences:
    """One file per sequence under one folder per label: ROOT/LABEL/*.csv|.tsv|.txt|.npy."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no label folders; expected ROOT/LABEL/one-file-per-sequence")
    x, y, where = [], [], []
    features: tuple[str, ...] = ()
    for k, folder in enumerate(folders):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SEQUENCE_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: no sequence files ({', '.join(SEQUENCE_SUFFIXES)})")
        for path in files:
            arr, names = _read_steps_file(path, fill)
            x.append(arr)
            y.append(k)
            where.append(str(path))
            features = features or names
    return Sequences(x, np.array(y, np.int64), tuple(f.name for f in folders), features, where)


def _npz_sequences(data: dict[str, np.ndarray], path: Path) -> list[np.ndarray]:
    """The sequences of an .npz: X with its lengths, or x_0, x_1, ..."""
    if "X" in data:
        big = np.asarray(data["X"], np.float32)
        if big.ndim == 2:
            big = big[:, :, None]
        if big.ndim != 3:
            raise DataError(f"{path}: X has shape {big.shape}; expected (N, T, F)")
        n = np.asarray(data.get("lengths", np.full(len(big), big.shape[1])), np.int64)
        if n.shape != (len(big),) or (n < 1).any() or (n > big.shape[1]).any():
            raise DataError(f"{path}: lengths must be (N,) counts from 1 to T = {big.shape[1]}")
        return [big[i, : n[i]] for i in range(len(big))]
    keys = sorted((k for k in data if re.fullmatch(r"x_\d+", k)), key=lambda k: int(k[2:]))
    if not keys:
        raise DataError(f"{path}: no X (N, T, F) and no x_0, x_1, ... arrays")
    return [np.asarray(data[k], np.float32).reshape(len(data[k]), -1) for k in keys]


def _npz_labels(data: dict[str, np.ndarray], y_raw: np.ndarray, path: Path) -> tuple[list[str], np.ndarray]:
    """The class names and each sequence's label index: string labels sorted, or integers (named by
    `labels` when given)."""
    if y_raw.dtype.kind in "US":
        names = sorted({str(v) for v in y_raw})
        y = np.array([names.index(str(v)) for v in y_raw], np.int64)
    else:
        given = [str(v) for v in data["labels"]] if "labels" in data else None
        values = sorted({int(v) for v in y_raw})
        names = given if given is not None else [str(v) for v in values]
        index = {v: i for i, v in enumerate(range(len(given)) if given is not None else values)}
        if any(int(v) not in index for v in y_raw):
            raise DataError(f"{path}: y holds labels outside 0..{len(names) - 1}")
        y = np.array([index[int(v)] for v in y_raw], np.int64)
    return names, y


def read_npz(path: Path) -> Sequences:
    """`.npz` (no pickles): `X` (N, T, F) with optional `lengths` (N,), or one array per sequence
    `x_0`, `x_1`, ... (T_i, F); and `y` (N,) labels (integers or strings); optional `labels` (the
    class names, for integer y) and `features`."""
    _check_size(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a NumPy .npz without pickles ({str(exc)[:80]})") from None
    if "y" not in data:
        raise DataError(f"{path}: no array 'y' of labels (arrays: {', '.join(sorted(data)[:10])})")
    x = _npz_sequences(data, path)
    y_raw = np.asarray(data["y"])
    if y_raw.shape != (len(x),):
        raise DataError(f"{path}: y has shape {y_raw.shape}; expected ({len(x)},), one label per sequence")
    for i, s in enumerate(x):
        if not np.isfinite(s).all():
            raise DataError(f"{path}: sequence {i} holds NaN or infinite values; fill them first")
    names, y = _npz_labels(data, y_raw, path)
    features = tuple(str(f) for f in data["features"]) if "features" in data else ()
    return Sequences(x, y, tuple(names), features, [f"{path}#{i}" for i in range(len(x))])


def _ts_header(text: str, where: str, declared: list[str] | None) -> list[str] | None:
    """One `@` line of a .ts header: the class labels it declares (or those declared before)."""
    low = text.lower()
    if low.startswith("@classlabel"):
        parts = text.split()
        if len(parts) < 3 or parts[1].lower() != "true":
            raise DataError(f"{where}: '@classLabel false': a .ts file without class labels; classification needs them")
        return parts[2:]
    if low.startswith("@timestamps") and low.split()[-1] == "true":
        raise DataError(f"{where}: time-stamped .ts series are not read; write the values only")
    return declared


def read_ts(path: Path, fill: str | None = None) -> Sequences:
    """The UEA/UCR `.ts` format: `@` header lines (`@classLabel true A B ...`), then after `@data`
    one case per line, its dimensions separated by `:` (each a comma-separated series), the class
    label last; `?` is a missing value."""
    _check_size(path)
    try:
        lines = path.read_text("utf-8", errors="strict").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected the .ts format") from None
    declared: list[str] | None = None
    x, labels, where = [], [], []
    in_data = False
    for line, text in enumerate(lines, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        if not in_data:
            declared = _ts_header(text, f"{path}:{line}", declared)
            in_data = text.lower().startswith("@data")
            continue
        *dims, label = text.split(":")
        if not dims:
            raise DataError(f"{path}:{line}: no series before the label; expected DIM1:DIM2:...:LABEL")
        series = [[_number(v, f"{path}:{line}", fill) for v in d.split(",")] for d in dims]
        steps = {len(s) for s in series}
        if len(steps) != 1:
            raise DataError(f"{path}:{line}: dimensions of {sorted(steps)} steps; every dimension needs the same count")
        x.append(fill_missing(np.asarray(series, np.float32).T, fill))
        labels.append(label.strip())
        where.append(f"{path}:{line}")
    if not in_data:
        raise DataError(f"{path}: no @data line; not a .ts file")
    if not x:
        raise DataError(f"{path}: no cases after @data")
    widths = {s.shape[1] for s in x}
    if len(widths) != 1:
        raise DataError(f"{path}: cases of {sorted(widths)} dimensions; every case needs the same count")
    names = declared if declared is not None else sorted(set(labels))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise DataError(f"{where[labels.index(unknown[0])]}: label {unknown[0]!r} is not among @classLabel's")
    return Sequences(x, np.array([names.index(v) for v in labels], np.int64), tuple(names), (), where)


def read(path: str | Path, id_column: str | None = None, label_column: str | None = None,
         feature_columns: Sequence[str] | None = None, fill: str | None = None) -> Sequences:
    """Whatever `path` holds, by its kind: a folder (one per label), `.npz`, `.ts`, or CSV/TSV."""
    if fill is not None and fill not in FILLS:
        raise DataError(f"--fill {fill!r}; expected one of {', '.join(FILLS)}")
    p = Path(path)
    if p.is_dir():
        return read_folder(p, fill)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return read_npz(p)
    if suffix == ".ts":
        return read_ts(p, fill)
    return read_table(p, id_column, label_column, feature_columns, fill)


__all__ = ["FILLS", "DataError", "Sequences", "fill_missing", "read", "read_folder", "read_npz", "read_table",
           "read_ts"]
