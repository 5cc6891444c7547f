"""Bulk inputs: which files a job reads, how they are cut into shards, and reading a shard's records.

Inputs are files, folders (searched recursively) and glob patterns, expanded in a fixed order
(each input in the order given, the files of a folder or a pattern sorted by path, a file named
twice read once). The kind of a file comes from its name: for the text tasks `.jsonl`/`.ndjson`/
`.json` are JSON lines, `.csv` is CSV, `.parquet`/`.pq` is Parquet and anything else is text,
one text per line; for digits, Parquet holds image bytes and any other file is an image.

A plan cuts the records into shards of about `shard_size` records, each a tuple of pieces
(a range of lines of a text file, a row group of a Parquet file, an image file). Shards are the
unit of work and of resume: the plan depends only on the inputs, so it is the same for every
engine and every rerun. A record that cannot be read (invalid UTF-8, a NUL byte, bad JSON, a
missing field, a null) and an input that cannot be read at all (missing, empty, binary, no such
column) become error records; blank lines of text and JSON lines files are skipped and counted.
"""
from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeinfer.errors import InputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".pgm", ".ppm", ".pbm", ".pnm"})
TEXT_KINDS = {".txt": "lines", ".text": "lines", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
              ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
SCAN_BLOCK = 1 << 20  # bytes read at a time when planning text files
PARQUET_BATCH = 4096  # rows decoded at a time from a Parquet row group
# a CSV field may hold up to 8 MiB (Python's csv module stops at 128 kB by default): a longer one,
# like the rest of a file after a stray quote, is one error row and the job reads on after it
CSV_FIELD_LIMIT = 8 << 20
# a line of a text or JSON lines file may hold up to 8 MiB too: a longer one is an error row (read
# past in pieces, never held whole), so a job's memory stays bounded whatever its inputs hold
LINE_LIMIT = 8 << 20
INSTALL_PYARROW = "Parquet needs pyarrow: pip install 'edgeinfer[ray]' (or pip install pyarrow)"


def pyarrow_modules() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or an InputError saying how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(INSTALL_PYARROW) from None
    return pa, pq


@dataclass(frozen=True)
class Source:
    """One input file (or an input that names nothing readable: kind "missing")."""

    path: str
    kind: str  # image | lines | jsonl | csv | parquet | missing
    size: int = 0
    mtime_ns: int = 0
    note: str = ""  # why a "missing" input cannot be read

    def to_list(self) -> list[Any]:
        return [self.path, self.kind, self.size, self.mtime_ns, self.note]

    @staticmethod
    def from_list(raw: list[Any]) -> Source:
        return Source(str(raw[0]), str(raw[1]), int(raw[2]), int(raw[3]), str(raw[4]))


@dataclass(frozen=True)
class Piece:
    """A run of records of one source: lines [first, first + records) starting at byte `start`
    (text kinds), row group `start` whose first row is `first` (Parquet), or the whole file."""

    source: int
    start: int = 0
    first: int = 0
    records: int = 1

    def to_list(self) -> list[int]:
        return [self.source, self.start, self.first, self.records]


@dataclass(frozen=True)
class Record:
    """One input: where it comes from and its value (a text, image bytes, or an image file's
    Path), or why it cannot be read."""

    source: str
    line: int | None = None  # text, JSON lines, CSV: the record's first line, from 1
    row: int | None = None  # Parquet: the row, from 0
    value: str | bytes | Path | list[Any] | None = None  # a list: a sequence of steps (JSON lines, Parquet)
    error: str = ""

    @property
    def id(self) -> str:
        """`FILE:LINE` (text kinds), `FILE#ROW` (Parquet), or the file (images, whole-file errors)."""
        if self.line is not None:
            return f"{self.source}:{self.line}"
        if self.row is not None:
            return f"{self.source}#{self.row}"
        return self.source


@dataclass
class ReadStats:
    """Counts kept while reading: records read (blank lines included) and blank lines skipped."""

    read: int = 0
    blank: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def _file_source(path: str, kind: str) -> Source:
    try:
        st = os.stat(path)
    except OSError as exc:
        return Source(path, "missing", note=f"{path}: cannot read ({exc.strerror})")
    return Source(path, kind, st.st_size, st.st_mtime_ns)


def kind_of(path: str, images: bool) -> str:
    """The kind of an input file, from its name."""
    suffix = Path(path).suffix.lower()
    if images:
        return "parquet" if TEXT_KINDS.get(suffix) == "parquet" else "image"
    return TEXT_KINDS.get(suffix, "lines")


def _wanted(path: Path, images: bool) -> bool:
    suffix = path.suffix.lower()
    if images:
        return suffix in IMAGE_SUFFIXES or TEXT_KINDS.get(suffix) == "parquet"
    return suffix in TEXT_KINDS


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes the file system gave that are not UTF-8 (surrogate escapes)
        return False
    return True


def _walk(root: str) -> Iterator[str]:
    """The files under `root`, never following a link to a folder (a link loop cannot make the
    walk endless); links to files are files."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                yield full


def _glob(pattern: str) -> list[str]:
    """The files a glob pattern names. `**` (any folders) is matched on a walk that never follows
    a link to a folder, so links looping back cannot make it endless; hidden names are left out
    unless the pattern spells their dot, as glob does."""
    if "**" not in pattern:
        return [f for f in glob.glob(pattern) if os.path.isfile(f)]
    parts = pattern.replace(os.sep, "/").split("/")
    fixed = list(itertools.takewhile(lambda seg: not glob.has_magic(seg), parts))
    root = "/".join(fixed) or "."
    regex = ""
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "**":
            regex += "(?:[^/]+/)*" + ("[^/]+" if last else "")
        else:
            regex += _segment(seg) + ("" if last else "/")
    matcher = re.compile(regex)
    found = []
    for full in _walk(root):
        rel = full.replace(os.sep, "/")
        if not fixed and rel.startswith("./"):
            rel = rel[2:]
        hidden = any(seg.startswith(".") for seg in rel.split("/")[len(fixed):])
        if matcher.fullmatch(rel) and not hidden:
            found.append(rel)
    return found


def _segment(seg: str) -> str:
    """One path segment of a glob pattern (no `**`) as a regular expression."""
    out, i = [], 0
    while i < len(seg):
        ch = seg[i]
        end = seg.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif end > 0:
            body = seg[i + 1:end]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def expand(inputs: Sequence[str], images: bool) -> list[Source]:
    """Each input as files, in a fixed order: a file is itself; a folder, its files of a known
    kind (recursively, sorted); anything else a glob pattern (its files, sorted). An input that
    names nothing becomes a "missing" source (an error row), never a stopped job."""
    seen: set[str] = set()
    out: list[Source] = []

    def add(source: Source) -> None:
        if not _utf8(source.path):
            name = ascii(source.path)
            if name not in seen:
                seen.add(name)
                out.append(Source(name, "missing", note=f"{name}: a file name that is not valid UTF-8; rename it"))
            return
        real = os.path.realpath(source.path) if source.kind != "missing" else source.path
        if real not in seen:  # one file reached twice (a link, a folder and a glob) is read once
            seen.add(real)
            out.append(source)

    for given in inputs:
        for source in _sources_of(given, images):
            add(source)
    return out


def _sources_of(given: str, images: bool) -> Iterator[Source]:
    """One input argument as sources: a file, a folder's files, a pattern's files, or "missing"."""
    path = Path(given)
    if path.is_file():
        yield _file_source(os.path.normpath(given), kind_of(given, images))
        return
    if path.is_dir():
        files = sorted(f for f in _walk(given) if _wanted(Path(f), images))
        what = "image or Parquet" if images else "text, JSON lines, CSV or Parquet"
        empty = f"{given}: a folder without {what} files"
    elif glob.has_magic(given):
        files, empty = sorted(_glob(given)), f"{given}: no files match"
    else:
        files, empty = [], f"{given}: no such file or folder"
    if not files:
        yield Source(os.path.normpath(given) if not glob.has_magic(given) else given, "missing", note=empty)
    for f in files:
        yield _file_source(os.path.normpath(f), kind_of(f, images))


class Packer:
    """Packs pieces into shards of `size` records (a piece may be cut where a shard fills)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.shards: list[tuple[Piece, ...]] = []
        self._pieces: list[Piece] = []
        self._filled = 0

    @property
    def room(self) -> int:
        """Records the current shard still takes."""
        return self.size - self._filled

    def add(self, piece: Piece) -> None:
        self._pieces.append(piece)
        self._filled += piece.records
        if self._filled >= self.size:
            self.close()

    def close(self) -> None:
        if self._pieces:
            self.shards.append(tuple(self._pieces))
        self._pieces, self._filled = [], 0


def _is_binary(head: bytes) -> bool:
    """NUL bytes and invalid UTF-8 in a file's first 8 kB (as `sentiment --file` decides)."""
    if b"\x00" not in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3
    return False


FIELD_PROBE = 100  # the first records of a JSON lines file looked at for the field before the job starts


def _check_field(src: Source, field_name: str) -> str:
    """An error message when none of a JSON lines file's first objects has the field (a mistyped
    --field would otherwise give one error row per line), naming the fields they have."""
    fields: dict[str, None] = {}
    objects = 0
    with open(src.path, "rb") as fh:
        for raw in itertools.islice(fh, FIELD_PROBE):
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                objects += 1
                if field_name in obj:
                    return ""
                fields.update(dict.fromkeys(str(k)[:40] for k in list(obj)[:20]))
    if not objects:
        return ""  # no objects up front: each line is reported on its own
    names = ", ".join(list(fields)[:20]) or "none"
    return f"{src.path}: no field {field_name!r} in its first {objects} records (fields: {names}); give --field NAME"


def _plan_lines(index: int, src: Source, packer: Packer) -> str:
    """Pieces of a text or JSON lines file, cut at line ends where shards fill; an error message
    for a file that cannot be read as text."""
    with open(src.path, "rb") as fh:
        if _is_binary(fh.read(8192)):
            return f"{src.path}: binary file; expected UTF-8 text, one record per line"
        fh.seek(0)
        start, first, line, offset, tail = 0, 1, 1, 0, False
        while block := fh.read(SCAN_BLOCK):
            ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
            used = 0  # newlines of this block already counted
            while len(ends) - used >= packer.room - (line - first):
                take = packer.room - (line - first)  # lines that fill the shard
                cut = offset + int(ends[used + take - 1]) + 1
                used += take
                line += take
                packer.add(Piece(index, start, first, line - first))
                start, first = cut, line
            line += len(ends) - used
            offset += len(block)
            tail = not block.endswith(b"\n")
        if tail:
            line += 1  # a last line without a newline
        if line > first:
            packer.add(Piece(index, start, first, line - first))
    return ""


def _csv_lines(fh: io.BufferedReader, counter: list[int]) -> Iterator[str]:
    """Lines of a binary file as text for the csv module (latin-1 keeps every byte, so quotes,
    commas and newlines are where they are in UTF-8); counter = [byte offset, lines read]."""
    while raw := fh.readline():
        counter[0] += len(raw)
        counter[1] += 1
        yield raw.decode("latin-1")


def _csv_records(reader: Iterator[list[str]]) -> Iterator[list[str] | csv.Error]:
    """The records of a csv reader, a malformed one as its csv.Error (the reader goes on after it)."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


def _header(path: str, column: str) -> tuple[int, int, int, str]:
    """The column's index in a CSV file's header, the header's end offset and lines; or an error."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with open(path, "rb") as fh:
        counter = [0, 0]
        reader = csv.reader(_csv_lines(fh, counter))
        try:
            header = next(reader)
        except StopIteration:
            return -1, 0, 0, f"{path}: empty file; expected CSV with a header line"
        except csv.Error as exc:
            return -1, 0, 0, f"{path}: not CSV ({exc})"
    names = [h.encode("latin-1").decode("utf-8", "replace").strip().lstrip("\ufeff") for h in header]
    if column not in names:
        return -1, 0, 0, f"{path}: no column {column!r} (columns: {', '.join(names[:20])}); give --column NAME"
    return names.index(column), counter[0], counter[1], ""


def _plan_csv(index: int, src: Source, column: str, packer: Packer) -> str:
    """Pieces of a CSV file, cut between records (quoted fields may hold newlines)."""
    _, offset, lines, problem = _header(src.path, column)
    if problem:
        return problem
    with open(src.path, "rb") as fh:
        fh.seek(offset)
        counter = [offset, lines]
        start, first, records = offset, lines + 1, 0
        for _ in _csv_records(csv.reader(_csv_lines(fh, counter))):
            records += 1
            if records == packer.room:
                packer.add(Piece(index, start, first, records))
                start, first, records = counter[0], counter[1] + 1, 0
        if records:
            packer.add(Piece(index, start, first, records))
    return ""


def _plan_parquet(index: int, src: Source, column: str, images: bool, packer: Packer) -> str:
    """One piece per row group (a row group is never cut: Parquet cannot seek inside one)."""
    pa, pq = pyarrow_modules()
    try:
        pf = pq.ParquetFile(src.path)
        meta = pf.metadata
        schema = pf.schema_arrow
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        return f"{src.path}: not a Parquet file pyarrow can read ({str(exc).splitlines()[0][:200]})"
    if column not in schema.names:
        return f"{src.path}: no column {column!r} (columns: {', '.join(schema.names[:20])}); give --column NAME"
    kind = schema.field(column).type
    ok = (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)) if images else (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_list(kind)
        or pa.types.is_large_list(kind))
    if not ok:
        return (f"{src.path}: column {column!r} holds {kind}; expected "
                f"{'image bytes' if images else 'text (or lists of steps, for feature models)'}")
    first = 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if rows:
            packer.add(Piece(index, group, first, rows))
        first += rows
    return ""


