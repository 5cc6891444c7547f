"""`edgeinfer run MODEL [FILE|-]`: a live stream from lines, one time step per line, answers as they come.

A line holds one step: numbers separated by commas, tabs or spaces, or a JSON array (features and
image rows; raw features, normalised by the model's spec), or one token id (token models). A blank
line ends the sequence: the state goes back to the start. Each step's answer is printed (and
flushed) as soon as its line has been read, so `tail -f sensor.csv | edgeinfer run model.onnx -`
shows answers live; a first line of names (a CSV header) is skipped. A bad line is one error line
naming it; the run skips it (the state stays as
it was) and goes on, or stops there with `--stop-on-error`; the exit code is then 1. With
`--early-exit P` a sequence is answered as soon as its top probability reaches P, and the rest of
its lines (up to the blank line) are skipped.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgeinfer.cli.args import Exit, Parser, add_json, add_provider, describe, finite, runs, whole
from edgeinfer.cli.render import emit_json, fail, show
from edgeinfer.errors import InputError, UnreadableInput
from edgeinfer.model import Model
from edgeinfer.spec import ModelSpec
from edgeinfer.stream import Stream

MAX_LINE_BYTES = 1 << 20  # a longer line is an error (the rest of it is skipped), never unbounded memory
SEPARATORS = str.maketrans({",": " ", "\t": " ", ";": " "})


def parse_step(text: str, spec: ModelSpec) -> np.ndarray | int:
    """One line as one step: a float32 row (F,) or a token id; InputError saying what is wrong."""
    text = text.strip()
    if spec.reads_tokens:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if type(value) is not int:
            raise InputError(f"expected one token id (an integer) per line, got {text[:40]!r}")
        return value
    if text.startswith("["):
        try:
            raw: Any = json.loads(text, parse_constant=lambda name: float("nan"))
        except ValueError as exc:
            raise InputError(f"not a JSON array of numbers ({exc.args[0][:60]})") from None
        if not isinstance(raw, list) or not all(isinstance(v, (int, float)) and type(v) is not bool for v in raw):
            raise InputError("expected a JSON array of numbers")
        values = [float(v) for v in raw]
    else:
        try:
            values = [float(v) for v in text.translate(SEPARATORS).split()]
        except ValueError:
            bad = next(v for v in text.translate(SEPARATORS).split() if not _is_number(v))
            raise InputError(f"{bad[:40]!r} is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError("NaN or infinite value; expected finite numbers")
    if len(values) != spec.input_size:
        raise InputError(f"{len(values)} values; the model reads {spec.input_size} per step")
    return np.asarray(values, np.float32)


def is_header(text: str) -> bool:
    """A first line of names and no numbers: a CSV header, skipped."""
    cells = [c.strip().strip('"') for c in text.translate(SEPARATORS).split()]
    return bool(cells) and not text.lstrip().startswith("[") and not any(_is_number(c) for c in cells)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render(spec: ModelSpec, answers: np.ndarray, sequence: int, step: int, as_json: bool, sure: bool = False) -> None:
    """One step's answers on one line: the label and its probability (classes) or name=value (values);
    `sure`: the early-exit answer of its sequence."""
    names = spec.labels
    if spec.gives_classes:
        best = int(answers.argmax())
        if as_json:
            emit_json({"sequence": sequence, "step": step, "label": names[best],
                       "probability": round(float(answers[best]), 6),
                       "probabilities": {n: round(float(v), 6) for n, v in zip(names, answers.tolist(), strict=True)},
                       **({"early_exit": True} if sure else {})})
        else:
            mark = " (sure: early exit)" if sure else ""
            show(f"{sequence}:{step} {names[best]} {float(answers[best]):.3f}{mark}")
    elif as_json:
        emit_json({"sequence": sequence, "step": step,
                   "values": {n: round(float(v), 6) for n, v in zip(names, answers.tolist(), strict=True)}})
    else:
        show(f"{sequence}:{step} " + " ".join(f"{n}={float(v):.6g}" for n, v in zip(names, answers.tolist(),
                                                                                      strict=True)))
    sys.stdout.flush()


def _lines(fh: IO[bytes]) -> Any:
    """(line bytes or None when too long) as they arrive."""
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the long line
                rest = fh.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
        else:
            yield line


def run_lines(model: Model, fh: IO[bytes], name: str, every: int, as_json: bool, stop_on_error: bool,
              early_exit: float | None = None) -> int:
    """Stream the lines of `fh` through `model`; returns the exit code (0, or 1 after a bad line).

    With `early_exit`, a sequence whose top probability reaches it is answered there (marked) and
    its remaining lines are skipped up to the blank line that ends it."""
    stream: Stream = model.stream()
    sequence, bad = 1, 0
    done = False  # the sequence was answered early: skip to its end
    for number, raw in enumerate(_lines(fh), start=1):
        if done and raw is not None and raw.strip():
            continue
        try:
            if raw is None:
                raise InputError(f"line longer than {MAX_LINE_BYTES >> 20} MB")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text") from None
            if number == 1 and not model.spec.reads_tokens and is_header(text):
                continue  # a CSV's header: names, no numbers
            if not text.strip():
                if stream.steps or done:
                    stream.reset()
                    sequence += 1
                done = False
                continue
            answers = stream.step(parse_step(text, model.spec))
        except InputError as exc:
            fail(f"{name}:{number}: {exc}")
            bad += 1
            if stop_on_error:
                return 1
            continue
        if early_exit is not None and float(answers.max()) >= early_exit:
            render(model.spec, answers, sequence, stream.steps, as_json, sure=True)
            done = True
        elif stream.steps % every == 0:
            render(model.spec, answers, sequence, stream.steps, as_json)
    return 1 if bad else 0


def configure(p: Parser) -> None:
    """`edgeinfer run MODEL [SOURCE]`."""
    p.description = describe(run)
    p.add_argument("model", help="model file or built-in name")
    p.add_argument("source", nargs="?", default="-", help="a file of lines, one step each, or - for stdin (default)")
    p.add_argument("--every", type=whole(1), default=1, metavar="N", help="print every Nth step's answer (default 1)")
    add_json(p, "one JSON object per answer")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first bad line")
    p.add_argument("--early-exit", type=finite, metavar="P",
                   help="answer a sequence as soon as its top probability reaches P, skip the rest of it")
    add_provider(p)
    runs(p, run)


def run(model: str, source: str = "-", every: int = 1, as_json: bool = False, stop_on_error: bool = False,
        early_exit: float | None = None, provider: str | None = None) -> None:
    """Run a model live on lines of steps: numbers per line (comma, tab or space separated, or a JSON
    array), a blank line ends a sequence. Prints each step's answer as soon as its line arrives."""
    m = Model(model, provider)
    if early_exit is not None:
        if not 0.0 < early_exit <= 1.0:
            raise InputError(f"--early-exit {early_exit}; expected a probability in (0, 1]")
        if not m.spec.gives_classes:
            raise InputError(f"{model}: --early-exit needs class probabilities; this model gives values")
    if source == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise InputError("stdin is closed; pipe the steps in, or give a file name")
        code = run_lines(m, sys.stdin.buffer, "stdin", every, as_json, stop_on_error, early_exit)
    else:
        path = Path(source)
        try:
            with path.open("rb") as fh:
                code = run_lines(m, fh, source, every, as_json, stop_on_error, early_exit)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise UnreadableInput(f"{source}: cannot read ({exc.strerror})") from None
    if code:
        raise Exit(code)


__all__ = ["parse_step", "render", "run", "run_lines"]
