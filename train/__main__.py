"""Command line: `python -m train digits|sentiment [options] --out runs/NAME`."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from train.data import DataMissingError, data_dir, download_mnist
from train.download import DownloadError
from train.loop import TrainArgs, fit
from train.models import NetConfig, build, count_parameters
from train.tasks import (DIGIT_LABELS, SENTIMENT_LABELS, digits_data, digits_meta, load_vectors,
                         sentiment_data, shift_digits)


def parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per task, sharing the model and loop options."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    common.add_argument("--hidden", type=int, default=128)
    common.add_argument("--layers", type=int, default=1)
    common.add_argument("--dropout", type=float, default=0.0, help="between stacked layers")
    common.add_argument("--epochs", type=int, default=12)
    common.add_argument("--batch", type=int, default=128)
    common.add_argument("--lr", type=float, default=2e-3)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--limit", type=int, default=0, help="use only N train/test examples")
    common.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    common.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
    common.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    common.add_argument("--stop-after", type=int, default=0, help="stop after epoch N (resume later)")
    common.add_argument("--out", required=True, type=Path)
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = p.add_subparsers(dest="task", required=True)
    d = sub.add_parser("digits", parents=[common], help="MNIST read row by row (28 steps of 28 pixels)")
    d.add_argument("--proj", type=int, default=0, help="linear input layer width (0: none)")
    d.add_argument("--augment", type=int, default=0, help="random shifts of up to N pixels")
    d.add_argument("--download", action="store_true", help="fetch missing files, verifying checksums")
    s = sub.add_parser("sentiment", parents=[common], help="IMDB reviews read word by word")
    s.add_argument("--embed", type=int, default=128, help="word embedding width")
    s.add_argument("--max-vocab", type=int, default=20000)
    s.add_argument("--min-count", type=int, default=2)
    s.add_argument("--max-len", type=int, default=0, help="train on the first N words (0: whole reviews)")
    s.add_argument("--vectors", type=Path, default=None, help="initial word vectors, word2vec/GloVe text format")
    s.add_argument("--freeze-vectors", action="store_true", help="keep the --vectors embedding fixed")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train; returns the exit code."""
    a = parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    root = data_dir(a.data)
    try:
        if a.task == "digits":
            if a.download:
                download_mnist(root)
            train, test = digits_data(root, "train", a.limit), digits_data(root, "test", a.limit)
            config = NetConfig(a.cell, 28, a.hidden, a.layers, len(DIGIT_LABELS), a.proj, a.dropout)
            meta = digits_meta()
        else:
            text_spec, train, test = sentiment_data(root, a.max_vocab, a.min_count, a.max_len, a.limit)
            config = NetConfig(a.cell, a.embed, a.hidden, a.layers, len(SENTIMENT_LABELS), dropout=a.dropout,
                               vocab=text_spec.vocab_size)
            meta = {"task": "sentiment", "labels": list(SENTIMENT_LABELS), "input": asdict(text_spec)}
    except (DataMissingError, DownloadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(a.seed)
    model = build(config)
    if getattr(a, "vectors", None):
        try:
            table, found = load_vectors(a.vectors, text_spec.vocab, a.embed)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        embedding = model.inp[0]
        embedding.weight.data.copy_(table)
        embedding.weight.requires_grad_(not a.freeze_vectors)
        print(f"vectors: {found:,} of {len(text_spec.vocab):,} words from {a.vectors}", file=sys.stderr)
    print(f"{a.task}: {a.cell} x{a.layers} hidden {a.hidden}: {count_parameters(model):,} parameters",
          file=sys.stderr)
    args = TrainArgs(a.epochs, a.batch, a.lr, seed=a.seed, augment=getattr(a, "augment", 0))
    augment = shift_digits(args.augment) if args.augment else None
    fit(model, train, test, args, a.out, {**meta, "config": config.to_dict()}, resume=a.resume,
        augment=augment, stop_after=a.stop_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
