"""The metrics log: one JSON object per line in OUT/metrics.jsonl, appended as training goes."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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
