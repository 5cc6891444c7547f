"""`edgeinfer-train sequences DATA... --out model.onnx`: a streaming classifier from your files.

Every error is one line on stderr (exit 2 for bad data or arguments, 130 when interrupted: rerun the
same command to resume).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from edgeinfer.errors import EdgeInferError
from edgeinfer_export.errors import ExportError
from edgeinfer_train.data import FILLS, DataError, read
from edgeinfer_train.model import CELLS
from edgeinfer_train.prepare import check, combine, relabel, split
from edgeinfer_train.trainer import Settings, describe, train

DEFAULTS = Settings()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgeinfer-train", description="Train models for edgeinfer from your own data.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sequences", help="a streaming classifier from labelled sequences",
                       description="Train a GRU/LSTM classifier that answers after every step, from CSV/TSV (one row "
                                   "per step), a folder per label, .npz or UEA/UCR .ts files; export it (int8 when it "
                                   "passes the gate) to one edgeinfer file.")
    s.add_argument("data", nargs="+", type=Path, help="training data: files or folders (combined)")
    s.add_argument("--out", "-o", type=Path, required=True, help="the model file to write (.onnx)")
    s.add_argument("--test", type=Path, help="held-out test data, judged at the end (never trained on)")
    s.add_argument("--val", type=Path, help="validation data (default: a share of the training data)")
    s.add_argument("--val-fraction", type=float, default=0.2, help="share of each class held out (default 0.2)")
    s.add_argument("--id-column", help="CSV/TSV: the sequence-id column (default: guessed from the header)")
    s.add_argument("--label-column", help="CSV/TSV: the label column (default: guessed from the header)")
    s.add_argument("--features", help="CSV/TSV: the feature columns, comma-separated (default: the others)")
    s.add_argument("--fill", choices=FILLS, help="fill missing values (default: refuse them, naming FILE:LINE)")
    s.add_argument("--cell", choices=tuple(CELLS), default=DEFAULTS.cell, help=f"the recurrent cell (default "
                   f"{DEFAULTS.cell})")
    helps = {"hidden": "units per layer", "layers": "stacked recurrent layers",
             "epochs": "most epochs of the first stage",
             "patience": "stop after this many epochs without a lower validation loss",
             "batch": "sequences per batch", "seed": "for repeatable runs (weights, order, split)"}
    for name, text in helps.items():
        s.add_argument(f"--{name}", type=int, default=getattr(DEFAULTS, name),
                       help=f"{text} (default {getattr(DEFAULTS, name)})")
    s.add_argument("--lr", type=float, default=DEFAULTS.lr, help=f"AdamW's learning rate (default {DEFAULTS.lr:g})")
    s.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="AdamW weight decay (default 0)")
    s.add_argument("--noise", type=float, default=DEFAULTS.noise,
                   help="augmentation: std of Gaussian noise on the normalised training steps (default 0)")
    s.add_argument("--feature-dropout", type=float, default=DEFAULTS.feature_dropout,
                   help="augmentation: share of a sequence's features zeroed for all its steps while training "
                        f"(default {DEFAULTS.feature_dropout:g}; 0 turns it off)")
    s.add_argument("--refit", action=argparse.BooleanOptionalAction, default=DEFAULTS.refit,
                   help="after early stopping, train again on training + validation data for the epochs it "
                        "chose (default: on)")
    s.add_argument("--precision", choices=("auto", "int8", "fp32"), default=DEFAULTS.precision,
                   help="auto: int8 when it passes the gate, else fp32 (default)")
    s.add_argument("--max-drop", type=float, default=DEFAULTS.max_drop,
                   help="the int8 gate: accuracy int8 may lose against fp32, as a share (default 0.01)")
    s.add_argument("--restart", action="store_true", help="start over instead of resuming OUT.train/")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(a: argparse.Namespace) -> int:
    """Read, check, train, export, summarise; returns the exit code."""
    for name in ("hidden", "layers", "epochs", "patience", "batch"):
        if getattr(a, name) < 1:
            raise DataError(f"--{name} {getattr(a, name)}; expected a whole number >= 1")
    for name in ("lr", "weight_decay", "noise", "max_drop"):
        value = getattr(a, name)
        if not (value >= 0 and value < float("inf")) or (name == "lr" and value == 0):
            raise DataError(f"--{name.replace('_', '-')} {value}; expected a finite number"
                            f"{' > 0' if name == 'lr' else ' >= 0'}")
    if not 0.0 <= a.feature_dropout < 1.0:
        raise DataError(f"--feature-dropout {a.feature_dropout}; expected a share from 0 up to (not including) 1")
    if a.out.suffix != ".onnx" or a.out.is_dir():
        raise DataError(f"--out {a.out}: expected a model file name ending in .onnx")
    columns = {"id_column": a.id_column, "label_column": a.label_column, "fill": a.fill,
               "feature_columns": a.features.split(",") if a.features else None}
    data = combine([read(p, **columns) for p in a.data])
    test = read(a.test, **columns) if a.test is not None else None
    check(data, test)
    if a.val is not None:
        val = read(a.val, **columns)
        check(data, val)
        train_set, val_set = data, relabel(val, data.labels)
    else:
        train_set, val_set = split(data, a.val_fraction, a.seed)
    test_set = relabel(test, data.labels) if test is not None else None
    settings = Settings(**{f.name: getattr(a, f.name) for f in fields(Settings)})
    print(f"{len(train_set)} training, {len(val_set)} validation"
          + (f", {len(test_set)} test" if test_set is not None else "")
          + f" sequences; {len(data.labels)} classes; {data.x[0].shape[1]} features per step", file=sys.stderr)
    summary = train(train_set, val_set, test_set, a.out, settings, restart=a.restart, progress=not a.quiet)
    for line in describe(summary):
        print(line)
    print(f"wrote {a.out} ({summary.precision})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `edgeinfer-train`."""
    a = parser().parse_args(argv)
    try:
        return run(a)
    except (DataError, ExportError, EdgeInferError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to resume from {a.out}.train/", file=sys.stderr)
        return 130


__all__ = ["main", "parser", "run"]
