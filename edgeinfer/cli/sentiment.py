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
from edgeinfer.cli.render import emit_json, fail, preview
from edgeinfer.errors import InputError
from edgeinfer.model import Model

READ_CHUNK = 1 << 16  # characters per read when streaming stdin


def _verdict(m: Model, probs: np.ndarray) -> tuple[str, float]:
    label = m.spec.labels[int(np.argmax(probs))]
    return label, float(probs[m.spec.labels.index("positive")])


def _answer(m: Model, chunks: Iterator[str], what: str, as_json: bool, trace: bool,
            extra: dict[str, Any]) -> bool:
    """Stream one text through the model and print its verdict; False if it had no words."""
    stream = m.text_stream()
    for chunk in chunks:
        if "\x00" in chunk:
            fail(f"{what}: NUL byte in text; expected plain UTF-8 text")
            return False
        if trace:
            for word, probs in stream.trace(chunk, final=False):
                print(f"{word}\t{_verdict(m, probs)[1]:.4f}")
        else:
            stream.feed(chunk)
    if trace:
        for word, probs in stream.trace("", final=True):
            print(f"{word}\t{_verdict(m, probs)[1]:.4f}")
    try:
        stream.finish()
    except InputError:
        fail(f"{what}: empty text (no words); expected at least one word")
        return False
    label, positive = _verdict(m, stream.probabilities)
    if as_json:
        emit_json({**extra, "label": label, "positive": round(positive, 6), "words": stream.words})
    else:
        print(f"{label} ({positive:.3f}): " + (extra.get("preview", what)))
    return True


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        yield from enumerate(fh, 1)


def _answer_stdin(m: Model, index: int, as_json: bool, trace: bool) -> bool:
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict")
    try:
        return _answer(m, iter(lambda: stdin.read(READ_CHUNK), ""), "stdin", as_json, trace,
                       {"index": index, "source": "stdin"})
    except UnicodeDecodeError as exc:
        fail(f"stdin: invalid UTF-8 at byte {exc.start} of a chunk; expected UTF-8 text")
        return False


def _answer_file(m: Model, path: Path, as_json: bool, trace: bool) -> bool:
    """One text per line; bad lines are reported and the others still answered."""
    if not path.is_file():
        fail(f"{path}: no such file")
        return False
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head:
        fail(f"{path}: binary file; expected UTF-8 text, one text per line")
        return False
    total = sum(1 for _ in _lines(path))
    ok = True
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
            ok &= _answer(m, iter([line]), what, as_json, trace, {"line": number})
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
