"""Training a streaming classifier from labelled sequences: validation, early stopping, a metrics
log, resume after a kill, seeds, then the export (int8 behind its gate) and a summary.

A run keeps its work in OUT.train/ beside the model file: `checkpoint.pt` (written atomically after
every epoch: weights, optimizer, the best weights so far, the random generators) and
`metrics.jsonl` (one line per epoch). The same command run again continues where it stopped; it
refuses a checkpoint of another model or other data (`--restart` starts over).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import edgeinfer_export as ee
from edgeinfer.atomic import write_atomic
from edgeinfer_export.errors import ExportError
from edgeinfer_train.data import DataError, Sequences
from edgeinfer_train.model import ClassifierConfig, SequenceClassifier, anytime_loss, last_logits
from edgeinfer_train.prepare import normalisation, padded

CHECKPOINT_VERSION = 1
FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)  # accuracy reported against the share of each sequence read


@dataclass(frozen=True)
class Settings:
    """How to train: the defaults need no flags."""

    cell: str = "gru"
    hidden: int = 64
    layers: int = 1
    epochs: int = 200
    patience: int = 25  # epochs without a lower validation loss before stopping
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    noise: float = 0.0  # std of Gaussian noise added to the normalised training steps (augmentation)
    seed: int = 0
    precision: str = "auto"  # auto: int8 when it passes the gate, else fp32; int8: int8 or nothing; fp32
    max_drop: float = 0.01  # the int8 gate: accuracy points (as a share) int8 may lose against fp32


@dataclass
class Summary:
    """What a run measured: the figures the command prints and the file's spec records."""

    epochs: int
    best_epoch: int
    val_accuracy: float
    test_accuracy: float | None
    int8_drop: float | None
    precision: str
    by_fraction: dict[str, float]
    confusion: list[list[int]]
    labels: tuple[str, ...]
    seconds: float


def _fingerprint(train: Sequences, val: Sequences, config: ClassifierConfig, settings: Settings) -> str:
    h = hashlib.sha256(json.dumps([config.to_dict(), asdict(replace(settings, epochs=0, patience=0, precision="",
                                                                     max_drop=0.0))]).encode())
    for part in (train, val):
        h.update(part.y.tobytes())
        for s in part.x:
            h.update(s.tobytes())
    return h.hexdigest()


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state()}


def _save(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(path, buf.getvalue())


def _load(path: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file
        raise DataError(f"{path}: not a checkpoint this trainer can resume ({str(exc)[:80]}); pass --restart") from None
    if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != fingerprint:
        raise DataError(f"{path}: a checkpoint of another model, data or settings; pass --restart to start over")
    return state


def evaluate(model: SequenceClassifier, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Logits at every step of padded normalised sequences. # (N, T, C)"""
    model.eval()
    with torch.no_grad():
        return model.every_step(torch.from_numpy(x)).numpy()


def _accuracy(logits: np.ndarray, lengths: np.ndarray, y: np.ndarray, fraction: float = 1.0) -> float:
    """Accuracy of the answer after `fraction` of each sequence (at least one step)."""
    steps = np.maximum(1, np.ceil(lengths * fraction).astype(np.int64))
    return float((logits[np.arange(len(y)), steps - 1].argmax(-1) == y).mean())


def train(train_set: Sequences, val_set: Sequences, test_set: Sequences | None, out: Path, settings: Settings,
          restart: bool = False, progress: bool = True) -> Summary:
    """Train, keep the best weights on validation, export `out`, and return the summary."""
    started = time.monotonic()
    features = train_set.x[0].shape[1]
    config = ClassifierConfig(settings.cell, features, settings.hidden, settings.layers, len(train_set.labels))
    mean, std = normalisation(train_set)
    xt, lt = padded(train_set.x, mean, std)
    xv, lv = padded(val_set.x, mean, std)
    work = out.with_name(out.name + ".train")
    work.mkdir(parents=True, exist_ok=True)
    ckpt, log = work / "checkpoint.pt", work / "metrics.jsonl"
    fingerprint = _fingerprint(train_set, val_set, config, settings)
    torch.manual_seed(settings.seed)
    model = SequenceClassifier(config)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    state = None if restart or not ckpt.exists() else _load(ckpt, fingerprint)
    if restart:
        log.unlink(missing_ok=True)
    epoch, best_acc, best_loss, best_epoch = 0, -1.0, math.inf, 0
    best = {k: v.clone() for k, v in model.state_dict().items()}
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        epoch, best_epoch = state["epoch"], state["best_epoch"]
        best_acc, best_loss = state["best_acc"], state["best_loss"]
        best = state["best"]
        _keep_log_until(log, epoch)
        print(f"{ckpt}: resuming after epoch {epoch}", file=sys.stderr)
    bar = _bar(settings.epochs, epoch, progress)
    while epoch < settings.epochs and epoch - best_epoch < settings.patience:
        model.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(order), settings.batch):
            idx = order[start : start + settings.batch]
            n = torch.from_numpy(lt[idx.numpy()])
            steps = int(n.max())
            xb = torch.from_numpy(xt[idx.numpy(), :steps])
            if settings.noise:
                xb = xb + settings.noise * torch.randn_like(xb)
            logits = model.every_step(xb)
            loss = anytime_loss(logits, torch.from_numpy(train_set.y[idx.numpy()]), n)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        epoch += 1
        val_logits = evaluate(model, xv, lv)
        val_acc = _accuracy(val_logits, lv, val_set.y)
        val_loss = float(torch.nn.functional.cross_entropy(
            last_logits(torch.from_numpy(val_logits), torch.from_numpy(lv)), torch.from_numpy(val_set.y)))
        if val_loss < best_loss:  # the loss keeps telling models apart once the accuracy is at its ceiling
            best_acc, best_loss, best_epoch = val_acc, val_loss, epoch
            best = {k: v.clone() for k, v in model.state_dict().items()}
        with log.open("a") as fh:
            fh.write(json.dumps({"epoch": epoch, "train_loss": round(float(loss.detach()), 6),
                                 "val_loss": round(val_loss, 6), "val_accuracy": round(val_acc, 6),
                                 "best_epoch": best_epoch}) + "\n")
        _save(ckpt, {"version": CHECKPOINT_VERSION, "fingerprint": fingerprint, "config": config.to_dict(),
                     "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _rng_state(),
                     "epoch": epoch, "best": best, "best_acc": best_acc, "best_loss": best_loss,
                     "best_epoch": best_epoch})
        bar(epoch, val_acc, best_acc)
    model.load_state_dict(best)
    model.eval()
    return _finish(model, train_set, val_set, test_set, out, settings, mean, std, epoch, best_epoch, best_acc,
                   time.monotonic() - started)


def _keep_log_until(log: Path, epoch: int) -> None:
    """The metrics log without the lines of epochs after the checkpoint's (a kill between the two writes)."""
    if log.exists():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line).get("epoch", 0) <= epoch]
        write_atomic(log, "".join(f"{line}\n" for line in kept).encode())


