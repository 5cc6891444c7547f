"""The training loop: Adam, minibatches, cosine schedule, per-epoch evaluation, atomic checkpoints."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from tqdm import tqdm

from edgeinfer.atomic import remove_stale_temps
from train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from train.metrics import log_epoch, sync_metrics
from train.schedule import cosine_warmup

T = TypeVar("T")


def progress(items: Iterable[T], desc: str) -> tqdm:
    """A progress bar on stderr: live on a terminal, one line a minute in a log file."""
    tty = sys.stderr.isatty()
    return tqdm(items, desc=desc, file=sys.stderr, leave=False, mininterval=0.5 if tty else 60, ascii=not tty)


CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Optimisation:
    """How a model is fitted, whatever the task; stored in the checkpoint as provenance. Each task
    extends it with its own settings (train.configs)."""

    epochs: int = 10
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    seed: int = 0
    anytime: float = 0.0  # weight of the mean loss over every step's output (early-exit training)


def restore(path: Path, model: nn.Module, opt: Optimizer, sched: LRScheduler) -> Checkpoint:
    """Resume a run from its checkpoint: the model's weights (a language model's whole module,
    adaptive softmax included, when the checkpoint holds one), the optimizer, the schedule and
    the RNG state; returns the checkpoint (epoch, seconds, metrics and any partial epoch)."""
    ckpt = load_checkpoint(path)
    state = ckpt.resume or {}
    if "optimizer" not in state or "scheduler" not in state:
        raise CheckpointError(f"{path}: holds no optimizer state to resume (a `train ngrams` or `train stack` "
                              "result?); leave out --resume or give another --out")
    model.load_state_dict(state.get("lm_state_dict", ckpt.state_dict))
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if "rng" in state:
        torch.set_rng_state(state["rng"])
    return ckpt


def begin(out: Path, resume: bool, model: nn.Module, opt: Optimizer, sched: LRScheduler) -> Checkpoint | None:
    """Where a run in `out` starts: with `resume` and a checkpoint there, that checkpoint, restored
    into `model`, `opt` and `sched` (see `restore`); otherwise None, a run from epoch 1.

    The metrics log is made to agree with it (train.metrics.sync_metrics): the records of the
    epochs the checkpoint completed, or none for a fresh start in a folder without a checkpoint
    (a fresh start over a finished run replaces its log epoch by epoch, as it replaces the
    checkpoint). A `resume` that finds no checkpoint says so in one line on stderr, naming and
    removing the temporary file an interrupted first save left.
    """
    path = out / CHECKPOINT
    if resume and path.is_file():
        ckpt = restore(path, model, opt, sched)
        sync_metrics(out, ckpt.epoch, ckpt.metrics)
        return ckpt
    if resume:
        left, note = remove_stale_temps(path), ""  # what a save killed before its rename left behind
        if left:
            files = "a temporary file" if left == 1 else f"{left} temporary files"
            note = f" (an interrupted save left only {files}, now removed)"
        print(f"resume: no checkpoint in {out}{note}; starting from epoch 1", file=sys.stderr)
    if not path.is_file():
        sync_metrics(out, 0)
    return None


def snapshot(meta: Checkpoint, args: Optimisation, weights: dict[str, torch.Tensor], opt: Optimizer,
             sched: LRScheduler, epoch: int, seconds: float, metrics: dict[str, Any], **resume: Any) -> Checkpoint:
    """The checkpoint of a run described by `meta` after `epoch` epochs: the net's `weights`,
    provenance, and what resuming needs (optimizer, schedule, RNG, and the `resume` extras)."""
    return replace(meta, state_dict=weights, train_args=asdict(args), epoch=epoch, train_seconds=seconds,
                   metrics=metrics, resume={"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                            "rng": torch.get_rng_state(), **resume})


class Data(Protocol):
    """A labelled data set the loop can batch: model keyword arguments and labels per index set."""

    def __len__(self) -> int: ...

    def batch(self, idx: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]: ...

    def batches(self, batch: int, gen: torch.Generator | None) -> list[torch.Tensor]: ...


class TensorData:
    """Fixed-shape inputs x (N, T, F) and labels y (N,)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Inputs and labels of the rows `idx`."""
        return {"x": self.x[idx]}, self.y[idx]

    def batches(self, batch: int, gen: torch.Generator | None) -> list[torch.Tensor]:
        """Index sets of one epoch, shuffled by `gen` (in order when None)."""
        order = torch.randperm(len(self), generator=gen) if gen is not None else torch.arange(len(self))
        return list(order.split(batch))


def resolve_device(name: str) -> torch.device:
    """A torch device for training ("cpu", "cuda", "cuda:1", ...); ValueError when it is missing."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device {name!r} is not a torch device; use cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch build sees no CUDA GPU; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s); use cuda:0")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: training runs on cpu or cuda[:N]")
    return device


