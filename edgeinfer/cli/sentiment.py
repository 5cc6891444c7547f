"""`edgeinfer sentiment`: each text's sentiment, from arguments, stdin or a file of lines."""
from __future__ import annotations

import codecs
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edgeinfer.cli.args import Exit, Parser, UsageError, add_json, add_model, describe, runs
from edgeinfer.cli.progress import Bar
from edgeinfer.cli.render import emit_json, fail, preview, safe, warn
from edgeinfer.errors import InputError
from edgeinfer.model import Model
from edgeinfer.spec import TextInput
from edgeinfer.tasks.sentiment import CHUNK_CHARS, CHUNK_TEXTS, classify_texts

READ_CHUNK = 1 << 16  # characters per read when streaming stdin


def _verdict(m: Model, probs: np.ndarray) -> tuple[str, float]:
    label = m.spec.labels[int(np.argmax(probs))]
    return label, float(probs[m.spec.labels.index("positive")])


def _answer(m: Model, chunks: Iterator[str], what: str, as_json: bool, trace: bool,
            extra: dict[str, Any], shown: Callable[[], str] | None = None) -> bool:
    """Stream one text through the model and print its verdict; False if it could not be read.

    With --trace, each word's running probability is printed as it is read (`word<TAB>p`), or,
    with --json, collected into the object's "trace" list.
    """
    stream = m.text_stream()
    steps: list[dict[str, Any]] = []

    def show(pieces: Iterator[tuple[str, np.ndarray]]) -> None:
        for word, probs in pieces:
            positive = _verdict(m, probs)[1]
            if as_json:
                steps.append({"word": word, "positive": round(positive, 6)})
            else:
                print(f"{safe(word)}\t{positive:.4f}")

    for chunk in chunks:
        if "\x00" in chunk:
            fail(f"{what}: NUL byte in text; expected plain UTF-8 text")
            return False
        if trace:
            show(stream.trace(chunk, final=False))
        else:
            stream.feed(chunk)
    if trace:
        show(stream.trace("", final=True))
    try:
        stream.finish()
    except InputError:
        fail(f"{what}: empty text (no words); expected at least one word")
        return False
    label, positive = _verdict(m, stream.probabilities)
    if as_json:
        emit_json({**extra, "label": label, "positive": round(positive, 6), "words": stream.words,
                   "known": round(stream.coverage, 4), "low_coverage": stream.low_coverage,
                   **({"trace": steps} if trace else {})})
    else:
        print(f"{safe(label)} ({positive:.3f}): " + safe(shown() if shown else what))
    if stream.low_coverage:
        warn_low_coverage(what, stream.known_words, stream.words)
    return True


def warn_low_coverage(what: str, known: int, words: int) -> None:
    """The stderr line for an answer that rests on too little the model knows."""
    warn(f"{what}: only {known} of {words} word{'s' if words > 1 else ''} in the model's vocabulary; "
         "the answer is little more than a guess")


LONG_LINE_BYTES = 1 << 20  # a longer line is read and classified in pieces: memory stays bounded


class _LongLine:
    """A line longer than LONG_LINE_BYTES, read from the file piece by piece as it is consumed."""

    def __init__(self, fh: BinaryIO, first: bytes) -> None:
        self._fh, self._first, self._ended = fh, first, False

    def pieces(self) -> Iterator[bytes]:
        """The line's bytes, in pieces of at most LONG_LINE_BYTES (the last ends with its newline)."""
        if self._first:
            first, self._first = self._first, b""
            yield first
        while not self._ended:
            piece = self._fh.readline(LONG_LINE_BYTES)
            self._ended = not piece or piece.endswith(b"\n")
            if piece:
                yield piece

    def drain(self) -> None:
        """Skip what is left of the line."""
        for _ in self.pieces():
            pass


def _lines(path: Path) -> Iterator[tuple[int, bytes | _LongLine]]:
    """(line number, the line's bytes), or a _LongLine for a line over LONG_LINE_BYTES: the file is
    never held whole, nor is a long line."""
    with open(path, "rb") as fh:
        number = 0
        while raw := fh.readline(LONG_LINE_BYTES):
            number += 1
            if len(raw) == LONG_LINE_BYTES and not raw.endswith(b"\n"):
                line = _LongLine(fh, raw)
                yield number, line
                line.drain()
            else:
                yield number, raw


