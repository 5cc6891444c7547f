"""Command line: `python -m train digits --cell lstm --hidden 128 --epochs 12 --out runs/digits-lstm`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from train.data import DataMissingError, data_dir, download_mnist
from train.download import DownloadError
from train.loop import TrainArgs, fit
from train.models import NetConfig, build, count_parameters
from train.tasks import DIGIT_LABELS, digits_meta, digits_tensors, shift_digits


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = parser.add_subparsers(dest="task", required=True)
    p = sub.add_parser("digits", help="MNIST read row by row (28 steps of 28 pixels)")
    p.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--proj", type=int, default=0, help="linear input layer width (0: none)")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--augment", type=int, default=0, help="random shifts of up to N pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="use only the first N train/test images")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
    p.add_argument("--download", action="store_true", help="fetch missing files, verifying checksums")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--stop-after", type=int, default=0, help="stop after epoch N (resume later)")
    p.add_argument("--out", required=True, type=Path)
    a = parser.parse_args(argv)

    if a.threads:
        torch.set_num_threads(a.threads)
    root = data_dir(a.data)
    try:
        if a.download:
            download_mnist(root)
        train = digits_tensors(root, "train", a.limit)
        test = digits_tensors(root, "test", a.limit)
    except (DataMissingError, DownloadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(a.seed)
    config = NetConfig(a.cell, 28, a.hidden, a.layers, len(DIGIT_LABELS), a.proj, a.dropout)
    model = build(config)
    print(f"{a.cell} x{a.layers} hidden {a.hidden}: {count_parameters(model):,} parameters", file=sys.stderr)
    args = TrainArgs(a.epochs, a.batch, a.lr, seed=a.seed, augment=a.augment)
    meta = {**digits_meta(), "config": config.to_dict()}
    augment = shift_digits(a.augment) if a.augment else None
    fit(model, train, test, args, a.out, meta, resume=a.resume, augment=augment, stop_after=a.stop_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
