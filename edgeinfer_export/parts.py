"""What a user's module is made of: the parts a stream can run cell by cell, or why not.

A streamable module is, in order: an optional `nn.Embedding` (token inputs), optional per-step
layers, one or more unidirectional `nn.RNN` / `nn.LSTM` / `nn.GRU` modules (each reading the
previous one's outputs), and a head: per-step layers ending in an `nn.Linear`, read at the last
step or at every step. `find_parts` reads them off the module's children in the order they were
registered; `Parts` names them instead when the order (or nesting) says otherwise. Anything a
stream cannot run one step at a time is an ExportError naming the part and why.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from edgeinfer_export.errors import ExportError

RECURRENT = (nn.RNN, nn.LSTM, nn.GRU)
# layers that read one step's vector and nothing else: safe before or after the recurrent part
PER_STEP = (nn.Linear, nn.Dropout, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh,
            nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.LayerNorm, nn.Softmax, nn.LogSoftmax)
WHOLE_SEQUENCE: dict[type[nn.Module], str] = {
    nn.MultiheadAttention: "attention reads the whole sequence at once, steps not read yet included",
    nn.Transformer: "a transformer attends over the whole sequence at once",
    nn.TransformerEncoder: "a transformer encoder attends over the whole sequence at once",
    nn.TransformerEncoderLayer: "a transformer layer attends over the whole sequence at once",
    nn.TransformerDecoder: "a transformer decoder attends over the whole sequence at once",
    nn.TransformerDecoderLayer: "a transformer layer attends over the whole sequence at once",
    nn.Conv1d: "a convolution over time reads several steps at once (and, unpadded, steps ahead)",
    nn.BatchNorm1d: "batch normalisation over time mixes steps (fold it into the next Linear, or use LayerNorm)",
    nn.AdaptiveAvgPool1d: "pooling over time reads every step at once",
    nn.AdaptiveMaxPool1d: "pooling over time reads every step at once",
    nn.AvgPool1d: "pooling over time reads several steps at once",
    nn.MaxPool1d: "pooling over time reads several steps at once",
    nn.Flatten: "flattening steps together makes the head read all steps at once",
}
PROTOCOL = "initial_state"  # a module with this method follows the streaming protocol (edgeinfer_export.protocol)


@dataclass
class Parts:
    """The parts of a module, named: `recurrent` (one module or several in order), `head` (per-step
    layers, ending in the Linear that gives the answers), and optionally `embedding` (token inputs)
    and `pre` (per-step layers between the input and the recurrent part)."""

    recurrent: nn.Module | Sequence[nn.Module]
    head: nn.Module | Sequence[nn.Module]
    embedding: nn.Embedding | None = None
    pre: Sequence[nn.Module] = field(default_factory=list)


@dataclass
class Found:
    """Parts as checked: flat lists of modules, with the names they have in the user's module."""

    embedding: nn.Embedding | None
    pre: list[nn.Module]
    recurrent: list[nn.RNNBase]
    head: list[nn.Module]
    names: dict[int, str]  # id(module) -> its name in the user's module, for messages

    def name(self, module: nn.Module) -> str:
        """`'fc' (Linear)`: how messages name a part."""
        return f"{self.names.get(id(module), '?')!r} ({type(module).__name__})"

    @property
    def cell(self) -> str:
        """The first recurrent module's cell, as the spec names it ("rnn", "lstm", "gru")."""
        return cell_of(self.recurrent[0])

    @property
    def hidden(self) -> int:
        """The last recurrent module's hidden size: what the head reads per step."""
        return int(self.recurrent[-1].hidden_size)


def cell_of(rnn: nn.Module) -> str:
    """ "lstm", "gru" or "rnn" for a recurrent module."""
    return "lstm" if isinstance(rnn, nn.LSTM) else "gru" if isinstance(rnn, nn.GRU) else "rnn"


def _flat(value: nn.Module | Sequence[nn.Module] | None) -> list[nn.Module]:
    if value is None:
        return []
    if isinstance(value, nn.Sequential):
        return [m for sub in value for m in _flat(sub)]
    if isinstance(value, nn.Module):
        return [value]
    return [m for sub in value for m in _flat(sub)]


def _refuse_whole_sequence(module: nn.Module, names: dict[int, str]) -> None:
    for sub_name, sub in module.named_modules():
        for kind, why in WHOLE_SEQUENCE.items():
            if isinstance(sub, kind):
                raise ExportError(f"part {sub_name or names.get(id(module), '?')!r} ({type(sub).__name__}) cannot be "
                                  f"streamed cell by cell: {why}")


