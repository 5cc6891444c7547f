"""Stacking: weigh a model's two logit sources, its head and its n-gram readout, on held-out reviews.

The head (trained with the recurrent layers) and the n-gram readout (fitted on its own by
`train ngrams`) each fit their training reviews almost
perfectly, so neither their sum nor any weighting learnt on those reviews is right. `stack`
fits `alpha * head + beta * ngrams + bias` by logistic regression (cross-entropy, L-BFGS,
float64) on reviews that neither saw (the fixed `--holdout` pick), then folds alpha, beta and
bias into the two heads' weights: the model, its exported graphs and its size stay as they were.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from train.checkpoint import Checkpoint, save_checkpoint
from train.loop import CHECKPOINT, Data, accuracy
from train.metrics import append_metrics
from train.models import RecurrentNet, build


def logit_parts(net: RecurrentNet, data: Data, batch: int = 250) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The head's logits, the n-gram readout's logits (each (N, C)) and the labels (N,), in data order."""
    net.eval()
    head, ngrams = torch.zeros(len(data), net.config.classes), torch.zeros(len(data), net.config.classes)
    labels = torch.zeros(len(data), dtype=torch.int64)
    with torch.no_grad():
        for idx in data.batches(batch, None):
            inputs, labels[idx] = data.batch(idx)
            total, _ = net(**inputs)
            alone = net.ngram_logits(**inputs)
            head[idx], ngrams[idx] = total - alone, alone
    return head, ngrams, labels


def fit_weights(head: torch.Tensor, ngrams: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """alpha, beta and a bias (C,) minimising the cross-entropy of alpha * head + beta * ngrams + bias."""
    h, n = head.double(), ngrams.double()
    alpha, beta = torch.ones((), dtype=torch.float64, requires_grad=True), torch.ones((), dtype=torch.float64,
                                                                                        requires_grad=True)
    bias = torch.zeros(head.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([alpha, beta, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(alpha * h + beta * n + bias, labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(alpha.detach()), float(beta.detach()), bias.detach().float()


def stack(ckpt: Checkpoint, init: Path, held: Data | None, test: Data, out: Path) -> dict[str, Any]:
    """Fit the weights on the held-out reviews `held`, fold them into the heads of the checkpoint
    `ckpt` (loaded from `init`), write out/checkpoint.pt; returns its metrics."""
    net = build(ckpt.net_config())
    net.load_state_dict(ckpt.state_dict)
    if not net.config.ngram_buckets:
        raise ValueError(f"{init}: the model has no n-gram readout to stack (fit one with `train ngrams`)")
    if held is None:
        raise ValueError("stack fits its weights on held-out reviews: give --holdout N, the same N as the "
                         "stages before")
    alpha, beta, bias = fit_weights(*logit_parts(net, held))
    weights = {"alpha": alpha, "beta": beta, "bias": bias.tolist(), "holdout_reviews": len(held),
               "from": str(init)}
    with torch.no_grad():
        net.head.weight.mul_(alpha)
        net.head.bias.mul_(alpha).add_(bias)
        net.ngram_head.weight.mul_(beta)
    test_acc = accuracy(net, test)
    metrics = {**ckpt.metrics, "test_accuracy": test_acc}
    metrics["holdout_accuracy"] = accuracy(net, held)
    print(f"stack: alpha {alpha:.4f}, beta {beta:.4f}, bias {[round(b, 4) for b in bias.tolist()]}; "
          + (f"held-out accuracy {metrics['holdout_accuracy']:.4%}, " if "holdout_accuracy" in metrics else "")
          + f"test accuracy {test_acc:.4%}", file=sys.stderr)
    save_checkpoint(out / CHECKPOINT, replace(ckpt, state_dict=net.state_dict(), metrics=metrics, stack=weights,
                                              resume=None))
    append_metrics(out, {**metrics, "stack": weights}, echo=False)
    return metrics
