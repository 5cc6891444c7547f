"""The built-in models' accuracy figures on the real test sets, each held to a regression floor.

    python benchmarks/accuracy.py [--data DIR] [--only digits,digits-files,sentiment,short-texts,characters,motions]

Measures every figure on its whole set, prints one markdown table (the figure now, the model
card's figure, the floor, the file's own record where the file holds one) and exits 1 when a
figure is under its floor (over its ceiling, for a loss), 2 when a data set or font is missing
or incomplete.
The slow test tier runs it (tests/test_shipped_models.py), so `pytest -m slow` and `.ci/run` fail
below a floor.

Each floor is the lower end of the 95% Wilson score interval of the model card's figure on a set
of that size (`wilson_floor`): a model as good as the card's would score under it on another set
of the same size in about 2.5% of draws, so a figure under the floor is a regression the set can
tell apart from noise, not a retrained model of equal quality. A figure from the same file on the
same set moves only with the CPU's int8 kernels (a few examples in 10,000), far less than the
distance to the floor; tests/test_shipped_models.py also holds each figure the file records to
the recomputed one within 0.1 point. The characters model's ceiling is the card's loss plus 1.96
standard errors, the standard error taken from the losses of 1,000-character blocks of the
validation text (the characters of one block are not independent). docs/testing.md lists every
floor with its numbers.

Runtime only (numpy, Pillow, edgeinfer; the data read by tests/datasets.py): no torch.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgeinfer  # noqa: E402
from benchmarks import digits_robustness as robust  # noqa: E402
from benchmarks.short_texts import correct, positive_probability, read_jsonl  # noqa: E402
from edgeinfer.preprocess.image import normalize  # noqa: E402
from edgeinfer.spec import ImageInput  # noqa: E402
from edgeinfer.tasks.characters import char_losses  # noqa: E402
from tests import datasets  # noqa: E402

Z = 1.96  # two-sided 95%
BATCH = 250  # digits: as at export (the int8 LSTM quantizes each step with one scale per batch)
CHAR_BLOCK = 1000  # characters per block for the loss's standard error
TESTS_DATA = ROOT / "tests" / "data"


@dataclass(frozen=True)
class Card:
    """A figure as docs/models.md measured it when the model shipped: `right` of `n` (a loss: nats)."""

    right: float
    n: int


# The model cards' figures (docs/models.md, README's table of built-in models). When a retrained
# model ships, its measured figures replace these, and the floors follow.
CARDS = {
    "digits, MNIST test (arrays)": Card(9948, 10_000),
    "digits, MNIST test dark on light, 112x112 JPEG q90 (files)": Card(9953, 10_000),
    "digits, MNIST test photographed on unevenly lit paper, JPEG q85 (files)": Card(9941, 10_000),
    "digits, printed in the held-out fonts, 28/64/128 px (files)": Card(1140, 1140),
    "digits, printed in unseen families' held-out packages, 28/64/128 px (files)": Card(2666, 2700),
    "sentiment, IMDB test reviews": Card(23106, 25_000),
    "sentiment, challenge set": Card(307, 336),
    "sentiment, negation pairs both right": Card(47, 50),
    "sentiment, dev set": Card(210, 240),
    "sentiment, dev pairs both right": Card(34, 40),
    "motions, BasicMotions held-out recordings": Card(40, 40),
    "characters, Tiny Shakespeare validation (nats/char)": Card(1.438, 111_540),
}
# which file each figure is recorded in, under which metric (tests/test_shipped_models.py compares them)
RECORDS = {
    "digits, MNIST test (arrays)": ("digits", "test_accuracy"),
    "sentiment, IMDB test reviews": ("sentiment", "test_accuracy"),
    "motions, BasicMotions held-out recordings": ("motions", "test_accuracy"),
    "characters, Tiny Shakespeare validation (nats/char)": ("characters", "val_loss"),
}


@dataclass(frozen=True)
class Figure:
    """One measured figure against its floor (`lower_is_better`: a ceiling)."""

    name: str
    n: int
    value: float
    floor: float
    card: float
    lower_is_better: bool = False
    record: float | None = None  # what the model file records for this figure, when it does

    @property
    def passed(self) -> bool:
        return self.value <= self.floor if self.lower_is_better else self.value >= self.floor


def wilson_floor(right: float, n: int, z: float = Z) -> float:
    """The lower end of the Wilson score interval of `right` of `n` (a share in [0, 1])."""
    p = right / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n)


def share(name: str, right: int, n: int) -> Figure:
    """An accuracy figure of `right` of `n` against its card's Wilson floor (the card's set size)."""
    card = CARDS[name]
    if n != card.n:
        raise ValueError(f"{name}: {n} examples, the card's figure is on {card.n}; is the data set complete?")
    return Figure(name, n, right / n, wilson_floor(card.right, card.n), card.right / card.n, record=record(name))


def record(name: str) -> float | None:
    """The figure as the model file records it, when it does."""
    if name not in RECORDS:
        return None
    model, metric = RECORDS[name]
    return float(edgeinfer.load(model).spec.metrics[metric])


# ---------------------------------------------------------------- digits


def digits_arrays(data: Path | None) -> list[Figure]:
    """All 10,000 MNIST test images as arrays, in batches of 250 (the export's measurement)."""
    images, labels = datasets.mnist_test(data)
    model = edgeinfer.load("digits")
    x = normalize(images.astype(np.float32) / 255.0, model.spec.require_input(ImageInput))
    predicted = np.concatenate([model.predict(x[i : i + BATCH]).argmax(1) for i in range(0, len(x), BATCH)])
    return [share("digits, MNIST test (arrays)", int((predicted == labels).sum()), len(labels))]


def digits_files(data: Path | None) -> list[Figure]:
    """Digits as image files read back as `edgeinfer classify image` reads them (digits_robustness.py)."""
    images, labels = datasets.mnist_test(data)
    model = edgeinfer.load("digits")
    split = json.loads(robust.FONTS_JSON.read_text(encoding="utf-8"))
    found = {p.name: p for p in robust.find_fonts()[0]}
    held = split["heldout"]
    unseen = [e for e in split["unseen_families"] if e["half"] == "heldout"]
    missing = sorted({e.get("package", "") or e["file"] for e in held + unseen if e["file"] not in found})
    if missing:
        raise FileNotFoundError(f"fonts missing; install the Debian packages: {' '.join(missing)}")
    figures = []
    with tempfile.TemporaryDirectory(prefix="accuracy_") as tmp:
        folder = Path(tmp)
        sets: list[tuple[str, Callable[[], robust.Result]]] = [
            ("digits, MNIST test dark on light, 112x112 JPEG q90 (files)",
             lambda: robust.evaluate(model, "jpeg", robust.mnist_dark_jpeg_size(images), labels, folder, ".jpg",
                                     quality=robust.JPEG_QUALITY)),
            ("digits, MNIST test photographed on unevenly lit paper, JPEG q85 (files)",
             lambda: robust.evaluate(model, "paper", robust.paper_set(images), labels, folder, ".jpg",
                                     quality=robust.PAPER_QUALITY)),
        ]
        for title, entries in (("digits, printed in the held-out fonts, 28/64/128 px (files)", held),
                               ("digits, printed in unseen families' held-out packages, 28/64/128 px (files)", unseen)):
            local = [{**e, "path": str(found[e["file"]])} for e in entries]
            sets.append((title, lambda local=local: robust.evaluate(model, "fonts", *robust.font_set(local)[:2],
                                                                    folder)))
        for name, run in sets:
            result = run()
            figures.append(share(name, int(result.correct.sum()), result.n))
    return figures


# ---------------------------------------------------------------- sentiment


def pairs_right(model: edgeinfer.Model, pairs: list[dict[str, str]]) -> int:
    """How many pairs have both members right."""
    plain = correct(positive_probability(model, [p["plain"] for p in pairs])[0], [p["plain_label"] for p in pairs])
    negated = correct(positive_probability(model, [p["negated"] for p in pairs])[0],
                      [p["negated_label"] for p in pairs])
    return int((plain & negated).sum())


def sentiment_imdb(data: Path | None) -> list[Figure]:
    """All 25,000 IMDB test reviews, each read whole."""
    texts, labels = datasets.imdb_test(data)
    model = edgeinfer.load("sentiment")
    correct = int((model.predict(texts).argmax(1) == labels).sum())
    return [share("sentiment, IMDB test reviews", correct, len(labels))]


def short_texts(_data: Path | None) -> list[Figure]:
    """The short-text sets of tests/data (no external data)."""
    model = edgeinfer.load("sentiment")
    figures = []
    for name, file in (("sentiment, challenge set", "sentiment_challenge.jsonl"),
                       ("sentiment, dev set", "sentiment_dev.jsonl")):
        rows = read_jsonl(TESTS_DATA / file)
        p_positive = positive_probability(model, [r["text"] for r in rows])[0]
        figures.append(share(name, int(correct(p_positive, [r["label"] for r in rows]).sum()), len(rows)))
    for name, file in (("sentiment, negation pairs both right", "negation_pairs.jsonl"),
                       ("sentiment, dev pairs both right", "negation_pairs_dev.jsonl")):
        pairs = read_jsonl(TESTS_DATA / file)
        figures.append(share(name, pairs_right(model, pairs), len(pairs)))
    return figures


# ---------------------------------------------------------------- motions, characters


def motions(_data: Path | None) -> list[Figure]:
    """The 40 held-out BasicMotions recordings shipped in samples/, each read whole."""
    model = edgeinfer.load("motions")
    x, truth = datasets.motions_test(model.spec.input.names)
    predicted = [model.spec.labels[int(p.argmax())] for p in model.predict(np.stack(x))]
    correct_ = sum(p == t for p, t in zip(predicted, truth, strict=True))
    return [share("motions, BasicMotions held-out recordings", correct_, len(truth))]


def characters(data: Path | None) -> list[Figure]:
    """The last 10% of Tiny Shakespeare as one stream, in nats per character (lower is better)."""
    path = (data or datasets.data_dir()) / "text" / "tinyshakespeare.txt"
    if not path.is_file():
        raise FileNotFoundError(f"Tiny Shakespeare missing: {path}")
    text = path.read_text(encoding="utf-8")
    val = text[int(len(text) * 0.9):]
    name = "characters, Tiny Shakespeare validation (nats/char)"
    card = CARDS[name]
    if len(val) != card.n:
        raise ValueError(f"{name}: {len(val)} characters, the card's figure is on {card.n}; is the text complete?")
    losses = char_losses(edgeinfer.load("characters"), val)
    blocks = losses[: len(losses) // CHAR_BLOCK * CHAR_BLOCK].reshape(-1, CHAR_BLOCK).mean(1)
    stderr = float(blocks.std(ddof=1) / math.sqrt(len(blocks)))
    return [Figure(name, len(val), float(losses.mean()), card.right + Z * stderr, card.right, lower_is_better=True,
                   record=record(name))]


GROUPS: dict[str, Callable[[Path | None], list[Figure]]] = {
    "digits": digits_arrays, "digits-files": digits_files, "sentiment": sentiment_imdb,
    "short-texts": short_texts, "characters": characters, "motions": motions,
}


def measure(data: Path | None = None, only: Sequence[str] = tuple(GROUPS)) -> list[Figure]:
    """Every figure of the groups `only`; FileNotFoundError when a data set or font is missing,
    ValueError when a set's size is not the one its card's figure was measured on."""
    figures: list[Figure] = []
    for group in only:
        figures += GROUPS[group](data)
    return figures


def table(figures: Sequence[Figure]) -> str:
    """A markdown table of the figures."""
    def fmt(f: Figure, v: float | None) -> str:
        return "-" if v is None else (f"{v:.4f}" if f.lower_is_better else f"{100 * v:.2f}%")

    lines = ["| figure | n | now | model card | floor | file's record | |", "|---|---:|---:|---:|---:|---:|---|"]
    for f in figures:
        bound = f"<= {fmt(f, f.floor)}" if f.lower_is_better else f">= {fmt(f, f.floor)}"
        lines.append(f"| {f.name} | {f.n:,} | {fmt(f, f.value)} | {fmt(f, f.card)} | {bound} | {fmt(f, f.record)} "
                     f"| {'ok' if f.passed else 'UNDER THE FLOOR'} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: $EDGEINFER_DATA or "
                                                                "../shared/data)")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups: {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    only = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(only) - set(GROUPS))
    if unknown:
        parser.error(f"unknown groups: {', '.join(unknown)}")
    try:
        figures = measure(args.data, only)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(figures))
    under = [f.name for f in figures if not f.passed]
    if under:
        print(f"\n{len(under)} figure(s) under the floor: {'; '.join(under)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