def find_parts(module: nn.Module) -> Found:
    """The module's parts from its children, in the order they were registered (see the module
    docstring); ExportError naming the first part that does not fit."""
    names = {id(m): n for n, m in module.named_modules() if n}
    _refuse_whole_sequence(module, names)
    embedding: nn.Embedding | None = None
    pre: list[nn.Module] = []
    recurrent: list[nn.Module] = []
    head: list[nn.Module] = []
    for child_name, child in module.named_children():
        for part in _flat(child):
            names.setdefault(id(part), child_name)
            if isinstance(part, nn.Embedding):
                if embedding is not None or pre or recurrent:
                    raise ExportError(f"part {names[id(part)]!r} (Embedding) is not the first part; an embedding "
                                      "reads the token ids, before anything else")
                embedding = part
            elif isinstance(part, RECURRENT):
                if head:
                    raise ExportError(f"part {names[id(part)]!r} ({type(part).__name__}) comes after the head's "
                                      f"layers; name the parts: Parts(recurrent=..., head=...)")
                recurrent.append(part)
            elif isinstance(part, PER_STEP):
                (head if recurrent else pre).append(part)
            else:
                raise ExportError(f"part {names[id(part)]!r} ({type(part).__name__}) is not one of the parts an "
                                  "exported stream is made of (Embedding, RNN/LSTM/GRU, per-step layers such as "
                                  "Linear); name the parts with Parts(...) or follow the streaming protocol "
                                  "(initial_state and forward(x, state))")
    early = next((m for m in pre if isinstance(m, nn.Linear)), None)
    if recurrent and not head and early is not None:
        raise ExportError(f"part {names[id(early)]!r} (Linear) is registered before the recurrent part and nothing "
                          "follows it; if it is the head, name the parts: Parts(recurrent=..., head=...)")
    return check_parts(Found(embedding, pre, recurrent, head, names))  # type: ignore[arg-type]


def named_parts(module: nn.Module, parts: Parts) -> Found:
    """Parts the user named, checked like found ones."""
    names = {id(m): n for n, m in module.named_modules() if n}
    for part in [parts.embedding, *_flat(parts.pre), *_flat(parts.recurrent), *_flat(parts.head)]:
        if part is not None:
            _refuse_whole_sequence(part, names)
    if parts.embedding is not None and not isinstance(parts.embedding, nn.Embedding):
        raise ExportError(f"Parts.embedding is a {type(parts.embedding).__name__}; expected an nn.Embedding")
    found = Found(parts.embedding, _flat(parts.pre), _flat(parts.recurrent), _flat(parts.head), names)  # type: ignore[arg-type]
    for part in found.pre + found.head:
        if not isinstance(part, PER_STEP):
            raise ExportError(f"part {found.name(part)} is not a per-step layer (Linear, an activation, Dropout, "
                              "LayerNorm): a stream cannot tell what it does to one step")
    for part in found.recurrent:
        if not isinstance(part, RECURRENT):
            raise ExportError(f"Parts.recurrent holds {found.name(part)}; expected nn.RNN, nn.LSTM or nn.GRU")
    return check_parts(found)


def check_parts(found: Found) -> Found:
    """The rules every set of parts must meet, each refusal naming its part."""
    if not found.recurrent:
        raise ExportError("the module has no nn.RNN, nn.LSTM or nn.GRU; there is no recurrent state to stream")
    for rnn in found.recurrent:
        if rnn.bidirectional:
            raise ExportError(f"part {found.name(rnn)} is bidirectional: its backward direction reads the sequence "
                              "from its end, which a stream has not read yet; train it with bidirectional=False")
        if getattr(rnn, "proj_size", 0):
            raise ExportError(f"part {found.name(rnn)} has proj_size={rnn.proj_size}: LSTMs with projections are not "
                              "supported by the ONNX LSTM operator; use proj_size=0 (or a Linear after it)")
        if isinstance(rnn, nn.RNN) and rnn.nonlinearity not in ("tanh", "relu"):
            raise ExportError(f"part {found.name(rnn)} has nonlinearity {rnn.nonlinearity!r}; expected tanh or relu")
    width = found.embedding.embedding_dim if found.embedding is not None else None
    for rnn in found.recurrent:
        if width is not None and rnn.input_size != width and not _changes_width(found.pre):
            raise ExportError(f"part {found.name(rnn)} reads {rnn.input_size} features per step but gets {width}")
        width = rnn.hidden_size
    linears = [m for m in found.head if isinstance(m, nn.Linear)]
    if not linears:
        raise ExportError("the module has no head: expected an nn.Linear after the recurrent part (read at the last "
                          "step or at every step)")
    first = linears[0]
    if first.in_features != found.hidden:
        steps = first.in_features / found.hidden
        why = (f"all {steps:.0f} steps' outputs flattened together; a stream answers from one step's output"
               if steps.is_integer() and steps > 1 else f"the recurrent part gives {found.hidden} per step")
        raise ExportError(f"head part {found.name(first)} reads {first.in_features} features: {why}")
    return found


def _changes_width(layers: list[nn.Module]) -> bool:
    return any(isinstance(m, nn.Linear) for m in layers)


__all__ = ["PROTOCOL", "Found", "Parts", "cell_of", "check_parts", "find_parts", "named_parts"]
