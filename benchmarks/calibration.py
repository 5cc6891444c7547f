"""Calibration of the built-in classifiers on the real test sets, before and after temperature scaling.

    python benchmarks/calibration.py [--data DIR] [--png docs/calibration.png] [--bins 15]

digits: all 10,000 MNIST test images, read as benchmarks/accuracy.py reads them (normalize,
batches of 250); sentiment: all 25,000 IMDB test reviews through `model.predict`. For each model:
accuracy, the expected calibration error (ECE: equal-width bins over the top-class probability,
the bins' |accuracy - confidence| weighted by their share of examples), the maximum calibration
error (MCE: the largest such gap over the non-empty bins), the negative log-likelihood (nats) and
the Brier score (sum over the classes of the squared error, averaged over the examples; for two
classes this is twice the binary Brier score).

Temperature scaling divides the logits by one T > 0, fitted by minimising the NLL on data the
test never sees:
- sentiment: the 2,500 training reviews the built-in was trained without (`--holdout 2500`,
  `TokenData.split_holdout`'s fixed pick). The same reviews also fitted the stacking weights
  (`train stack`: alpha * head + beta * ngrams + bias, by cross-entropy), which already include a
  common scale, so T comes out close to 1 there by construction.
- digits: there are no held-out training images (the built-in saw all 60,000), so T is fitted
  on the last 5,000 training images, which the model did see. As a check that does not use the
  training set at all, T is also fitted on one half of the test set and scored on the other
  (both ways round, "test 2-fold").

Prints a markdown table and draws the reliability diagrams of both models side by side into one
PNG (Pillow only). Needs the training venv (train/ reads MNIST train and the IMDB holdout pick).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer
from edgeinfer.preprocess.image import normalize
from tests import datasets
from train.data import data_dir, load_imdb, load_mnist
from train.tasks import TokenData

BINS = 15
BATCH = 250  # digits: as at export and in the shipped-model test (an int8 LSTM scales each batch)
HOLDOUT = 2500  # the built-in sentiment model's --holdout
DIGITS_FIT = 5000  # the last 5,000 MNIST training images (seen in training)


# ---------------------------------------------------------------- metrics


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class Reliability:
    """Per-bin counts, mean confidence and accuracy (bins with no examples: count 0, NaN means)."""

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)  # (lo, hi]; 0 goes in bin 0
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / count
        mean_acc = np.bincount(which, correct.astype(np.float64), bins) / count
    return Reliability(edges, count, mean_conf, mean_acc)


def metrics(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, bins: int = BINS) -> dict[str, float]:
    logp = log_softmax(logits / temperature)
    probs = np.exp(logp)
    rel = reliability(probs, labels, bins)
    seen = rel.count > 0
    gaps = np.abs(rel.accuracy[seen] - rel.confidence[seen])
    onehot = np.eye(logits.shape[1])[labels]
    return {
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "ece": float((gaps * rel.count[seen]).sum() / len(labels)),
        "mce": float(gaps.max()),
        "nll": float(-logp[np.arange(len(labels)), labels].mean()),
        "brier": float(((probs - onehot) ** 2).sum(axis=1).mean()),
    }


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the mean NLL of softmax(logits / T): golden-section search on log T
    (the NLL is convex in 1/T, so the minimum is unique)."""
    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[np.arange(len(labels)), labels].mean())

    lo, hi, ratio = np.log(0.05), np.log(20.0), (np.sqrt(5.0) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def two_fold_test(logits: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[dict[str, float], list[float]]:
    """Fit T on one random half of the test set, score the other half, both ways round; the
    metrics of the two scored halves together, and the two temperatures."""
    order = np.random.default_rng(seed).permutation(len(labels))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    scaled = np.empty_like(logits, dtype=np.float64)
    temps = []
    for fit, score in (halves, halves[::-1]):
        t = fit_temperature(logits[fit], labels[fit])
        temps.append(t)
        scaled[score] = logits[score] / t
    return metrics(scaled, labels), temps


# ---------------------------------------------------------------- logits of the built-in models


def digits_logits(model: edgeinfer.Model, images: np.ndarray) -> np.ndarray:
    x = normalize(images.astype(np.float32) / 255.0, model.spec.input)
    return np.concatenate([model.predict_logits(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def sentiment_logits(model: edgeinfer.Model, texts: list[str]) -> np.ndarray:
    """Logits up to a per-row constant: log of `model.predict`'s probabilities (softmax is
    invariant to that constant, so temperature scaling reads them as the logits)."""
    probs = model.predict(texts).astype(np.float64)
    if (probs <= 0).any():
        raise ValueError("a probability underflowed to 0; its logit cannot be recovered from predict")
    return np.log(probs)


def holdout_reviews(root: Path) -> tuple[list[str], np.ndarray]:
    """The training reviews the built-in sentiment model was trained without: TokenData.split_holdout's
    pick over the training split in load_imdb's order (each 'sequence' here is the review's index)."""
    texts, labels = load_imdb(root, "train")
    index = TokenData([np.array([i], np.int64) for i in range(len(texts))], labels)
    _, held = index.split_holdout(HOLDOUT)
    picked = [int(s[0]) for s in held.seqs]
    return [texts[i] for i in picked], labels[picked]


# ---------------------------------------------------------------- the reliability diagram


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/Library/Fonts"):
        if (Path(folder) / name).is_file():
            return ImageFont.truetype(str(Path(folder) / name), size)
    return ImageFont.load_default(size)


@dataclass(frozen=True)
class Panel:
    title: str
    before: Reliability
    after: Reliability | None
    ece: float
    ece_after: float | None
    temperature: float | None


BLUE, RED, GREY, DARK = (66, 114, 196), (214, 69, 65), (150, 150, 150), (40, 40, 40)


@dataclass(frozen=True)
class Frame:
    """Where a panel's plot square lies in the picture."""

    left: int
    top: int
    size: int

    @property
    def bottom(self) -> int:
        return self.top + self.size

    def x(self, v: float) -> int:
        return self.left + round(v * self.size)

    def y(self, v: float) -> int:
        return self.bottom - round(v * self.size)


def draw_axes(img: Image.Image, d: ImageDraw.ImageDraw, f: Frame, title: str) -> None:
    small, mid = font(13), font(15)
    d.text((f.x(0.5), 14), title, font=font(17, bold=True), fill=DARK, anchor="mt")
    for v in np.linspace(0, 1, 6):
        d.line([(f.x(v), f.top), (f.x(v), f.bottom)], fill=(230, 230, 230))
        d.line([(f.left, f.y(v)), (f.x(1), f.y(v))], fill=(230, 230, 230))
        d.text((f.x(v), f.bottom + 6), f"{v:.1f}", font=small, fill=DARK, anchor="mt")
        d.text((f.left - 6, f.y(v)), f"{v:.1f}", font=small, fill=DARK, anchor="rm")
    d.text((f.x(0.5), f.bottom + 24), "confidence (top-class probability)", font=mid, fill=DARK, anchor="mt")
    label = Image.new("RGBA", (200, 20), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((100, 10), "accuracy", font=mid, fill=DARK, anchor="mm")
    label = label.rotate(90, expand=True)
    img.paste(label, (f.left - 66, f.top + f.size // 2 - 100), label)


def draw_bars(d: ImageDraw.ImageDraw, f: Frame, rel: Reliability, after: Reliability | None) -> None:
    for i in np.flatnonzero(rel.count):
        lo, hi = f.x(rel.edges[i]) + 1, f.x(rel.edges[i + 1]) - 1
        acc, conf = f.y(float(rel.accuracy[i])), f.y(float(rel.confidence[i]))
        d.rectangle([lo, acc, hi, f.bottom], fill=(*BLUE, 255), outline=(255, 255, 255))
        if abs(acc - conf) >= 1:
            d.rectangle([lo, min(acc, conf), hi, max(acc, conf)], fill=(*RED, 90), outline=(*RED, 255))
    for i in range(0, f.size, 12):  # the diagonal, dashed
        a, b = i / f.size, min(i + 7, f.size) / f.size
        d.line([(f.x(a), f.y(a)), (f.x(b), f.y(b))], fill=DARK, width=2)
    if after is not None:  # accuracy after temperature scaling, at its mean confidence
        for i in np.flatnonzero(after.count):
            cx, cy = f.x(float(after.confidence[i])), f.y(float(after.accuracy[i]))
            d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(255, 255, 255), outline=DARK, width=2)
    d.rectangle([f.left, f.top, f.x(1), f.bottom], outline=DARK)


def draw_legend(d: ImageDraw.ImageDraw, f: Frame, panel: Panel) -> None:
    """Top left, where no confidence falls (below 1 / classes)."""
    small, mid = font(13), font(15)
    lines = [f"ECE {panel.ece:.2%}"]
    if panel.ece_after is not None and panel.temperature is not None:
        lines.append(f"T = {panel.temperature:.2f}: {panel.ece_after:.2%}")
    d.rectangle([f.left + 1, f.top + 1, f.left + 158, f.top + 26 + 20 * (len(lines) + 3)], fill=(255, 255, 255))
    ly = f.top + 8
    for line in lines:
        d.text((f.left + 8, ly), line, font=mid, fill=DARK)
        ly += 20
    ly += 4
    for colour, alpha, name in ((BLUE, 255, "accuracy per bin"), (RED, 110, "gap to confidence")):
        d.rectangle([f.left + 8, ly + 2, f.left + 22, ly + 14], fill=(*colour, alpha))
        d.text((f.left + 28, ly), name, font=small, fill=DARK)
        ly += 20
    d.line([(f.left + 8, ly + 8), (f.left + 22, ly + 8)], fill=DARK, width=2)
    d.text((f.left + 28, ly), "perfect calibration", font=small, fill=DARK)
    if panel.after is not None:
        ly += 20
        d.ellipse([f.left + 11, ly + 4, f.left + 19, ly + 12], fill=(255, 255, 255), outline=DARK, width=2)
        d.text((f.left + 28, ly), "after T scaling", font=small, fill=DARK)


def draw_counts(d: ImageDraw.ImageDraw, f: Frame, rel: Reliability) -> None:
    """Examples per bin under the plot: log-scale bars, each with its count written above."""
    base, height, small = f.bottom + 132, 70, font(13)
    d.text((f.left - 6, base - height // 2), "count", font=small, fill=DARK, anchor="rm")
    scale = height / (np.log10(max(int(rel.count.max()), 10)) + 0.3)
    for i, n in enumerate(rel.count.tolist()):
        lo, hi = f.x(rel.edges[i]) + 1, f.x(rel.edges[i + 1]) - 1
        h = round(scale * np.log10(n + 1))
        if n:
            d.rectangle([lo, base - h, hi, base], fill=GREY)
        tag = f"{n / 1000:.1f}k" if n >= 1000 else str(n)
        d.text(((lo + hi) // 2, base - h - 3), tag, font=font(10), fill=DARK, anchor="mb")
    d.line([(f.left, base), (f.x(1), base)], fill=DARK)
    d.text((f.x(0.5), base + 6), "examples per bin (log scale)", font=small, fill=DARK, anchor="mt")


def draw_panel(img: Image.Image, x0: int, panel: Panel) -> None:
    d = ImageDraw.Draw(img, "RGBA")
    frame = Frame(x0 + 70, 50, 400)
    draw_axes(img, d, frame, panel.title)
    draw_bars(d, frame, panel.before, panel.after)
    draw_legend(d, frame, panel)
    draw_counts(d, frame, panel.before)


def draw(panels: list[Panel], path: Path) -> None:
    width = 520
    img = Image.new("RGB", (width * len(panels), 620), (255, 255, 255))
    for k, panel in enumerate(panels):
        draw_panel(img, k * width, panel)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


# ---------------------------------------------------------------- main


Row = tuple[str, str, float, dict[str, float]]


def evaluate(name: str, logits: np.ndarray, labels: np.ndarray, fits: list[tuple[str, Callable[[], float]]],
             bins: int) -> list[Row]:
    rows: list[Row] = [(name, "none", 1.0, metrics(logits, labels, 1.0, bins))]
    for how, fit in fits:
        t = fit()
        rows.append((name, how, t, metrics(logits, labels, t, bins)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="the data folder (default: $EDGEINFER_DATA or ../shared/data)")
    p.add_argument("--png", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "calibration.png")
    p.add_argument("--bins", type=int, default=BINS)
    a = p.parse_args()
    root = data_dir(a.data)

    digits = edgeinfer.load("digits")
    images, d_labels = datasets.mnist_test(root)
    d_logits = digits_logits(digits, images)
    train_images, train_labels = load_mnist(root, "train")
    fit_images, fit_labels = train_images[-DIGITS_FIT:], train_labels[-DIGITS_FIT:].astype(np.int64)
    fit_logits = digits_logits(digits, fit_images)
    print(f"digits: fit set (last {DIGITS_FIT:,} training images, seen in training): "
          f"{metrics(fit_logits, fit_labels, 1.0, a.bins)}", file=sys.stderr)
    rows = evaluate("digits", d_logits, d_labels,
                    [(f"last {DIGITS_FIT:,} train images (seen)", lambda: fit_temperature(fit_logits, fit_labels))],
                    a.bins)
    cross, temps = two_fold_test(d_logits, d_labels)
    rows.append(("digits", "test 2-fold (fit one half, score the other)", float(np.mean(temps)), cross))

    sentiment = edgeinfer.load("sentiment")
    texts, s_labels = datasets.imdb_test(root)
    s_logits = sentiment_logits(sentiment, texts)
    held_texts, held_labels = holdout_reviews(root)
    held_logits = sentiment_logits(sentiment, held_texts)
    print(f"sentiment: {len(held_texts):,} held-out training reviews: {metrics(held_logits, held_labels, 1.0, a.bins)}",
          file=sys.stderr)
    rows += evaluate("sentiment", s_logits, s_labels,
                     [(f"{HOLDOUT:,} held-out train reviews", lambda: fit_temperature(held_logits, held_labels))],
                     a.bins)
    cross, temps = two_fold_test(s_logits, s_labels)
    rows.append(("sentiment", "test 2-fold (fit one half, score the other)", float(np.mean(temps)), cross))

    print(f"| model | temperature fitted on | T | accuracy | ECE ({a.bins} bins) | MCE | NLL | Brier |")
    print("|---|---|---|---|---|---|---|---|")
    for name, how, t, m in rows:
        print(f"| {name} | {how} | {t:.3f} | {m['accuracy']:.2%} | {m['ece']:.2%} | {m['mce']:.2%} | "
              f"{m['nll']:.4f} | {m['brier']:.4f} |")

    panels = []
    for name, logits, labels, fitted in (("digits", d_logits, d_labels, rows[1]),
                                         ("sentiment", s_logits, s_labels, rows[4])):
        t = fitted[2]
        count = f"{len(labels):,} MNIST test images" if name == "digits" else f"{len(labels):,} IMDB test reviews"
        panels.append(Panel(f"{name} (int8): {count}", reliability(np.exp(log_softmax(logits)), labels, a.bins),
                            reliability(np.exp(log_softmax(logits / t)), labels, a.bins),
                            metrics(logits, labels, 1.0, a.bins)["ece"], fitted[3]["ece"], t))
        rel = panels[-1].before
        print(f"\n{name}: bin, examples, mean confidence, accuracy (no temperature)")
        for i in np.flatnonzero(rel.count):
            print(f"  ({rel.edges[i]:.3f}, {rel.edges[i + 1]:.3f}]  {int(rel.count[i]):6,}  "
                  f"{rel.confidence[i]:.4f}  {rel.accuracy[i]:.4f}")
    draw(panels, a.png)
    print(f"\nwrote {a.png} ({a.png.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