def _bar(total: int, done: int, enabled: bool) -> Any:
    """A progress bar over epochs (tqdm, on stderr; nothing when disabled)."""
    if not enabled:
        return lambda epoch, acc, best: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="epoch", file=sys.stderr, leave=False)

    def update(epoch: int, acc: float, best: float) -> None:
        bar.update(epoch - bar.n)
        bar.set_postfix(val=f"{acc:.3f}", best=f"{best:.3f}")
        if epoch >= total:
            bar.close()

    return update


def _finish(model: SequenceClassifier, train_set: Sequences, val_set: Sequences, test_set: Sequences | None,
            out: Path, settings: Settings, mean: np.ndarray, std: np.ndarray, epochs: int, best_epoch: int,
            val_acc: float, seconds: float) -> Summary:
    """Export (int8 behind the gate, as `precision` says) and measure the written file."""
    import edgeinfer

    inp = ee.Features(train_set.x[0].shape[1], mean=mean.tolist(), std=std.tolist(), names=list(train_set.features))
    output = ee.Classes(list(train_set.labels))
    example = [s for s in val_set.x if len(s) == len(val_set.x[0])][:8]
    sample = np.stack(example)
    judge = test_set if test_set is not None else val_set
    int8_drop: float | None = None
    precision = "fp32"
    if settings.precision in ("auto", "int8"):
        try:
            got = ee.export(model, out, input=inp, output=output, example=sample,
                            int8=ee.Int8((judge.x, judge.y), max_drop=settings.max_drop))
            int8_drop = got.metrics["fp32_accuracy"] - got.metrics["accuracy"]
            precision = "int8"
        except ExportError as exc:
            if settings.precision == "int8" or "int8" not in str(exc):
                raise
            print(f"{exc}; writing the fp32 model instead", file=sys.stderr)
    if precision == "fp32":
        ee.export(model, out, input=inp, output=output, example=sample)
    per_step = _answers_by_fraction(edgeinfer.load(out), judge)  # the written file, read step by step
    final = per_step[1.0]
    confusion = np.zeros((len(train_set.labels),) * 2, np.int64)
    for t, p in zip(judge.y, final, strict=True):
        confusion[t, p] += 1
    accuracy = float(np.trace(confusion) / confusion.sum())
    return Summary(epochs, best_epoch, val_acc, accuracy if test_set is not None else None, int8_drop, precision,
                   {f"{f:g}": float((per_step[f] == judge.y).mean()) for f in FRACTIONS},
                   confusion.tolist(), train_set.labels, round(seconds, 1))


def _answers_by_fraction(model: Any, data: Sequences) -> dict[float, np.ndarray]:
    """The file's answer (argmax) after each share of every sequence, read step by step."""
    got: dict[float, list[int]] = {f: [] for f in FRACTIONS}
    for seq in data.x:
        trace = model.stream().trace(seq)  # (T, C): the running answer after every step
        for f in FRACTIONS:
            got[f].append(int(trace[max(1, math.ceil(len(seq) * f)) - 1].argmax()))
    return {f: np.array(v, np.int64) for f, v in got.items()}


def describe(summary: Summary) -> list[str]:
    """The summary printed at the end of a run."""
    labels = summary.labels
    lines = [f"trained {summary.epochs} epochs in {summary.seconds:g} s (best on validation: epoch "
             f"{summary.best_epoch}, {summary.val_accuracy:.2%})"]
    if summary.test_accuracy is not None:
        lines.append(f"test accuracy {summary.test_accuracy:.2%} ({summary.precision})")
    if summary.int8_drop is not None:
        lines.append(f"int8 against fp32: {summary.int8_drop * 100:+.2f} points")
    read = ", ".join(f"{float(f):.0%}: {a:.1%}" for f, a in summary.by_fraction.items())
    lines.append(f"accuracy after reading {read} of each sequence")
    width = max(len(lab) for lab in labels)
    lines.append("confusion (rows: true, columns: answered)")
    lines.append(" " * (width + 2) + " ".join(f"{lab[:6]:>6}" for lab in labels))
    for lab, row in zip(labels, summary.confusion, strict=True):
        total = sum(row)
        recall = row[labels.index(lab)] / total if total else 0.0
        lines.append(f"{lab:>{width}}  " + " ".join(f"{v:>6}" for v in row) + f"   recall {recall:.1%}")
    return lines


__all__ = ["Settings", "Summary", "describe", "train"]
