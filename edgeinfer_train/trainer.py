"""Training a streaming classifier from labelled sequences: validation, early stopping, a metrics
log, resume after a kill, seeds, then the export (int8 behind its gate) and a summary.

Two stages. `select` trains on the training split and keeps the weights of the epoch with the
lowest validation loss, stopping when `patience` epochs bring no better one. `refit` (on by
default) then trains a fresh model on the training and validation data together for as many epochs
as `select` found best, the learning rate falling along a cosine: on small sets the fifth of the
data held out for validation is worth more as training data once it has chosen the length of
training. Measured on JapaneseVowels (270 training sequences; 3 seeds): select alone 96.6%, with
refit 97.7% (with the default feature dropout).

A run keeps its work in OUT.train/ beside the model file: `checkpoint.pt` (written atomically after
every epoch: the stage, weights, optimizer, the best weights so far, the random generators) and
`metrics.jsonl` (one line per epoch and stage), and at the end `summary.json` (what the command
printed, as numbers). The same command run again continues where it
stopped; it refuses a checkpoint of another model or other data (`--restart` starts over).
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

CHECKPOINT_VERSION = 2
MIN_REFIT_EPOCHS = 10  # refit at least this long, however early `select` found its best epoch
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
    feature_dropout: float = 0.3  # share of a training sequence's features zeroed for all its steps
    refit: bool = True  # after `select`, train again on training + validation data (see the module's doc)
    seed: int = 0
    precision: str = "auto"  # auto: int8 when it passes the gate, else fp32; int8: int8 or nothing; fp32
    max_drop: float = 0.01  # the int8 gate: accuracy points (as a share) int8 may lose against fp32


@dataclass
class Summary:
    """What a run measured: the figures the command prints and the file's spec records."""

    epochs: int  # of the select stage
    best_epoch: int
    refit_epochs: int  # 0 without a refit
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
    """Train (`select`, then `refit` when set), export `out`, and return the summary."""
    started = time.monotonic()
    features = train_set.x[0].shape[1]
    config = ClassifierConfig(settings.cell, features, settings.hidden, settings.layers, len(train_set.labels))
    every = join(train_set, val_set)
    mean, std = normalisation(every if settings.refit else train_set)
    xt, lt = padded(train_set.x, mean, std)
    xv, lv = padded(val_set.x, mean, std)
    work = out.with_name(out.name + ".train")
    work.mkdir(parents=True, exist_ok=True)
    ckpt, log = work / "checkpoint.pt", work / "metrics.jsonl"
    fingerprint = _fingerprint(train_set, val_set, config, settings)
    state = None if restart or not ckpt.exists() else _load(ckpt, fingerprint)
    if restart:
        log.unlink(missing_ok=True)
    if state is not None:
        _keep_log_until(log, state["stage"], state["epoch"])
        print(f"{ckpt}: resuming the {state['stage']} stage after epoch {state['epoch']}", file=sys.stderr)
    torch.manual_seed(settings.seed)
    model = SequenceClassifier(config)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    epoch, best_acc, best_loss, best_epoch = 0, -1.0, math.inf, 0
    best = {k: v.clone() for k, v in model.state_dict().items()}
    if state is not None:
        best_epoch, best_acc, best_loss = state["best_epoch"], state["best_acc"], state["best_loss"]
        best = state["best"]
    if state is None or state["stage"] == "select":
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"]["torch"])
            epoch = state["epoch"]
        bar = _bar("select", settings.epochs, epoch, progress)
        while epoch < settings.epochs and epoch - best_epoch < settings.patience:
            loss = _epoch(model, opt, xt, lt, train_set.y, settings)
            epoch += 1
            val_logits = evaluate(model, xv, lv)
            val_acc = _accuracy(val_logits, lv, val_set.y)
            val_loss = float(torch.nn.functional.cross_entropy(
                last_logits(torch.from_numpy(val_logits), torch.from_numpy(lv)), torch.from_numpy(val_set.y)))
            if val_loss < best_loss:  # the loss keeps telling models apart once the accuracy is at its ceiling
                best_acc, best_loss, best_epoch = val_acc, val_loss, epoch
                best = {k: v.clone() for k, v in model.state_dict().items()}
            _log(log, {"stage": "select", "epoch": epoch, "train_loss": round(loss, 6), "val_loss": round(val_loss, 6),
                       "val_accuracy": round(val_acc, 6), "best_epoch": best_epoch})
            _save(ckpt, {"version": CHECKPOINT_VERSION, "fingerprint": fingerprint, "config": config.to_dict(),
                         "stage": "select", "model": model.state_dict(), "optimizer": opt.state_dict(),
                         "rng": _rng_state(), "epoch": epoch, "best": best, "best_acc": best_acc,
                         "best_loss": best_loss, "best_epoch": best_epoch})
            bar(epoch, f"val={val_acc:.3f} best={best_acc:.3f}")
        model.load_state_dict(best)
        selected = epoch
        state = None
    else:
        selected = state["selected"]
    if settings.refit:
        model = _refit(every, mean, std, config, settings, best_epoch, state, ckpt, log, fingerprint, progress,
                       {"best": best, "best_acc": best_acc, "best_loss": best_loss, "best_epoch": best_epoch,
                        "selected": selected})
    model.eval()
    refit_epochs = max(best_epoch, MIN_REFIT_EPOCHS) if settings.refit else 0
    summary = _finish(model, train_set, val_set, test_set, out, settings, mean, std,
                      (selected, best_epoch, refit_epochs), best_acc, time.monotonic() - started)
    write_atomic(work / "summary.json", (json.dumps(asdict(summary), indent=1) + "\n").encode())
    return summary