def plan(sources: list[Source], images: bool, field_name: str, column: str,
         shard_size: int) -> tuple[list[Source], list[tuple[Piece, ...]]]:
    """Shards of about `shard_size` records over the sources, in input order. Sources that cannot
    be read come back as "missing" (one error record each)."""
    packer = Packer(shard_size)
    checked = []
    for index, src in enumerate(sources):
        problem = ""
        if src.kind in ("lines", "jsonl") and src.size == 0:
            problem = f"{src.path}: empty file; expected one record per line"
        elif src.kind in ("lines", "jsonl"):
            problem = (_check_field(src, field_name) if src.kind == "jsonl" else "") or _plan_lines(index, src, packer)
        elif src.kind == "csv":
            problem = _plan_csv(index, src, column, packer)
        elif src.kind == "parquet":
            problem = _plan_parquet(index, src, column, images, packer)
        elif src.kind in ("image", "missing"):
            packer.add(Piece(index))
        if problem:
            src = Source(src.path, "missing", src.size, src.mtime_ns, problem)
            packer.add(Piece(index))
        checked.append(src)
    packer.close()
    return checked, packer.shards


def _text_record(src: str, line: int, raw: bytes, stats: ReadStats) -> Record | None:
    """A line of a text file as a record (None: a blank line, counted)."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return Record(src, line, error=f"{src}:{line}: invalid UTF-8 at byte {exc.start}; expected UTF-8 text")
    if not text.strip():
        stats.blank += 1
        return None
    if "\x00" in text:
        return Record(src, line, error=f"{src}:{line}: NUL byte in text; expected plain UTF-8 text")
    return Record(src, line, value=text)


def _json_record(src: str, line: int, raw: bytes, field_name: str, stats: ReadStats) -> Record | None:
    """A line of a JSON lines file as a record: the string at `field_name` of its object."""
    where = f"{src}:{line}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Record(src, line, error=f"{where}: invalid UTF-8 at byte {exc.start}; expected UTF-8 text")
    if not text.strip():
        stats.blank += 1
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Record(src, line, error=f"{where}: invalid JSON ({str(exc)[:120]})")
    if not isinstance(obj, dict):
        return Record(src, line, error=f"{where}: expected a JSON object with a {field_name!r} field")
    value = obj.get(field_name)
    if isinstance(value, list):  # a sequence of steps, for models that read features
        return Record(src, line, value=value)
    if not isinstance(value, str):
        problem = "no" if field_name not in obj else f"a {type(value).__name__} in the"
        return Record(src, line, error=f"{where}: {problem} field {field_name!r}; expected text (a string) "
                                       "or a list of steps")
    if "\x00" in value:
        return Record(src, line, error=f"{where}: NUL byte in text; expected plain UTF-8 text")
    return Record(src, line, value=value)


def _read_lines(src: Source, piece: Piece, field_name: str, stats: ReadStats) -> Iterator[Record]:
    with open(src.path, "rb") as fh:
        fh.seek(piece.start)
        for line in range(piece.first, piece.first + piece.records):
            raw = fh.readline(LINE_LIMIT + 1)
            stats.read += 1
            if len(raw) > LINE_LIMIT and not raw.endswith(b"\n"):
                size = len(raw) + _skip_line(fh)
                yield Record(src.path, line, error=f"{src.path}:{line}: a line of {size:,} bytes, over the "
                             f"{LINE_LIMIT:,} bytes a record may hold; split the text (edgeinfer sentiment "
                             "--file reads lines of any length)")
                continue
            rec = (_text_record(src.path, line, raw, stats) if src.kind == "lines"
                   else _json_record(src.path, line, raw, field_name, stats))
            if rec is not None:
                yield rec


def _skip_line(fh: io.BufferedReader) -> int:
    """Read past the rest of a line in pieces; the bytes skipped."""
    skipped = 0
    while piece := fh.readline(SCAN_BLOCK):
        skipped += len(piece)
        if piece.endswith(b"\n"):
            break
    return skipped


def _read_csv(src: Source, piece: Piece, column: str, stats: ReadStats) -> Iterator[Record]:
    index, _, _, problem = _header(src.path, column)
    if problem:  # the file changed since the plan
        yield Record(src.path, error=problem)
        return
    with open(src.path, "rb") as fh:
        fh.seek(piece.start)
        counter = [piece.start, piece.first - 1]
        records = _csv_records(csv.reader(_csv_lines(fh, counter)))
        for _ in range(piece.records):
            line = counter[1] + 1
            fields = next(records, None)
            if fields is None:
                return
            stats.read += 1
            if isinstance(fields, csv.Error):
                yield Record(src.path, line, error=f"{src.path}:{line}: not CSV ({fields})")
                continue
            if not fields:
                stats.blank += 1
                continue
            if index >= len(fields):
                yield Record(src.path, line, error=f"{src.path}:{line}: no field for column {column!r}")
                continue
            try:
                text = fields[index].encode("latin-1").decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Record(src.path, line, error=f"{src.path}:{line}: invalid UTF-8 at byte {exc.start} of "
                                                  f"column {column!r}; expected UTF-8 text")
                continue
            if "\x00" in text:
                yield Record(src.path, line, error=f"{src.path}:{line}: NUL byte in text; expected plain UTF-8 text")
                continue
            yield Record(src.path, line, value=text)


def _read_parquet(src: Source, piece: Piece, column: str, images: bool, stats: ReadStats) -> Iterator[Record]:
    _, pq = pyarrow_modules()
    row = piece.first
    try:
        batches = pq.ParquetFile(src.path).iter_batches(batch_size=PARQUET_BATCH, row_groups=[piece.start],
                                                        columns=[column])
        for batch in batches:
            col = batch.column(0)
            try:
                values: list[Any] | None = col.to_pylist()
            except Exception:  # a value pyarrow cannot convert (invalid UTF-8): row by row, to name it
                values = None
            for i in range(len(col)):
                stats.read += 1
                yield _parquet_record(src.path, row, column, col, i, values)
                row += 1
    except Exception as exc:  # a page that cannot be decoded: every row of the piece not yet read is an error row
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        for r in range(row, piece.first + piece.records):
            stats.read += 1
            yield Record(src.path, row=r, error=f"{src.path}#{r}: cannot read ({why})")


def _parquet_record(path: str, row: int, column: str, col: Any, i: int, values: list[Any] | None) -> Record:
    """Row `i` of a decoded Parquet column as a record (an error record naming the row)."""
    if values is None:
        try:
            value = col.slice(i, 1).to_pylist()[0]
        except Exception as exc:
            why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            return Record(path, row=row, error=f"{path}#{row}: cannot read the value ({why})")
    else:
        value = values[i]
    if value is None:
        return Record(path, row=row, error=f"{path}#{row}: null in column {column!r}")
    if isinstance(value, str) and "\x00" in value:
        return Record(path, row=row, error=f"{path}#{row}: NUL byte in text; expected plain text")
    return Record(path, row=row, value=value)


def read_piece(sources: Sequence[Source], piece: Piece, images: bool, field_name: str, column: str,
               stats: ReadStats) -> Iterator[Record]:
    """The records of one piece, in order (blank lines skipped and counted in `stats`)."""
    src = sources[piece.source]
    if src.kind == "missing":
        stats.read += 1
        yield Record(src.path, error=src.note)
    elif src.kind == "image":
        stats.read += 1
        yield Record(src.path, value=Path(src.path))
    elif src.kind in ("lines", "jsonl"):
        yield from _read_lines(src, piece, field_name, stats)
    elif src.kind == "csv":
        yield from _read_csv(src, piece, column, stats)
    elif src.kind == "parquet":
        yield from _read_parquet(src, piece, column, images, stats)
    else:
        raise ValueError(f"unknown source kind {src.kind!r}")


__all__ = ["IMAGE_SUFFIXES", "INSTALL_PYARROW", "TEXT_KINDS", "Packer", "Piece", "ReadStats", "Record", "Source",
           "expand", "kind_of", "plan", "pyarrow_modules", "read_piece"]