def _answer_long_line(m: Model, line: _LongLine, path: Path, number: int, as_json: bool, trace: bool) -> bool:
    """One line over LONG_LINE_BYTES: decoded and read piece by piece through a TextStream, its
    answer printed as the other lines' are (JSON: "line", the text's start, ...)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    where = f"{path}:{number}"
    extra: dict[str, Any] = {"line": number, "text": ""}
    start: list[str] = []
    seen = [0]

    def chunks() -> Iterator[str]:
        pieces = line.pieces()
        for piece in pieces:
            last = piece.endswith(b"\n")
            text = decoder.decode(piece.rstrip(b"\r\n") if last else piece, final=last)
            seen[0] += len(piece)
            if len(extra["text"]) < JSON_TEXT_CHARS:
                start.append(text[:JSON_TEXT_CHARS])
                extra["text"] = "".join(start)[:JSON_TEXT_CHARS]
            yield text
        yield decoder.decode(b"", final=True)

    try:
        answered = _answer(m, chunks(), where, as_json, trace, extra, lambda: f"{where}  {preview(extra['text'])}")
    except UnicodeDecodeError as exc:
        line.drain()
        fail(f"{where}: invalid UTF-8 at byte {seen[0] + exc.start}; expected UTF-8 text")
        return False
    return answered


def _answer_stdin(m: Model, index: int, as_json: bool, trace: bool) -> bool:
    if sys.stdin is None or sys.stdin.closed:
        raise InputError("stdin is closed; pipe a text in, or give the text as an argument")
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict")
    try:
        return _answer(m, iter(lambda: stdin.read(READ_CHUNK), ""), "stdin", as_json, trace,
                       {"index": index, "source": "stdin"})
    except UnicodeDecodeError as exc:
        fail(f"stdin: invalid UTF-8 at byte {exc.start} of a chunk; expected UTF-8 text")
        return False
    finally:
        stdin.detach()  # leave sys.stdin's buffer open


def _is_binary(path: Path) -> bool:
    """A file whose first 8 kB hold NUL bytes and are not UTF-8 text is binary."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if b"\x00" not in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3  # a character cut at the 8 kB boundary is not binary
    return False


def _count_lines(path: Path) -> int:
    """Lines in a file (a last line without a newline counts), read in blocks."""
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


JSON_TEXT_CHARS = 200  # `sentiment --file --json`: a text's first characters in its row (all of a shorter one)


class _FileAnswers:
    """`sentiment --file` without --trace: lines read in bounded chunks and classified together
    (`classify_texts`: sorted by length, batched, every core), printed in line order as
    `_answer` prints one text. Errors name FILE:LINE on stderr, in line order too."""

    def __init__(self, m: Model, path: Path, as_json: bool) -> None:
        self.m, self.as_json = m, as_json
        self.where = safe(str(path))
        self.positive = m.spec.labels.index("positive")
        self.labels = [json.dumps(label) if as_json else safe(label) for label in m.spec.labels]
        self.items: list[tuple[int, str]] = []  # (line, text or an error message)
        self.texts: list[str] = []
        self.chars = 0
        self.ok = True

    def add(self, number: int, text: str, error: str = "") -> None:
        if error:
            self.items.append((-number, error))
        else:
            self.items.append((number, text))
            self.texts.append(text)
            self.chars += len(text)
        if len(self.texts) >= CHUNK_TEXTS or self.chars >= CHUNK_CHARS:
            self.flush()

    def flush(self) -> None:
        got = classify_texts(self.m, self.texts) if self.texts else None
        best = got.probabilities.argmax(axis=1).tolist() if got is not None else []
        positive = got.probabilities[:, self.positive].tolist() if got is not None else []
        words = got.words.tolist() if got is not None else []
        known = got.known.tolist() if got is not None else []
        low = got.low_coverage.tolist() if got is not None else []
        errors = got.errors if got is not None else {}
        labels, where, texts = self.labels, self.where, self.texts
        out: list[str] = []
        k = 0
        for number, text in self.items:
            if number < 0 or k in errors:  # an error found while reading, or by the model
                self._emit(out)
                fail(f"{where}:{abs(number)}: {text if number < 0 else errors[k]}")
                self.ok = False
            elif self.as_json:
                coverage = round(known[k] / words[k], 4)
                out.append(f'{{"line": {number}, "text": {json.dumps(texts[k][:JSON_TEXT_CHARS])}, '
                           f'"label": {labels[best[k]]}, "positive": {round(positive[k], 6)!r}, '
                           f'"words": {words[k]}, "known": {coverage!r}, "low_coverage": {json.dumps(low[k])}}}\n')
            else:
                out.append(f"{labels[best[k]]} ({positive[k]:.3f}): {where}:{number}  {safe(preview(texts[k]))}\n")
            if number > 0 and k not in errors and low[k]:
                self._emit(out)
                warn_low_coverage(f"{where}:{number}", known[k], words[k])
            k += number > 0
        self._emit(out)
        self.items, self.texts, self.chars = [], [], 0

    @staticmethod
    def _emit(out: list[str]) -> None:
        if out:
            sys.stdout.write("".join(out))
            out.clear()


