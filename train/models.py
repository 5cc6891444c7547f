"""The one model family: input layer -> N stacked unidirectional recurrent layers -> linear head."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from edgeinfer.spec import NGRAM_POOLS, SHORT_CELLS, SHORT_SPREAD, Readout, state_for

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
    pool: bool = False  # the head also reads the running mean and max of the last layer's outputs
    ngram_buckets: int = 0  # > 0 (token input): the head also reads the mean weight of the n-grams read
    ngram_order: int = 3  # n-grams of orders 1..ngram_order (hashed into ngram_buckets per order >= 2)
    ngram_pool: str = "mean"  # the head reads the n-gram weights' "mean" per step or their "sum"
    short_hidden: int = 0  # > 0: a short-text branch (a second one-layer cell and head), gated by length
    short_words: float = 0.0  # the branch and the main head weigh equally after this many steps

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        return asdict(self)

    @property
    def readout(self) -> Readout:
        """What the head reads besides the last hidden state (also recorded in the spec)."""
        return Readout(self.pool, self.ngram_buckets, self.ngram_order, self.ngram_pool, self.short_hidden,
                       self.short_words)


class RecurrentNet(nn.Module):
    """Input layer -> stacked RNN/LSTM/GRU (batch_first) -> linear head on the last step.

    With a readout (`pool`, `ngram_buckets`) the head also reads running summaries of every
    step so far, carried in extra state tensors (see edgeinfer.spec.state_for), so the model
    still streams one step at a time in constant memory.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if config.cell not in RNN_TYPES:
            raise ValueError(f"cell must be one of {', '.join(RNN_TYPES)}, not {config.cell!r}")
        if config.ngram_buckets and (not config.vocab or config.ngram_order < 2):
            raise ValueError("an n-gram readout needs token input (vocab > 0) and ngram_order >= 2")
        if config.short_hidden and (config.cell not in SHORT_CELLS or not config.short_words >= 1):
            raise ValueError(f"a short-text branch needs a {' or '.join(SHORT_CELLS)} cell and short_words >= 1")
        if config.ngram_pool not in NGRAM_POOLS:
            raise ValueError(f"ngram_pool must be one of {', '.join(NGRAM_POOLS)}, not {config.ngram_pool!r}")
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
        self.head = nn.Linear(config.hidden * (3 if config.pool else 1), config.classes)
        self.cell_states = 2 if config.cell == "lstm" else 1
        self.state_spec = state_for(config.cell, config.layers, config.hidden, config.readout)
        if config.ngram_buckets:  # one weight per unigram id, then ngram_buckets per longer order
            rows = config.vocab + (config.ngram_order - 1) * config.ngram_buckets
            self.ngram = nn.Embedding(rows, 1)
            nn.init.zeros_(self.ngram.weight)
            self.ngram_head = nn.Linear(1, config.classes, bias=False)  # the mean weight -> logits
        if config.short_hidden:  # reads what the main cell reads (the same embedded words)
            self.short_rnn = RNN_TYPES[config.cell](width, config.short_hidden, batch_first=True,
                                                    **({"nonlinearity": "tanh"} if config.cell == "rnn" else {}))
            self.short_head = nn.Linear(config.short_hidden, config.classes)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors: ("h", "c") for lstm, ("h",) otherwise, then the readout's."""
        return tuple(s.name for s in self.state_spec)

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        """The initial state tensors on the model's device, each (L, B, H) as the spec gives."""
        device = next((p.device for p in self.parameters()), torch.device("cpu"))  # quantized Linear: no .weight
        return [torch.from_numpy(s.initial_value(batch)).to(device) for s in self.state_spec]

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
        packed = lengths is not None and exact_state
        if self.config.short_hidden:
            return self._with_short(x, inputs, state, lengths, packed)
        if packed:
            inputs = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, new = self.rnn(inputs, packed_state)  # out: (B, T, H) unless packed
        new_state = list(new) if self.config.cell == "lstm" else [new]
        if lengths is not None and not exact_state:
            last = out[torch.arange(out.shape[0], device=out.device), lengths - 1]  # (B, H)
        else:
            last = new_state[0][-1]
        if not self.config.readout.active:
            return self.head(self.head_drop(last)), new_state
        if packed:  # padded steps come back as zeros; the readout masks them out
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        features, logits_add, extra = self._readout(x, out, lengths, state[self.cell_states:])
        return self.head(self.head_drop(torch.cat([last, *features], 1))) + logits_add, new_state + extra

    def _with_short(self, x: torch.Tensor, inputs: Any, state: list[torch.Tensor], lengths: torch.Tensor | None,
                    packed: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """forward() of a model with a short-text branch: the main model's logits (as without the
        branch) and the branch's, weighed by `short_gate` of the steps read."""
        main_state, short_state = state[:-1], state[-1]

        def run(rnn: nn.RNNBase, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if not packed or lengths is None:
                out, new = rnn(inputs, h)
                return out, new
            # one pack per cell: the exporter needs each pack_padded_sequence paired with its own pad
            seq = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out_packed, new = rnn(seq, h)
            return pad_packed_sequence(out_packed, batch_first=True, total_length=x.shape[1])[0], new

        short_out, short_new = run(self.short_rnn, short_state)
        out, new = run(self.rnn, main_state[0])
        new_state = [new]
        rows = torch.arange(out.shape[0], device=out.device)
        if lengths is not None and not packed:
            last, short_last = out[rows, lengths - 1], short_out[rows, lengths - 1]  # (B, H), (B, H')
        elif packed:
            last, short_last = new_state[0][-1], short_new[0]
        else:
            last, short_last = out[:, -1], short_out[:, -1]
        features, logits_add, extra = self._readout(x, out, lengths, main_state[self.cell_states:])
        main = self.head(self.head_drop(torch.cat([last, *features], 1))) + logits_add
        logits = self._mix(extra[0][0], main, short_last)  # count (B, 1)
        return logits, new_state + extra + [short_new]

    def _mix(self, count: torch.Tensor, main: torch.Tensor, short_out: torch.Tensor) -> torch.Tensor:
        """The logits of a model with a short-text branch: the main logits and the branch's head on
        its output `short_out`, weighed by `short_gate(count)` (shapes broadcast: (B, 1) or (1, T, 1))."""
        gate = self.short_gate(count)
        return gate * main + (1.0 - gate) * self.short_head(self.head_drop(short_out))

    def short_gate(self, count: torch.Tensor) -> torch.Tensor:
        """The main head's weight for texts of `count` steps (any shape): sigmoid((count - w) / (w / SHORT_SPREAD))."""
        words = self.config.short_words
        return torch.sigmoid((count - words) * (SHORT_SPREAD / words))

    def step(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One time step, x (B, F) or token ids (B,): the step graph's computation.

        Equal to `forward(x[:, None], state)`; with a readout it is written for one step, so that
        the exported step graph has a few nodes where the sequence path's masks and slices would
        add dozens, each with its own per-call cost.
        """
        if not self.config.readout.active:
            return self.forward(x.unsqueeze(1), state)
        k = self.cell_states
        short = self.config.short_hidden > 0
        main_state = state[:-1] if short else state
        packed_state: Any = (state[0], state[1]) if self.config.cell == "lstm" else state[0]
        inputs = self.inp(x.unsqueeze(1))
        out, new = self.rnn(inputs, packed_state)
        new_state = list(new) if self.config.cell == "lstm" else [new]
        y, extra = self.step_readout(x, out[:, 0], main_state[k:])
        if not short:
            return y, new_state + extra
        short_out, short_new = self.short_rnn(inputs, state[-1])
        return self._mix(extra[0][0], y, short_out[:, 0]), new_state + extra + [short_new]

    def step_readout(self, x: torch.Tensor, h: torch.Tensor, state: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits (B, C) and next readout state of one step, from the step's input x (B,)
        and the last layer's new hidden state h (B, H); `state` is the readout's part of the state."""
        c = self.config
        count = state[0] + 1.0  # (1, B, 1), >= 1
        features, extra, rest = [h], [count], state[1:]
        if c.pool:
            pool_sum, pool_max = rest[0] + h[None], torch.maximum(rest[1], h[None])
            features += [pool_sum[0] / count[0], pool_max[0]]
            extra += [pool_sum, pool_max]
            rest = rest[2:]
        y = self.head(self.head_drop(torch.cat(features, 1)))
        if c.ngram_buckets:
            ids = torch.cat([rest[1][:, :, 0].t().to(torch.int64), x[:, None]], 1)  # (B, context + 1)
            rows = self.ngram_rows([ids[:, j] for j in range(ids.shape[1])])
            ngram_sum = rest[0] + self.ngram(torch.stack(rows, 1)).sum(1)[None]  # (1, B, 1)
            y = y + self.ngram_head(self._ngram_pooled(ngram_sum[0], count[0]))
            extra += [ngram_sum, ids[:, 1:].t()[:, :, None].to(rest[1].dtype)]
        return y, extra

    def ngram_logits(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The n-gram readout's share of the logits (B, C) after each row's last valid step, from
        the initial state (training: `train stack` weighs it against the rest of the logits)."""
        if not self.config.ngram_buckets:
            raise ValueError("this model has no n-gram readout (ngram_buckets = 0)")
        state = self.initial_state(x.shape[0])
        weights, _ = self._ngram_weights(x, state[self._prev_index], lengths)  # (B, T)
        steps = x.shape[1]
        counts = torch.full_like(weights[:, 0], steps) if lengths is None else lengths.to(weights.dtype)
        valid = torch.arange(steps, device=x.device)[None, :] < counts[:, None]
        total = (weights * valid).sum(1)[:, None]  # (B, 1)
        return self.ngram_head(self._ngram_pooled(total, counts.clamp(min=1.0)[:, None]))

    def branch_logits(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The short-text branch's own logits (B, C) after each row's last valid step, from the
        initial state; the main model is not run (training: the branch learns from whole reviews
        as well as short texts on these, `train sentiment --short-branch`)."""
        if not self.config.short_hidden:
            raise ValueError("this model has no short-text branch (short_hidden = 0)")
        short_out, _ = self.short_rnn(self.inp(x), self.initial_state(x.shape[0])[-1])  # (B, T, H')
        rows = torch.arange(short_out.shape[0], device=short_out.device)
        last = short_out[rows, lengths - 1] if lengths is not None else short_out[:, -1]
        return self.short_head(self.head_drop(last))

    def _readout(self, x: torch.Tensor, out: torch.Tensor, lengths: torch.Tensor | None,
                 state: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor | float, list[torch.Tensor]]:
        """The readout's head features, its n-gram logits, and its next state tensors.

        x (B, T[, F]); out (B, T, H), the last layer's outputs; `lengths` (B,) marks the real
        steps of right-padded rows (None: all T); `state`: count[, pool_sum, pool_max][, ngram_sum,
        prev] as state_for lists them.
        """
        batch, steps = out.shape[:2]
        valid = torch.ones(batch, steps, dtype=torch.bool, device=out.device) if lengths is None else \
            torch.arange(steps, device=out.device)[None, :] < lengths[:, None]  # (B, T)
        real = valid.to(out.dtype)
        count = state[0] + real.sum(1)[None, :, None]  # (1, B, 1)
        denom = count[0].clamp(min=1.0)  # (B, 1)
        features: list[torch.Tensor] = []
        extra, rest = [count], state[1:]
        if self.config.pool:
            pool_sum = rest[0] + (out * real[:, :, None]).sum(1)[None]  # (1, B, H)
            pool_max = torch.maximum(rest[1], out.masked_fill(~valid[:, :, None], -1.0).max(1).values[None])
            features += [pool_sum[0] / denom, pool_max[0]]
            extra += [pool_sum, pool_max]
            rest = rest[2:]
        logits_add: torch.Tensor | float = 0.0
        if self.config.ngram_buckets:
            weights, prev_next = self._ngram_weights(x, rest[1], lengths)  # (B, T), (order - 1, B, 1)
            ngram_sum = rest[0] + (weights * real).sum(1)[None, :, None]  # (1, B, 1)
            logits_add = self.ngram_head(self._ngram_pooled(ngram_sum[0], denom))
            extra += [ngram_sum, prev_next]
        return features, logits_add, extra

    def _ngram_pooled(self, ngram_sum: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """What the n-gram head reads (B, 1): the summed weights (B, 1), divided by the steps
        read (B, 1), >= 1, for the "mean" pool."""
        return ngram_sum / count if self.config.ngram_pool == "mean" else ngram_sum

    def ngram_rows(self, ids: list[torch.Tensor]) -> list[torch.Tensor]:
        """Table rows of the n-grams ending at the newest ids, from `ngram_order` aligned id
        tensors, oldest first (any equal shapes): the unigram's row is its id; an n-gram of order
        k >= 2 has row vocab + (k - 2) * buckets + its bucket, the polynomial hash of its ids,
        oldest first, modulo `ngram_buckets` (reduced after every id, so int64 never overflows
        while buckets * vocab < 2**62). Returns one tensor per order, 1 first."""
        c = self.config
        context = len(ids) - 1
        rows = [ids[-1]]
        for back in range(1, context + 1):  # the n-gram of order back + 1
            key = ids[context - back]
            for newer in ids[context - back + 1:]:
                key = torch.remainder(key * c.vocab + newer, c.ngram_buckets)
            rows.append(c.vocab + (back - 1) * c.ngram_buckets + key)
        return rows

    def _ngram_weights(self, x: torch.Tensor, prev: torch.Tensor, lengths: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed weight of the n-grams ending at each step (B, T), and the next `prev`.

        Ids before the text's start are 0 (padding); the buckets are `ngram_rows`'.
        """
        context = self.config.ngram_order - 1
        full = torch.cat([prev[:, :, 0].t().to(torch.int64), x], 1)  # (B, context + T), oldest first
        steps = x.shape[1]
        rows = self.ngram_rows([full[:, j: j + steps] for j in range(context + 1)])  # each (B, T)
        weights = self.ngram(torch.stack(rows, -1)).sum(-2)[..., 0]  # (B, T)
        ends = (torch.full_like(x[:, 0], steps) if lengths is None else lengths) + context  # (B,)
        picks = ends[:, None] - context + torch.arange(context, device=x.device)[None, :]  # (B, context)
        prev_next = torch.gather(full, 1, picks).t()[:, :, None].to(prev.dtype)
        return weights, prev_next

    def every_step(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after every step of unpadded x (B, T[, F]) from the initial state. # (B, T, C)"""
        state = self.initial_state(x.shape[0])
        packed_state: Any = tuple(state[:2]) if self.config.cell == "lstm" else state[0]
        out, _ = self.rnn(self.inp(x), packed_state)  # (B, T, H)
        if not self.config.readout.active:
            return self.head(self.head_drop(out))
        seen = torch.arange(1, x.shape[1] + 1, device=out.device, dtype=out.dtype)[None, :, None]  # (1, T, 1)
        features = [out]
        if self.config.pool:  # hidden states lie in (-1, 1), above the initial max of -1
            features += [out.cumsum(1) / seen, out.cummax(1).values]
        logits = self.head(self.head_drop(torch.cat(features, 2)))
        if self.config.ngram_buckets:
            weights, _ = self._ngram_weights(x, state[self._prev_index], None)  # (B, T)
            logits = logits + self.ngram_head(self._ngram_pooled(weights.cumsum(1)[:, :, None], seen))
        if self.config.short_hidden:
            short_out, _ = self.short_rnn(self.inp(x), state[-1])  # (B, T, H')
            logits = self._mix(seen, logits, short_out)  # seen (1, T, 1)
        return logits

    @property
    def _prev_index(self) -> int:
        """The index of the n-gram readout's `prev` state tensor."""
        return self.state_names.index("prev")


def build(config: dict[str, Any] | NetConfig) -> RecurrentNet:
    """A model from its constructor arguments (a NetConfig or the dict in a checkpoint)."""
    return RecurrentNet(config if isinstance(config, NetConfig) else NetConfig(**config))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
