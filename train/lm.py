"""Language-model pretraining: truncated back-propagation through time, state carried across batches.

The LM shares the classifier's input layer and recurrent layers (a RecurrentNet) and adds an
adaptive softmax over the vocabulary; fine-tuning (`train sentiment --init`) keeps the shared part.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from train.checkpoint import Checkpoint, save_checkpoint
from train.loop import CHECKPOINT, Optimisation, begin, progress, snapshot
from train.metrics import log_epoch
from train.models import RecurrentNet
from train.schedule import cosine_warmup


class LanguageModel(nn.Module):
    """A RecurrentNet predicting the next token at every step.

    `adaptive`: an adaptive softmax beside the net (word vocabularies; the net's own head is left
    for fine-tuning); otherwise the net's head is the next-token classifier (characters), so the
    exported graphs give the next character's logits. While training, the last layer's output is
    dropped out with the net's `dropout` before the softmax (the layers below already are).
    """

    def __init__(self, net: RecurrentNet, adaptive: bool = True) -> None:
        super().__init__()
        self.net = net
        self.drop = nn.Dropout(net.config.dropout)
        self.out: nn.Module | None = None
        if adaptive:
            vocab, hidden = net.config.vocab, net.config.hidden
            cutoffs = [c for c in (2000, 10000) if c < vocab - 1]
            self.out = nn.AdaptiveLogSoftmaxWithLoss(hidden, vocab, cutoffs=cutoffs or [vocab // 2], div_value=4.0)

    def forward(self, x: torch.Tensor, target: torch.Tensor, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Mean loss (nats per token) of predicting `target` from `x`, both (B, T); the next state."""
        packed: Any = (state[0], state[1]) if self.net.config.cell == "lstm" else state[0]
        out, new = self.net.rnn(self.net.inp(x), packed)  # (B, T, H)
        flat = self.drop(out).reshape(-1, out.shape[-1])
        if self.out is not None:
            loss = self.out(flat, target.reshape(-1)).loss
        else:
            loss = nn.functional.cross_entropy(self.net.head(flat), target.reshape(-1))
        return loss, (list(new) if self.net.config.cell == "lstm" else [new])


def batchify(ids: np.ndarray, batch: int) -> torch.Tensor:
    """A token stream cut into `batch` contiguous rows. # (B, N // B)"""
    n = len(ids) // batch
    return torch.from_numpy(np.ascontiguousarray(ids[: n * batch].reshape(batch, n)))


@torch.no_grad()
def lm_loss(lm: LanguageModel, rows: torch.Tensor, bptt: int) -> float:
    """Mean next-token loss over a batchified stream, state carried, in nats per token."""
    lm.eval()
    state = lm.net.initial_state(rows.shape[0])
    device = state[0].device
    total, count = 0.0, 0
    for i in range(0, rows.shape[1] - 1, bptt):
        x, y = rows[:, i : i + bptt], rows[:, i + 1 : i + 1 + bptt]
        x, y = x[:, : y.shape[1]].to(device), y.to(device)
        loss, state = lm(x, y, state)
        total += float(loss) * y.numel()
        count += y.numel()
    return total / max(count, 1)


def fit_lm(lm: LanguageModel, train_ids: np.ndarray, val_ids: np.ndarray, args: Optimisation, bptt: int,
           out: Path, meta: Checkpoint, resume: bool = False, stop_after: int = 0,
           checkpoint_minutes: float = 0.0) -> dict[str, Any]:
    """Train the LM by truncated BPTT (windows of `bptt` steps, state detached between them).

    Trains on the device the LM is on. Learning rate: cosine decay with warm-up; gradients clipped
    to `args.clip`. Each epoch starts its windows at a different offset (0 to bptt - 1, drawn from
    the seed and the epoch), so that window boundaries fall at new places every epoch.
    A checkpoint is written after every epoch and, with `checkpoint_minutes`, also within an
    epoch every that many minutes (position, carried state, running loss and RNG included), so
    that `resume` continues a long epoch where it stopped, exactly as if it had not.
    """
    torch.manual_seed(args.seed)
    rows, val_rows = batchify(train_ids, args.batch), batchify(val_ids, min(args.batch, 16))
    windows = math.ceil((rows.shape[1] - 1) / bptt)
    opt = torch.optim.Adam(lm.parameters(), lr=args.lr)
    total = max(args.epochs * windows, 1)
    sched = cosine_warmup(opt, total, warmup_steps=100)
    start, elapsed_s, metrics = 0, 0.0, {}
    partial: dict[str, Any] | None = None  # where an interrupted epoch stopped
    ckpt = begin(out, resume, lm, opt, sched)
    if ckpt is not None:
        start, elapsed_s, metrics = ckpt.epoch, ckpt.train_seconds, ckpt.metrics
        partial = (ckpt.resume or {}).get("partial")
        print(f"resuming {out / CHECKPOINT} after epoch {start}"
              + (f", at column {partial['next']:,} of {rows.shape[1]:,} in epoch {start + 1}" if partial else ""),
              file=sys.stderr)

    meta = replace(meta, bptt=bptt)

    def save(epoch_done: int, **extra: Any) -> None:
        save_checkpoint(out / CHECKPOINT, snapshot(meta, args, lm.net.state_dict(), opt, sched, epoch_done,
                                                   elapsed_s, metrics, lm_state_dict=lm.state_dict(), **extra))

    for epoch in range(start, min(args.epochs, stop_after) if stop_after else args.epochs):
        t0 = last_save = time.perf_counter()
        lm.train()
        state = lm.net.initial_state(args.batch)
        device = state[0].device
        loss_sum, count = 0.0, 0
        offset = int(torch.randint(bptt, (1,), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch)))
        if partial is not None:  # continue the interrupted epoch where it stopped
            offset, loss_sum, count = partial["next"], partial["loss_sum"], partial["count"]
            state = [s.to(device) for s in partial["state"]]
            partial = None
        bar = progress(range(offset, rows.shape[1] - 1, bptt), f"lm epoch {epoch + 1}/{args.epochs}")
        for i in bar:
            x, y = rows[:, i : i + bptt], rows[:, i + 1 : i + 1 + bptt]
            x, y = x[:, : y.shape[1]].to(device), y.to(device)
            state = [s.detach() for s in state]
            loss, state = lm(x, y, state)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(lm.parameters(), args.clip)
            opt.step()
            sched.step()
            loss_sum += loss.item() * y.numel()
            count += y.numel()
            bar.set_postfix(loss=f"{loss_sum / count:.3f}", refresh=False)
            now = time.perf_counter()
            if checkpoint_minutes and now - last_save >= checkpoint_minutes * 60 and i + bptt < rows.shape[1] - 1:
                elapsed_s += now - t0
                t0 = last_save = now
                save(epoch, partial={"next": i + bptt, "loss_sum": loss_sum, "count": count,
                                     "state": [s.detach().cpu() for s in state]})
        elapsed_s += time.perf_counter() - t0
        metrics = {"epoch": epoch + 1, "train_loss": loss_sum / max(count, 1),
                   "val_loss": lm_loss(lm, val_rows, bptt), "train_seconds": round(elapsed_s, 1)}
        save(epoch + 1)
        log_epoch(out, metrics)  # after the checkpoint: a kill between the two is mended by `begin`
    return metrics