def to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Model inputs (x, lengths, ...) moved to `device`."""
    return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters."""
    return next(model.parameters()).device


LogitsOf = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]  # (model, batch inputs) -> (B, C)


def own_logits(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A classifier's logits (B, C) after each row's last valid step: `model(**inputs)[0]`."""
    logits: torch.Tensor = model(**inputs)[0]
    return logits


@torch.no_grad()
def accuracy(model: nn.Module, data: Data, batch: int = 500, logits_of: LogitsOf | None = None) -> float:
    """Top-1 accuracy of a classifier over a data set, in [0, 1], on the model's device
    (`logits_of`: what it answers with, as `fit` takes it; default its own logits)."""
    model.eval()
    device = model_device(model)
    correct = 0
    for idx in data.batches(batch, None):
        inputs, y = data.batch(idx)
        logits = (logits_of or own_logits)(model, to_device(inputs, device))
        correct += int((logits.argmax(1) == y.to(device)).sum())
    return correct / max(len(data), 1)


def every_step_outputs(model: nn.Module, inputs: dict[str, torch.Tensor], y: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's last logits (B, C), every valid step's logits (N, C) and their targets (N,).

    With `lengths` in `inputs` (right-padded rows), only each row's first `lengths` steps count.
    """
    every = model.every_step(inputs["x"])  # (B, T, C): each step's prediction
    batch, steps = every.shape[:2]
    lengths = inputs.get("lengths")
    if lengths is None:
        return every[:, -1], every.reshape(-1, every.shape[-1]), y.repeat_interleave(steps)
    valid = torch.arange(steps, device=every.device)[None, :] < lengths[:, None]  # (B, T)
    last = every[torch.arange(batch, device=every.device), lengths - 1]
    return last, every[valid], y[:, None].expand(batch, steps)[valid]


def fit(
    model: nn.Module,
    train: Data,
    test: Data,
    args: Optimisation,
    out: Path,
    meta: Checkpoint,
    resume: bool = False,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    stop_after: int = 0,
    logits_of: LogitsOf | None = None,
) -> dict[str, Any]:
    """Train a classifier, evaluating on `test` after each epoch; returns the final metrics.

    `meta` describes the run (task, labels, input spec, model config: `Checkpoint.new`); every
    checkpoint is it with the weights and training state added. With `resume`, training
    continues from out/checkpoint.pt exactly where it stopped. `stop_after` ends the run after
    that many epochs, as an interruption would (resume it later). Parameters without
    gradients stay as they are. `logits_of(model, inputs)` gives the logits (B, C) the loss and
    the epochs' test accuracy read (default: the model's own, `model(**inputs)[0]`). The model
    trains on the device it is on (move it first); batches are moved there step by step.
    """
    torch.manual_seed(args.seed)
    device = model_device(model)
    steps_per_epoch = len(train.batches(args.batch, torch.Generator().manual_seed(0)))
    trainable = [p for p in model.parameters() if p.requires_grad]

    opt = torch.optim.Adam(trainable, lr=args.lr, weight_decay=args.weight_decay)
    total = max(args.epochs * steps_per_epoch, 1)
    sched = cosine_warmup(opt, total, warmup_steps=max(1, min(200, total // 10)))
    start, elapsed_s, metrics = 0, 0.0, {}
    ckpt_path = out / CHECKPOINT
    ckpt = begin(out, resume, model, opt, sched)
    if ckpt is not None:
        start, elapsed_s, metrics = ckpt.epoch, ckpt.train_seconds, ckpt.metrics
        print(f"resuming {ckpt_path} after epoch {start}", file=sys.stderr)
    last = min(args.epochs, stop_after) if stop_after else args.epochs
    for epoch in range(start, last):
        t0 = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = progress(train.batches(args.batch, gen), f"epoch {epoch + 1}/{args.epochs}")
        for step, idx in enumerate(bar):
            inputs, yb = train.batch(idx)
            if augment is not None:
                inputs["x"] = augment(inputs["x"], gen)
            inputs, yb = to_device(inputs, device), yb.to(device)
            if args.anytime:
                logits, steps, targets = every_step_outputs(model, inputs, yb)
                loss = nn.functional.cross_entropy(logits, yb) + args.anytime * nn.functional.cross_entropy(
                    steps, targets)
            else:
                logits = own_logits(model, inputs) if logits_of is None else logits_of(model, inputs)
                loss = nn.functional.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip:
                nn.utils.clip_grad_norm_(trainable, args.clip)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
        elapsed_s += time.perf_counter() - t0
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "test_accuracy": accuracy(model, test, logits_of=logits_of),
            "lr": sched.get_last_lr()[0],
            "train_seconds": round(elapsed_s, 1),
        }
        save_checkpoint(ckpt_path, snapshot(meta, args, model.state_dict(), opt, sched, epoch + 1, elapsed_s, metrics))
        log_epoch(out, metrics)  # after the checkpoint: a kill between the two is mended by `begin`
    return metrics
