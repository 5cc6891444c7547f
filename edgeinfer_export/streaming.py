"""A user's module as streaming PyTorch modules: state in, state out, for the sequence and step graphs.

Two ways in, one shape out (`StreamingNet`: `initial_state(batch)` and `forward(x, state, lengths)`
giving the answers and the next state):

- `PartsNet` runs the parts found or named (edgeinfer_export.parts) with an explicit state;
- `ProtocolNet` wraps a module that already follows the streaming protocol: it has
  `initial_state(batch) -> list[Tensor]` (each (L, B, H)) and `forward(x, state) -> (y, new_state)`,
  with `lengths=` as a keyword for token models (see docs/export.md).
"""
from __future__ import annotations

import inspect
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from edgeinfer_export.errors import ExportError, one_line
from edgeinfer_export.parts import Found, cell_of


def _final_softmax(layers: list[nn.Module]) -> list[nn.Module]:
    """The head without a trailing Softmax/LogSoftmax: the file stores logits, runtimes apply the softmax."""
    return layers[:-1] if layers and isinstance(layers[-1], (nn.Softmax, nn.LogSoftmax)) else layers


class StreamingNet(nn.Module):
    """What every exported model is in PyTorch: answers and state for (B, T[, F]) inputs."""

    state_names: tuple[str, ...] = ()
    state_shapes: tuple[tuple[int, int], ...] = ()  # (layers, hidden) of each state tensor
    per_step = False

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        """Zeros for `batch` streams, each (L, B, H)."""
        return [torch.zeros(layers, batch, hidden) for layers, hidden in self.state_shapes]

    def forward(self, x: torch.Tensor, state: list[torch.Tensor], lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:  # pragma: no cover - overridden
        raise NotImplementedError


class PartsNet(StreamingNet):
    """Embedding? -> per-step layers -> RNN/LSTM/GRU modules -> head, with the state explicit."""

    def __init__(self, found: Found, per_step: bool) -> None:
        super().__init__()
        self.inp = found.embedding if found.embedding is not None else nn.Identity()
        self.pre = nn.Sequential(*found.pre)
        self.rnns = nn.ModuleList(found.recurrent)
        self.head = nn.Sequential(*_final_softmax(found.head))  # "/head/" scope: kept fp32 by the quantizer
        # the user's forward ends in this (Softmax, LogSoftmax), which the file leaves to the runtimes
        self.dropped = found.head[-1] if len(self.head) < len(found.head) else None
        self.per_step = per_step
        single = len(found.recurrent) == 1
        names: list[str] = []
        shapes: list[tuple[int, int]] = []
        for i, rnn in enumerate(found.recurrent):
            suffix = "" if single else str(i)
            parts = ("h", "c") if cell_of(rnn) == "lstm" else ("h",)
            names += [f"{p}{suffix}" for p in parts]
            shapes += [(rnn.num_layers, rnn.hidden_size)] * len(parts)
        self.state_names, self.state_shapes = tuple(names), tuple(shapes)

    def forward(self, x: torch.Tensor, state: list[torch.Tensor], lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, T, F) or (B, T) ids; state as `initial_state`; lengths (B,) for right-padded token rows.
        Returns the answers' logits (B, C), or (B, T, C) per step, and the state after each row's
        last valid step."""
        z = self.pre(self.inp(x))  # (B, T, F')
        steps = z.shape[1]
        new: list[torch.Tensor] = []
        k = 0
        for module in self.rnns:
            rnn = cast(nn.RNNBase, module)
            lstm = isinstance(rnn, nn.LSTM)
            hx: Any = (state[k], state[k + 1]) if lstm else state[k]
            k += 2 if lstm else 1
            seq = z if rnn.batch_first else z.transpose(0, 1)
            if lengths is not None:
                packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=rnn.batch_first, enforce_sorted=False)
                out, hn = rnn(packed, hx)
                out, _ = pad_packed_sequence(out, batch_first=rnn.batch_first, total_length=steps)
            else:
                out, hn = rnn(seq, hx)
            z = out if rnn.batch_first else out.transpose(0, 1)  # (B, T, H)
            new += list(hn) if lstm else [hn]
        if self.per_step:
            return self.head(z), new
        # (B, H) at each row's last valid step
        last = z[:, -1] if lengths is None else z[torch.arange(z.shape[0]), lengths - 1]
        return self.head(last), new


class ProtocolNet(StreamingNet):
    """A module that follows the streaming protocol, as a StreamingNet."""

    def __init__(self, module: nn.Module, per_step: bool, tokens: bool) -> None:
        super().__init__()
        self.module = module
        self.per_step = per_step
        self.takes_lengths = "lengths" in inspect.signature(module.forward).parameters
        if tokens and not self.takes_lengths:
            raise ExportError(f"{type(module).__name__}.forward takes no `lengths`: a token model's forward must "
                              "take lengths=(B,) so that a right-padded batch gives each row as if alone")
        try:
            initial: Any = module.initial_state  # the protocol's method
            state = [torch.as_tensor(s) for s in initial(2)]
        except Exception as exc:
            raise ExportError(f"{type(module).__name__}.initial_state(2) failed ({one_line(exc)}); it must return "
                              "the initial state tensors for a batch, each (layers, batch, hidden)") from None
        if not state or any(s.dim() != 3 or s.shape[1] != 2 for s in state):
            raise ExportError(f"{type(module).__name__}.initial_state(2) gave shapes "
                              f"{[tuple(s.shape) for s in state]}; expected tensors of (layers, batch=2, hidden)")
        if any(bool((s != s.flatten()[0]).any()) for s in state):
            raise ExportError(f"{type(module).__name__}.initial_state must fill each tensor with one value "
                              "(the file stores one initial value per state tensor)")
        names = getattr(module, "state_names", None)
        if names is None:
            names = tuple(f"s{i}" for i in range(len(state))) if len(state) > 1 else ("h",)
        if len(names) != len(state):
            raise ExportError(f"{type(module).__name__}.state_names names {len(names)} tensors; initial_state gives "
                              f"{len(state)}")
        self.state_names = tuple(str(n) for n in names)
        self.state_shapes = tuple((int(s.shape[0]), int(s.shape[2])) for s in state)
        self.initial_values = tuple(float(s.flatten()[0]) for s in state)

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        """Each state tensor filled with the module's initial value, for `batch` streams."""
        return [torch.full((layers, batch, hidden), value) for (layers, hidden), value
                in zip(self.state_shapes, self.initial_values, strict=True)]

    def forward(self, x: torch.Tensor, state: list[torch.Tensor], lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        kwargs = {"lengths": lengths} if self.takes_lengths and lengths is not None else {}
        y, new = self.module(x, list(state), **kwargs)  # the protocol: (answers, next state)
        return y, list(new)


class SequenceModule(nn.Module):
    """x (B, T[, F]), state... -> y, next state... (features)."""

    def __init__(self, net: StreamingNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net(x, list(state))
        return (y, *new)


class TokenSequenceModule(nn.Module):
    """x (B, T) int64, lengths (B,) int64, state... -> y, state after each row's last token."""

    def __init__(self, net: StreamingNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net(x, list(state), lengths)
        return (y, *new)


class StepModule(SequenceModule):
    """x (B, F) or (B,) ids, state... -> y (B, C), next state... [, softmax(y)]: one step."""

    def __init__(self, net: StreamingNet, probabilities: bool) -> None:
        super().__init__(net)
        self.probabilities = probabilities

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net(x[:, None], list(state))
        if y.dim() == 3:  # a per-step model's (B, 1, C)
            y = y[:, 0]
        return (y, *new, torch.softmax(y, dim=-1)) if self.probabilities else (y, *new)


__all__ = ["PartsNet", "ProtocolNet", "SequenceModule", "StepModule", "StreamingNet", "TokenSequenceModule"]
