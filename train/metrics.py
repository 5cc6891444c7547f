"""The metrics log: one JSON object per line in OUT/metrics.jsonl.

`append_metrics` adds a line (the one-shot stages: ngrams, stack). The training loops log each
finished epoch with `log_epoch`, after that epoch's checkpoint is saved, and begin every run with
`sync_metrics`, so that after any interruption and `--resume` the log holds each epoch the
checkpoint has completed exactly once, and nothing else.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgeinfer.atomic import write_atomic

METRICS = "metrics.jsonl"


def append_metrics(out: Path, record: dict[str, Any], echo: bool = True) -> None:
    """Append `record` as one JSON line to out/metrics.jsonl (the folder is created if needed);
    with `echo`, print the same line to stderr."""
    line = json.dumps(record)
    if echo:
        print(line, file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / METRICS, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def epoch_of(record: Any) -> int | None:
    """The epoch an epoch record is of (an integer >= 1), or None for any other line."""
    epoch = record.get("epoch") if isinstance(record, dict) else None
    return epoch if type(epoch) is int and epoch >= 1 else None


def read_metrics(out: Path) -> tuple[list[Any], int]:
    """The parsed lines of out/metrics.jsonl (none when there is no file) and how many lines it
    has; a line that is not JSON (cut short by a kill) is counted but not returned."""
    try:
        text = (out / METRICS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], 0
    parsed, lines = [], text.splitlines()
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    return parsed, len(lines)


def _rewrite(out: Path, records: list[dict[str, Any]]) -> None:
    """Replace out/metrics.jsonl by `records`, one JSON line each, atomically."""
    write_atomic(out / METRICS, "".join(json.dumps(r) + "\n" for r in records))


def sync_metrics(out: Path, epochs: int, last: dict[str, Any] | None = None) -> None:
    """Make out/metrics.jsonl agree with a checkpoint that has completed `epochs` epochs (0: a
    run starting afresh): one record for each of epochs 1..`epochs` found in the log (the last one
    where an epoch appears more than once), the record of epoch `epochs` being `last` (the
    checkpoint's own metrics) when that is one. Records of later epochs, lines that are not epoch
    records and broken lines are dropped. The log is rewritten atomically (edgeinfer.atomic), and
    only when it changes; no file is created for a run with nothing to log."""
    parsed, lines = read_metrics(out)
    kept: dict[int, dict[str, Any]] = {}
    for record in parsed:
        epoch = epoch_of(record)
        if epoch is not None and epoch <= epochs:
            kept[epoch] = record
    if last is not None and epoch_of(last) == epochs:
        kept[epochs] = last
    records = [kept[e] for e in sorted(kept)]
    if records != parsed or lines != len(parsed):  # never true of a missing file with nothing to log
        _rewrite(out, records)


def log_epoch(out: Path, record: dict[str, Any], echo: bool = True) -> None:
    """Log a finished epoch's `record` (its "epoch" an integer >= 1), after its checkpoint is saved.

    Appended to out/metrics.jsonl when the log holds only records of earlier epochs (the usual
    case: a `tail -f` goes on working); otherwise, as when a new run replaces a finished one in
    the same folder, the log is rewritten atomically with those earlier records and this one.
    With `echo`, the line is also printed to stderr.
    """
    epoch = epoch_of(record)
    if epoch is None:
        raise ValueError(f"an epoch record needs an integer epoch >= 1, not {record.get('epoch')!r}")
    parsed, lines = read_metrics(out)
    earlier = [r for r in parsed if (e := epoch_of(r)) is not None and e < epoch]
    if len(earlier) == lines:
        append_metrics(out, record, echo)
        return
    if echo:
        print(json.dumps(record), file=sys.stderr)
    _rewrite(out, [*earlier, record])
