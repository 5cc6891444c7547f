"""The one model family: input layer -> N stacked unidirectional recurrent layers -> linear head."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

RNN_TYPES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class NetConfig:
    """Constructor arguments of `RecurrentNet`, stored in every checkpoint."""

    cell: str  # "rnn" (tanh Elman), "lstm" or "gru"
    input_size: int  # features per step F; with `vocab`, the embedding width
    hidden: int
    layers: int
    classes: int
    proj: int = 0  # width of a linear input layer; 0 feeds the features straight to the cell
    dropout: float = 0.0  # between stacked layers, and on word embeddings
    vocab: int = 0  # > 0: the input is token ids (B, T) int64, embedded by an nn.Embedding
    head_dropout: float = 0.0  # on the last layer's output before the classifier head (training only)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        return asdict(self)


class RecurrentNet(nn.Module):
    """Input layer -> stacked RNN/LSTM/GRU (batch_first) -> linear head on the last step."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if config.cell not in RNN_TYPES:
            raise ValueError(f"cell must be one of {', '.join(RNN_TYPES)}, not {config.cell!r}")
        self.config = config
        self.inp: nn.Module
        if config.vocab:
            self.inp = nn.Sequential(nn.Embedding(config.vocab, config.input_size, padding_idx=0),
                                     nn.Dropout(config.dropout))
            width = config.input_size
        else:
            self.inp = nn.Linear(config.input_size, config.proj) if config.proj else nn.Identity()
            width = config.proj or config.input_size
        kwargs: dict[str, Any] = dict(num_layers=config.layers, batch_first=True,
                                      dropout=config.dropout if config.layers > 1 else 0.0)
        if config.cell == "rnn":
            kwargs["nonlinearity"] = "tanh"
        self.rnn = RNN_TYPES[config.cell](width, config.hidden, **kwargs)
        self.head_drop = nn.Dropout(config.head_dropout)  # no weights: exported graphs are unchanged
        self.head = nn.Linear(config.hidden, config.classes)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors: ("h", "c") for lstm, ("h",) otherwise."""
        return ("h", "c") if self.config.cell == "lstm" else ("h",)

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        """Zero state tensors on the model's device, each (L, B, H)."""
        c, device = self.config, self.head.weight.device
        return [torch.zeros(c.layers, batch, c.hidden, device=device) for _ in self.state_names]

    def forward(
        self, x: torch.Tensor, state: list[torch.Tensor] | None = None, lengths: torch.Tensor | None = None,
        exact_state: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits after the last (valid) step (B, C) and the state [(L, B, H), ...].

        x: (B, T, F) features or (B, T) token ids; `lengths` (B,) marks how many steps of each
        right-padded row are real, so that a padded batch gives each row's logits alone. The
        returned state of a padded row is exact only with `exact_state` (packed sequences, as
        exported; 5-7x slower to train on the CPU than the padded path that training uses).
        """
        if state is None:
            state = self.initial_state(x.shape[0])
        packed_state: Any = (state[0], state[1]) if self.config.cell == "lstm" else state[0]
        inputs: Any = self.inp(x)  # (B, T, E)
        if lengths is not None and exact_state:
            inputs = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, new = self.rnn(inputs, packed_state)  # out: (B, T, H) unless packed
        new_state = list(new) if self.config.cell == "lstm" else [new]
        if lengths is not None and not exact_state:
            last = out[torch.arange(out.shape[0], device=out.device), lengths - 1]  # (B, H)
            return self.head(self.head_drop(last)), new_state
        return self.head(self.head_drop(new_state[0][-1])), new_state

    def every_step(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after every step of unpadded x (B, T[, F]) from the initial state. # (B, T, C)"""
        packed_state: Any = tuple(self.initial_state(x.shape[0])) if self.config.cell == "lstm" else \
            self.initial_state(x.shape[0])[0]
        out, _ = self.rnn(self.inp(x), packed_state)  # (B, T, H)
        return self.head(self.head_drop(out))


def build(config: dict[str, Any] | NetConfig) -> RecurrentNet:
    """A model from its constructor arguments (a NetConfig or the dict in a checkpoint)."""
    return RecurrentNet(config if isinstance(config, NetConfig) else NetConfig(**config))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
