"""Output rendering for the command line, in one place: error lines, JSON lines, spec summaries."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from edgeinfer.spec import CharInput, FeatureInput, ModelSpec, TextInput

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_CONTROL |= {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}  # C1 controls
# line and paragraph separators and every bidirectional control (they reorder what a terminal
# shows: a file name could display as another), and lone surrogates (a file name's bytes that are
# not UTF-8, which a terminal's encoding cannot print)
_CONTROL |= {c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                      *range(0x2066, 0x206A), *range(0xD800, 0xE000))}


def safe(text: str) -> str:
    """Text from a model file or an input, with control characters escaped (so a label or a
    vocabulary entry can never drive the terminal: escape sequences, bells, line breaks)."""
    return text.translate(_CONTROL)


def fail(message: str) -> None:
    """One error line on stderr (control characters escaped)."""
    print(f"error: {safe(message)}", file=sys.stderr)


def warn(message: str) -> None:
    """One warning line on stderr (control characters escaped)."""
    print(f"warning: {safe(message)}", file=sys.stderr)


def emit_json(record: dict[str, Any], indent: int | None = None) -> None:
    """One JSON object on stdout (a line, unless indented)."""
    print(json.dumps(record, indent=indent, allow_nan=False))


def show(line: str) -> None:
    """One line of results on stdout, control characters escaped."""
    print(safe(line))


def digit_result(name: str, best: list[tuple[str, float]], rows: int | None, of_rows: int, as_json: bool,
                 unclear: bool = False) -> None:
    """`classify image`: a file's most likely digits (and rows read, with early exit; "(unclear)"
    after an answer on an image that does not look like a digit on paper)."""
    if as_json:
        extra = {} if rows is None else {"rows": rows, "of_rows": of_rows}
        emit_json({"file": name, "label": best[0][0], "probability": round(best[0][1], 6),
                   "top": [{"label": lab, "probability": round(pr, 6)} for lab, pr in best], **extra,
                   "unclear": unclear})
    else:
        after = "" if rows is None else f" after {rows}/{of_rows} rows"
        flag = " (unclear)" if unclear else ""
        show(f"{name}: " + ", ".join(f"{lab} ({pr:.3f})" for lab, pr in best) + after + flag)


def score_result(file: str, chars: int, nats: float, as_json: bool) -> None:
    """`score`: nats and bits per character."""
    bits = nats / math.log(2)
    if as_json:
        emit_json({"file": file, "chars": chars, "nats_per_char": nats, "bits_per_char": bits})
    else:
        show(f"{file}: {nats:.4f} nats/char, {bits:.4f} bits/char over {chars:,} characters")


def model_line(name: str, spec: ModelSpec, size: int) -> None:
    """`models`: one built-in model on one line."""
    acc, loss = spec.metrics.get("test_accuracy"), spec.metrics.get("val_loss")
    extra = (f", test accuracy {acc:.2%}" if isinstance(acc, float) else
             f", validation loss {loss:.4f} nats/char" if isinstance(loss, float) else "")
    show(f"{name}: {describe_kind(spec)}, {spec.cell} x{spec.layers} hidden {spec.hidden}, {spec.precision}{extra}, "
         f"{size:,} bytes")


def describe_kind(spec: ModelSpec) -> str:
    """What a model reads and gives, in a few words: "features -> classes per sequence"."""
    return f"{spec.input.kind} -> {spec.output.kind} per {spec.output.per}"


def preview(text: str, width: int = 60) -> str:
    """The start of a text on one line, at most `width` characters."""
    flat = " ".join(text[: width * 4].split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def describe_readout(spec: ModelSpec) -> str:
    """What the head reads besides the last hidden state, for `info`."""
    parts = []
    if spec.readout.pool:
        parts.append("mean and max of the hidden states")
    if spec.readout.ngram_buckets:
        pooled = "summed weights" if spec.readout.ngram_pool == "sum" else "mean weight"
        parts.append(f"{pooled} of the hashed word 1-{spec.readout.ngram_order}-grams "
                     f"({spec.readout.ngram_buckets:,} buckets per order >= 2)")
    text = f"; the head also reads the {' and '.join(parts)}" if parts else ""
    if spec.readout.short_hidden:
        text += (f"; a short-text branch ({spec.cell} x1, hidden {spec.readout.short_hidden}) answers texts of a "
                 f"few words, the main head from about {spec.readout.short_words:g} words on")
    return text


def describe_input(spec: ModelSpec) -> str:
    """The input and its preprocessing, as the spec gives them, for `info`."""
    inp = spec.input
    if isinstance(inp, CharInput):
        return (f"characters, one per step: {len(inp.vocab)}-character vocabulary + padding ({inp.pad_id}) "
                f"and unknown ({inp.unk_id}); embedding width {spec.input_size}")
    if isinstance(inp, TextInput):
        case = "lower-cased" if inp.lowercase else "case kept"
        return (f"words, one per step: {len(inp.vocab):,}-word vocabulary + padding ({inp.pad_id}) and unknown "
                f"({inp.unk_id}); {case}, <br /> removed; embedding width {spec.input_size}")
    if isinstance(inp, FeatureInput):
        names = f" ({', '.join(inp.names[:8])}{', ...' if len(inp.names) > 8 else ''})" if inp.names else ""
        norm = "normalised per feature as (x - mean) / std" if inp.mean else "read as given"
        return f"{inp.size} features per step{names}, {norm}"
    return (f"{inp.rows} steps of {inp.cols} features; pixels x{inp.scale:.6g}, (x - {inp.mean}) / {inp.std}; "
            f"digit fitted to {inp.fit_px}x{inp.fit_px}")


def describe_spec(spec: ModelSpec, file_line: str, sessions: str = "") -> list[str]:
    """The `info` summary of a spec, one aspect per line."""
    tokens = spec.reads_tokens
    io = spec.io
    io_x = "(B, T) int64" if tokens else f"(B, T, {spec.input_size})"
    io_step = "(B,) int64" if tokens else f"(B, {spec.input_size})"
    io_len = f", {io.lengths} (B,) int64" if io.lengths else ""
    state = ", ".join(f"{s.name}->{s.output} ({s.layers}, B, {s.hidden}) {s.dtype}={s.initial:g}" for s in spec.state)
    shown = ", ".join(spec.labels[:20]) + (", ..." if spec.classes > 20 else "")
    task = (f"{spec.classes} classes: next character over the vocabulary" if isinstance(spec.input, CharInput)
            else f"labels {shown}" if spec.gives_classes else f"values {shown}")
    probs = f", step also {io.step_probabilities} (B, {spec.classes}) = softmax" if io.step_probabilities else ""
    metrics = ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in spec.metrics.items())
    provenance = ", ".join(f"{k} {v}" for k, v in spec.provenance.items()
                           if k not in ("config", "train_args", "stack"))
    lines = [
        f"file          {file_line}",
        f"answers       {describe_kind(spec)}; {task}",
        f"input         {describe_input(spec)}",
        f"model         {spec.cell} x{spec.layers}, hidden {spec.hidden}" + describe_readout(spec),
        f"state         {state}",
        f"graphs        sequence {io.seq_input} {io_x}{io_len}; step {io.step_input} {io_step}; "
        f"output {io.output} (B, {'T, ' if spec.per_step else ''}{spec.classes}){probs}; opset {spec.opset}",
        f"precision     {spec.precision}" + (f" ({spec.quantization})" if spec.precision != "fp32" else ""),
        f"metrics       {metrics}",
        f"provenance    {provenance}",
        f"format        {spec.format_version}",
    ] + ([f"sessions      both graphs loaded on {sessions}"] if sessions else [])
    return lines