def _file_problem(path: Path) -> str:
    """Why a --file cannot be read at all ("" if it can)."""
    if path.is_dir():
        return "a directory; expected a UTF-8 text file, one text per line"
    if not path.is_file():
        return "no such file"
    if path.stat().st_size == 0:
        return "empty file; expected one text per line"
    if _is_binary(path):
        return "binary file; expected UTF-8 text, one text per line"
    return ""


def _answer_file(m: Model, path: Path, as_json: bool, trace: bool) -> bool:
    """One text per line. Blank lines are skipped (counted on stderr); a line that cannot be read
    (invalid UTF-8, a NUL byte, no words) is an error naming FILE:LINE and the others are still
    answered; an empty file, or a binary one, is an error. Without --trace the lines go through
    the bulk path (`_FileAnswers`); with it, each line is traced word by word."""
    problem = _file_problem(path)
    if problem:
        fail(f"{path}: {problem}")
        return False
    show = sys.stderr.isatty() and not trace
    total = _count_lines(path) if show else 0
    ok, blank, lines = True, 0, 0
    answers = _FileAnswers(m, path, as_json)
    with Bar(total, "reviews", show) as bar:
        for number, raw in _lines(path):
            lines = number
            if show and number % 1024 == 0:
                bar.update(1024)
            if isinstance(raw, _LongLine):
                answers.flush()
                ok &= _answer_long_line(m, raw, path, number, as_json, trace)
                continue
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                answers.add(number, "", f"invalid UTF-8 at byte {exc.start}; expected UTF-8 text")
                continue
            if not line.strip():
                blank += 1
            elif trace:
                answers.flush()
                ok &= _answer(m, iter([line]), f"{path}:{number}", as_json, trace, {"line": number})
            elif "\x00" in line:
                answers.add(number, "", "NUL byte in text; expected plain UTF-8 text")
            else:
                answers.add(number, line)
        answers.flush()
        bar.update(lines - bar.done)  # the lines since the last thousand and twenty-four: the bar ends full
    ok &= answers.ok
    if blank:
        print(safe(f"{path}: skipped {blank:,} blank line{'s' if blank > 1 else ''}"), file=sys.stderr)
    if blank == lines:
        fail(f"{path}: no texts (every line is blank); expected one text per line")
        return False
    return ok


def configure(p: Parser) -> None:
    """`edgeinfer sentiment TEXT... | - | --file FILE`."""
    p.description = describe(sentiment)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify; - reads one text from stdin")
    p.add_argument("--file", "-f", type=Path, help="a UTF-8 file, one text per line")
    add_model(p, "sentiment")
    add_json(p, "one JSON object per text")
    p.add_argument("--trace", action="store_true", help="print the running probability word by word")
    runs(p, sentiment)


def sentiment(texts: list[str] | None = None, file: Path | None = None, model: str = "sentiment",
              provider: str | None = None, as_json: bool = False, trace: bool = False) -> None:
    """Print each text's sentiment and its probability of being positive."""
    if not texts and file is None:
        raise UsageError("give TEXT arguments, - for stdin, or --file FILE", "edgeinfer sentiment")
    if (texts or []).count("-") > 1:
        raise UsageError("stdin holds one text: give - at most once", "edgeinfer sentiment")
    m = Model(model, provider)
    m.require_input(TextInput)
    ok = True
    for index, text in enumerate(texts or []):
        if text == "-":
            ok &= _answer_stdin(m, index, as_json, trace)
        else:
            start = preview(text)
            ok &= _answer(m, iter([text]), f"text {index + 1}", as_json, trace,
                          {"index": index, "preview": start}, start.__str__)
    if file is not None:
        ok &= _answer_file(m, file, as_json, trace)
    if not ok:
        raise Exit(1)
