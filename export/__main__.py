"""Command line: `python -m export runs/digits-lstm/checkpoint.pt --out models --name digits-lstm`.

Writes NAME-fp32.onnx and NAME-int8.onnx (sequence graph + step graph + spec in one file each),
after a parity check (fp32 max abs error <= 1e-5; for token models also a padded batch against
each row alone) and an int8 gate: accuracy on the whole test set (digits, sentiment), or
validation loss through the step graph (characters). An int8 gate failure leaves the fp32 file.
Every failure is one line on stderr and exit code 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeinfer.errors import EdgeInferError
from edgeinfer_export.errors import ExportError, one_line
from export.gates import MAX_INT8_DROP_POINTS, MAX_INT8_LOSS_RISE
from export.parity import FP32_TOLERANCE
from export.pipeline import export_checkpoint

__all__ = ["FP32_TOLERANCE", "MAX_INT8_DROP_POINTS", "MAX_INT8_LOSS_RISE", "ExportError", "main"]


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--name", required=True, help="file stem, e.g. digits-lstm")
    p.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
    p.add_argument("--no-int8", action="store_true", help="write the fp32 model only")
    p.add_argument("--limit", type=_count, default=0,
                   help="evaluate on the first N test examples (characters: validation characters) only")
    p.add_argument("--sequence-graph", choices=("auto", "fused", "decomposed"), default="auto",
                   help="the int8 sequence graph: the faster at batch 256 on this machine (auto), the fused "
                        "recurrent operator, or its decomposition (int8 products + Scan)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and export; returns the exit code."""
    a = parser().parse_args(argv)
    try:
        # FP32_TOLERANCE is read here, at call time, so that a test may lower it on this module
        export_checkpoint(a.checkpoint, a.out, a.name, a.data, int8=not a.no_int8, limit=a.limit,
                          fp32_tolerance=FP32_TOLERANCE,
                          decomposed={"auto": None, "fused": False, "decomposed": True}[a.sequence_graph])
    except (ExportError, EdgeInferError, OSError, ValueError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # onnx/onnxruntime/torch raise untyped errors; still one line, never a traceback
        print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
