"""The classifier `edgeinfer-train sequences` trains: a GRU or LSTM read step by step, a linear head.

It answers after every step (`every_step`), and is trained to: the loss is taken at every valid
step, weighted toward the end, so the running answer of a stream means "what the data says so
far". `forward` gives the last step's logits, the form the exporter streams.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


@dataclass(frozen=True)
class ClassifierConfig:
    """What the classifier is: stored in checkpoints (a resumed run must be the same model)."""

    cell: str
    features: int
    hidden: int
    layers: int
    classes: int
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SequenceClassifier(nn.Module):
    """x (B, T, F) normalised features -> logits (B, C) after the last step."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"cell {config.cell!r}; expected one of {', '.join(CELLS)}")
        self.config = config
        self.rnn = CELLS[config.cell](config.features, config.hidden, num_layers=config.layers, batch_first=True,
                                      dropout=config.dropout if config.layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden, config.classes)

    def every_step(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after every step. # (B, T, C)"""
        out, _ = self.rnn(x)
        logits: torch.Tensor = self.head(out)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after the last step. # (B, C)"""
        return self.every_step(x)[:, -1]


def anytime_loss(logits: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at every valid step, step t of a sequence of n weighted (t + 1) / n (the
    weights of a sequence sum to 1): early steps learn to guess, the last counts most.
    logits (B, T, C), y (B,), lengths (B,)."""
    batch, steps, classes = logits.shape
    t = torch.arange(steps, device=logits.device)[None, :]  # (1, T)
    valid = t < lengths[:, None]  # (B, T)
    weight = torch.where(valid, (t + 1).float(), torch.zeros((), device=logits.device))
    weight = weight / weight.sum(1, keepdim=True)
    ce = nn.functional.cross_entropy(logits.reshape(-1, classes), y[:, None].expand(batch, steps).reshape(-1),
                                     reduction="none").reshape(batch, steps)
    return (ce * weight).sum(1).mean()


def last_logits(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The logits at each sequence's last valid step. # (B, C)"""
    return logits[torch.arange(logits.shape[0]), lengths - 1]


__all__ = ["CELLS", "ClassifierConfig", "SequenceClassifier", "anytime_loss", "last_logits"]
