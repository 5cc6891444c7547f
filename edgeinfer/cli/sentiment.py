"""`edgeinfer sentiment`: each text's sentiment, from arguments, stdin or a file of lines."""
from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from edgeinfer.cli.options import ModelOpt, ProviderOpt
from edgeinfer.cli.render import emit_json, fail, preview, safe
from edgeinfer.errors import InputError
from edgeinfer.model import Model

READ_CHUNK = 1 << 16  # characters per read when streaming stdin


def _verdict(m: Model, probs: np.ndarray) -> tuple[str, float]:
    label = m.spec.labels[int(np.argmax(probs))]
    return label, float(probs[m.spec.labels.index("positive")])


def _answer(m: Model, chunks: Iterator[str], what: str, as_json: bool, trace: bool,
            extra: dict[str, Any]) -> bool:
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
                   **({"trace": steps} if trace else {})})
    else:
        print(f"{safe(label)} ({positive:.3f}): " + safe(extra.get("preview", what)))
    return True


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        yield from enumerate(fh, 1)


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


def _answer_file(m: Model, path: Path, as_json: bool, trace: bool) -> bool:
    """One text per line. Blank lines are skipped (counted on stderr); a line that cannot be read
    (invalid UTF-8, a NUL byte) is an error naming FILE:LINE and the others are still answered;
    an empty file, or a binary one, is an error."""
    if path.is_dir():
        fail(f"{path}: a directory; expected a UTF-8 text file, one text per line")
        return False
    if not path.is_file():
        fail(f"{path}: no such file")
        return False
    if path.stat().st_size == 0:
        fail(f"{path}: empty file; expected one text per line")
        return False
    if _is_binary(path):
        fail(f"{path}: binary file; expected UTF-8 text, one text per line")
        return False
    total = sum(1 for _ in _lines(path))
    ok, blank = True, 0
    show = sys.stderr.isatty() and not trace
    with typer.progressbar(_lines(path), length=total, label="reviews", file=sys.stderr, hidden=not show) as bar:
        for number, raw in bar:
            what = f"{path}:{number}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                fail(f"{what}: invalid UTF-8 at byte {exc.start}; expected UTF-8 text")
                ok = False
                continue
            if not line.strip():
                blank += 1
                continue
            ok &= _answer(m, iter([line]), what, as_json, trace, {"line": number})
    if blank:
        print(f"{path}: skipped {blank:,} blank line{'s' if blank > 1 else ''}", file=sys.stderr)
    if blank == total:
        fail(f"{path}: no texts (every line is blank); expected one text per line")
        return False
    return ok


def sentiment(
    texts: Annotated[list[str] | None, typer.Argument(help="texts to classify; - reads one text from stdin")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="a UTF-8 file, one text per line")] = None,
    model: ModelOpt = "sentiment",
    provider: ProviderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per text")] = False,
    trace: Annotated[bool, typer.Option("--trace", help="print the running probability word by word")] = False,
) -> None:
    """Print each text's sentiment and its probability of being positive."""
    if not texts and file is None:
        raise typer.BadParameter("give TEXT arguments, - for stdin, or --file FILE")
    if (texts or []).count("-") > 1:
        raise typer.BadParameter("stdin holds one text: give - at most once")
    m = Model(model, provider)
    m.require_task("sentiment")
    ok = True
    for index, text in enumerate(texts or []):
        if text == "-":
            ok &= _answer_stdin(m, index, as_json, trace)
        else:
            ok &= _answer(m, iter([text]), f"text {index + 1}", as_json, trace,
                          {"index": index, "preview": preview(text)})
    if file is not None:
        ok &= _answer_file(m, file, as_json, trace)
    if not ok:
        raise typer.Exit(1)