def join(a: Sequences, b: Sequences) -> Sequences:
    """Two sets labelled alike as one (training + validation data, for the refit)."""
    return Sequences(a.x + b.x, np.concatenate([a.y, b.y]), a.labels, a.features, a.where + b.where)


def _epoch(model: SequenceClassifier, opt: torch.optim.Optimizer, x: np.ndarray, lengths: np.ndarray,
           y: np.ndarray, settings: Settings) -> float:
    """One pass over (x, lengths, y) in shuffled batches, with the augmentations; the last batch's loss."""
    model.train()
    order = torch.randperm(len(x)).numpy()
    loss = torch.zeros(())
    for start in range(0, len(order), settings.batch):
        idx = order[start : start + settings.batch]
        n = torch.from_numpy(lengths[idx])
        xb = torch.from_numpy(x[idx, : int(n.max())])  # (B, T, F)
        if settings.noise:
            xb = xb + settings.noise * torch.randn_like(xb)
        if settings.feature_dropout:  # whole features gone for a sequence: no one channel is leaned on
            keep = (torch.rand(xb.shape[0], 1, xb.shape[2]) >= settings.feature_dropout).float()
            xb = xb * keep / (1.0 - settings.feature_dropout)
        loss = anytime_loss(model.every_step(xb), torch.from_numpy(y[idx]), n)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return float(loss.detach())


