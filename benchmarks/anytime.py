"""Anytime digits: accuracy against rows read, and early exit at a few thresholds, on MNIST test.

    python benchmarks/anytime.py [--model digits] [--data DIR]

Prints two tables (markdown): accuracy after each row, and for each threshold the accuracy and
the average number of rows read when every image stops at its first confident row.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer
from edgeinfer.preprocess.image import normalize
from train.data import data_dir, load_mnist

THRESHOLDS = (0.5, 0.9, 0.95, 0.99, 0.999, 0.9999)


def main() -> None:
    """Measure and print the tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="digits")
    p.add_argument("--data", default=None)
    a = p.parse_args()
    model = edgeinfer.load(a.model)
    images, labels = load_mnist(data_dir(a.data), "test")
    x = normalize(images.astype(np.float32) / 255.0, model.spec.input)  # (N, 28, 28)
    trace = model.stream(len(x)).trace(x)  # (N, T, C): probabilities after every row
    rows = trace.shape[1]
    correct = trace.argmax(axis=2) == labels[:, None]  # (N, T)
    print(f"model {a.model} ({model.spec.cell} x{model.spec.layers} {model.spec.hidden}, {model.spec.precision}), "
          f"{len(x):,} MNIST test images\n")
    print("| rows read | " + " | ".join(str(t) for t in range(4, rows + 1, 4)) + " |")
    print("|---|" + "---|" * len(range(4, rows + 1, 4)))
    print("| accuracy % | " + " | ".join(f"{100 * correct[:, t - 1].mean():.2f}" for t in range(4, rows + 1, 4)) + " |")
    print("\n| early exit at | accuracy % | average rows read | images stopped early |")
    print("|---|---|---|---|")
    top = trace.max(axis=2)
    for th in THRESHOLDS:
        result = model.early_exit(x, th)
        acc = (result.label_ids == labels).mean()
        print(f"| {th} | {100 * acc:.2f} | {result.steps.mean():.1f} | {100 * (result.steps < rows).mean():.1f}% |")
    assert np.array_equal(top.shape, correct.shape)
    print(f"| none (all {rows} rows) | {100 * correct[:, -1].mean():.2f} | {rows} | 0% |")


if __name__ == "__main__":
    main()