def _refit(every: Sequences, mean: np.ndarray, std: np.ndarray, config: ClassifierConfig, settings: Settings,
           best_epoch: int, state: dict[str, Any] | None, ckpt: Path, log: Path, fingerprint: str, progress: bool,
           selection: dict[str, Any]) -> SequenceClassifier:
    """A fresh model trained on training + validation data for the epochs `select` found best."""
    epochs = max(best_epoch, MIN_REFIT_EPOCHS)
    xa, la = padded(every.x, mean, std)
    torch.manual_seed(settings.seed + 1)
    model = SequenceClassifier(config)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"]["torch"])
        epoch = state["epoch"]
    bar = _bar("refit", epochs, epoch, progress)
    while epoch < epochs:
        loss = _epoch(model, opt, xa, la, every.y, settings)
        schedule.step()
        epoch += 1
        _log(log, {"stage": "refit", "epoch": epoch, "train_loss": round(loss, 6)})
        _save(ckpt, {"version": CHECKPOINT_VERSION, "fingerprint": fingerprint, "config": config.to_dict(),
                     "stage": "refit", "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "schedule": schedule.state_dict(), "rng": _rng_state(), "epoch": epoch, **selection})
        bar(epoch, f"loss={loss:.3f}")
    return model


def _log(log: Path, line: dict[str, Any]) -> None:
    with log.open("a") as fh:
        fh.write(json.dumps(line) + "\n")


def _keep_log_until(log: Path, stage: str, epoch: int) -> None:
    """The metrics log as of the checkpoint (stage, epoch): a kill between the two writes leaves
    lines the resumed run writes again."""
    if log.exists():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        order = {"select": 0, "refit": 1}

        def kept(row: dict[str, Any]) -> bool:
            at = order.get(row.get("stage", "select"), 0)
            return at < order[stage] or (at == order[stage] and row.get("epoch", 0) <= epoch)

        write_atomic(log, "".join(f"{line}\n" for line in lines if kept(json.loads(line))).encode())


def _bar(stage: str, total: int, done: int, enabled: bool) -> Any:
    """A progress bar over a stage's epochs (tqdm, on stderr; nothing when disabled)."""
    if not enabled:
        return lambda epoch, note: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="epoch", desc=stage, file=sys.stderr, leave=False)

    def update(epoch: int, note: str) -> None:
        bar.update(epoch - bar.n)
        bar.set_postfix_str(note)
        if epoch >= total:
            bar.close()

    return update


def _finish(model: SequenceClassifier, train_set: Sequences, val_set: Sequences, test_set: Sequences | None,
            out: Path, settings: Settings, mean: np.ndarray, std: np.ndarray, epochs: tuple[int, int, int],
            val_acc: float, seconds: float) -> Summary:
    """Export (int8 behind the gate, as `precision` says) and measure the written file.

    The gate compares int8 with fp32 on the validation data (the test data decides nothing); the
    int8 drop reported is measured on the test data when there is some."""
    import edgeinfer

    inp = ee.Features(train_set.x[0].shape[1], mean=mean.tolist(), std=std.tolist(), names=list(train_set.features))
    output = ee.Classes(list(train_set.labels))
    example = [s for s in val_set.x if len(s) == len(val_set.x[0])][:8]
    sample = np.stack(example)
    judge = test_set if test_set is not None else val_set
    work = out.with_name(out.name + ".train") / "exported.onnx"  # measured here, then written to `out`
    int8_drop: float | None = None
    precision = "fp32"
    if settings.precision in ("auto", "int8"):
        try:
            got = ee.export(model, work, input=inp, output=output, example=sample,
                            int8=ee.Int8((val_set.x, val_set.y), max_drop=settings.max_drop))
            int8_drop = got.metrics["fp32_accuracy"] - got.metrics["accuracy"]
            precision = "int8"
        except ExportError as exc:
            if settings.precision == "int8" or "int8" not in str(exc):
                raise
            print(f"{exc}; writing the fp32 model instead", file=sys.stderr)
    if precision == "fp32":
        ee.export(model, work, input=inp, output=output, example=sample)
    per_step = _answers_by_fraction(edgeinfer.load(work), judge)  # the written file, read step by step
    final = per_step[1.0]
    confusion = np.zeros((len(train_set.labels),) * 2, np.int64)
    for t, p in zip(judge.y, final, strict=True):
        confusion[t, p] += 1
    accuracy = float(np.trace(confusion) / confusion.sum())
    if precision == "int8" and test_set is not None:
        xs, ls = padded(test_set.x, mean, std)
        fp32 = _accuracy(evaluate(model, xs, ls), ls, test_set.y)
        int8_drop = fp32 - accuracy
    by_fraction = {f"{f:g}": float((per_step[f] == judge.y).mean()) for f in FRACTIONS}
    which = "test" if test_set is not None else "val"
    _write_with_metrics(work, out, {f"{which}_accuracy": accuracy, f"{which}_sequences": float(len(judge)),
                                    **{f"{which}_accuracy_read_{k}": v for k, v in by_fraction.items() if k != "1"}})
    return Summary(*epochs, val_acc, accuracy if test_set is not None else None, int8_drop, precision,
                   by_fraction, confusion.tolist(), train_set.labels, round(seconds, 1))


def _write_with_metrics(src: Path, out: Path, metrics: dict[str, float]) -> None:
    """`src` written to `out` (atomically) with `metrics` added to its spec: the figures measured on
    the file travel in it (`edgeinfer info`, `edgeinfer models`). Graphs unchanged."""
    import onnx

    from edgeinfer.spec import SPEC_KEY, ModelSpec
    from edgeinfer_export.bundle import bundle, unbundle

    model = onnx.load_from_string(src.read_bytes())
    spec = ModelSpec.from_json({p.key: p.value for p in model.metadata_props}[SPEC_KEY]).to_dict()
    spec["metrics"] = {**spec["metrics"], **{k: round(v, 6) for k, v in metrics.items()}}
    seq, step = unbundle(model)
    write_atomic(out, bundle(seq, step, ModelSpec.from_dict(spec)).SerializeToString())
    src.unlink()


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
             f"{summary.best_epoch}, {summary.val_accuracy:.2%})"
             + (f", then {summary.refit_epochs} on training + validation data" if summary.refit_epochs else "")]
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
