"""`export`: a user's PyTorch RNN/LSTM/GRU module -> one edgeinfer file, checked before it is written.

module -> its parts (or its streaming protocol) -> the user's forward reproduced by the streaming
net -> sequence and step graphs -> fp32 parity (PyTorch vs sequence graph vs T steps, random
inputs and the user's example) -> [int8 graphs -> the user's metric on their validation data, the
gate] -> the file, written atomically. A failure at any stage is an ExportError and writes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edgeinfer.atomic import write_atomic
from edgeinfer.errors import SpecError
from edgeinfer.spec import FORMAT_VERSION, FeatureInput, GraphIO, ModelSpec, StateTensor
from edgeinfer_export.both import combine
from edgeinfer_export.bundle import OPSET, bundle
from edgeinfer_export.check import (
    FP32_TOLERANCE,
    graph_answers,
    module_error,
    padding_error,
    parity_error,
    seq_step_error,
)
from edgeinfer_export.errors import ExportError, one_line
from edgeinfer_export.parts import PROTOCOL, Found, Parts, find_parts, named_parts
from edgeinfer_export.quantize import METHOD, quantize
from edgeinfer_export.regime import Choice, choose_sequence_graph
from edgeinfer_export.streaming import (
    PartsNet,
    ProtocolNet,
    SequenceModule,
    StepModule,
    StreamingNet,
    TokenSequenceModule,
)
from edgeinfer_export.trace import trace_graph

INT8_SEQ_STEP_TOLERANCE = 5e-2  # int8: the sequence graph against its steps (activations quantized per call)


@dataclass(frozen=True)
class Features:
    """`size` float values per step; `mean`/`std` (per feature) are stored in the file and applied by
    every runtime to the raw values it is given, before the model reads them; `names` name the features."""

    size: int
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    names: Sequence[str] = ()

    def spec(self) -> dict[str, Any]:
        mean = [float(v) for v in self.mean] if self.mean is not None else []
        std = [float(v) for v in self.std] if self.std is not None else ([1.0] * len(mean) if mean else [])
        return {"kind": "features", "size": self.size, "mean": mean, "std": std, "names": list(self.names)}


@dataclass(frozen=True)
class Words:
    """Word tokens: text is split into words (docs/format.md, section 6), each word's id is its place
    in `vocab` counted past the reserved `pad_id` and `unk_id` (with the defaults, vocab[k] has id k + 2)."""

    vocab: Sequence[str]
    lowercase: bool = True
    pad_id: int = 0
    unk_id: int = 1

    def spec(self) -> dict[str, Any]:
        return {"kind": "words", "vocab": list(self.vocab), "lowercase": self.lowercase, "pad_id": self.pad_id,
                "unk_id": self.unk_id}


@dataclass(frozen=True)
class Chars:
    """Character tokens: each character of `vocab` one id, past the reserved `pad_id` and `unk_id`."""

    vocab: Sequence[str]
    pad_id: int = 0
    unk_id: int = 1

    def spec(self) -> dict[str, Any]:
        return {"kind": "chars", "vocab": list(self.vocab), "pad_id": self.pad_id, "unk_id": self.unk_id}


@dataclass(frozen=True)
class Classes:
    """The answers are class probabilities (the softmax of the head's output), one per label."""

    labels: Sequence[str]
    kind = "classes"

    def spec_names(self) -> list[str]:
        return [str(v) for v in self.labels]


@dataclass(frozen=True)
class Values:
    """The answers are the head's output as it is (regression), one value per name."""

    names: Sequence[str]
    kind = "values"

    def spec_names(self) -> list[str]:
        return [str(v) for v in self.names]


Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Int8:
    """int8 on request: `data` = (inputs, targets) from the user's validation split; `metric`
    (answers, targets) -> float, higher better unless `lower_is_better` (default: accuracy for
    classes, mean squared error for values); `max_drop`: how much worse than fp32 the int8 model
    may score (accuracy: 0.01 = one point; mean squared error: its rise); `sequence_graph`:
    "measure" (the faster at batch 256 here), "fused" or "decomposed"."""

    data: tuple[Any, Any]
    metric: Metric | None = None
    lower_is_better: bool | None = None
    max_drop: float = 0.01
    sequence_graph: str = "measure"


@dataclass(frozen=True)
class Exported:
    """What `export` wrote and measured."""

    path: Path
    spec: ModelSpec
    parity_max_abs_err: float
    metrics: dict[str, float] = field(default_factory=dict)


def accuracy(answers: np.ndarray, targets: np.ndarray) -> float:
    """The share of argmax answers equal to the integer targets ((N,) or (N, T) per step)."""
    return float((answers.argmax(axis=-1) == np.asarray(targets)).mean())


def mean_squared_error(answers: np.ndarray, targets: np.ndarray) -> float:
    """The mean of (answers - targets)^2 over every value."""
    return float(np.mean((answers - np.asarray(targets, np.float32).reshape(answers.shape)) ** 2))


def export(
    module: nn.Module, path: str | Path, *, input: Features | Words | Chars, output: Classes | Values,
    example: Any = None, per: str | None = None, parts: Parts | None = None, int8: Int8 | None = None,
    tolerance: float = FP32_TOLERANCE, lengths: Any = None,
) -> Exported:
    """Export `module` to one edgeinfer file at `path`; returns what was written and measured.

    `example`: inputs from the user's own data, (N, T, F) floats or (N, T) token ids (right-padded,
    with `lengths` (N,)): parity is checked on them as well as on random inputs, and `per` (one
    answer per "sequence" or per "step") is read from the module's output shape on them when not
    given. `parts` names the module's parts when its children do not show them in order; a module
    with `initial_state` follows the streaming protocol instead. `int8` writes an int8 file instead
    of fp32, gated on the user's metric. ExportError (nothing written) when a part cannot be
    streamed, parity fails, or the int8 gate refuses.
    """
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path}: a folder; give the model file's path (e.g. {path / 'model.onnx'})")
    module = module.eval()
    tokens = not isinstance(input, Features)
    x_example, len_example = _example(example, lengths, input)
    found = _parts(module, parts, tokens)
    found_per, width = _answers_per(module, x_example, len_example, per)
    names = output.spec_names()
    if width is not None and width != len(names):
        raise ExportError(f"the model gives {width} outputs per answer but {len(names)} names were given "
                          f"({', '.join(map(repr, names[:5]))}); give one name per output")
    net = _streaming_net(module, found, found_per, tokens)
    spec = _spec(net, input, output, found_per, module, parts)
    _check_example_width(spec, x_example)
    if not hasattr(module, PROTOCOL):  # the reconstruction must compute what the user's forward does
        err = module_error(module, net, spec, x_example, len_example)
        if not err <= tolerance:
            raise ExportError(f"the module's forward does not compute its parts in order (embedding, per-step "
                              f"layers, recurrent modules, head at the {found_per}s): max abs difference {err:.2e}; "
                              "name the parts with Parts(...) or follow the streaming protocol")
    seq, step = _graphs(net, spec)
    err = parity_error(net, seq, step, spec, x_example, len_example)
    if tokens:
        err = max(err, padding_error(seq, spec))
    print(f"parity fp32: max abs error {err:.2e} (limit {tolerance:.0e})", file=sys.stderr)
    if not err <= tolerance:
        raise ExportError(f"fp32 parity failed: max abs error {err:.2e} > {tolerance:.0e}; nothing written")
    metrics: dict[str, float] = {"parity_max_abs_err": err}
    if int8 is not None:
        seq, step, spec, metrics = _int8(seq, step, spec, int8, output, metrics)
    spec = _make(spec.to_dict(), metrics=metrics)
    write_atomic(path, bundle(seq, step, spec).SerializeToString())
    print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
    return Exported(path, spec, err, metrics)


def _make(raw: dict[str, Any], **changes: Any) -> ModelSpec:
    try:
        return ModelSpec.from_dict({**raw, **changes})
    except SpecError as exc:
        raise ExportError(f"the model cannot be described in a valid spec: {one_line(exc)}") from None


def _example(example: Any, lengths: Any, inp: Features | Words | Chars) -> tuple[np.ndarray, np.ndarray | None]:
    """The user's example inputs as an array (or random ones of 3 rows and 11 steps)."""
    rng = np.random.default_rng(0)
    if isinstance(inp, Features):
        x = rng.standard_normal((3, 11, inp.size)).astype(np.float32) if example is None else np.asarray(
            example.detach().numpy() if isinstance(example, torch.Tensor) else example, np.float32)
        if x.ndim != 3 or x.shape[2] != inp.size or 0 in x.shape or not np.isfinite(x).all():
            raise ExportError(f"example has shape {x.shape}; expected finite (N, T, {inp.size}) features")
        if inp.mean is not None:  # the module reads normalised features: the runtime gets raw ones
            std = np.asarray(inp.std if inp.std is not None else np.ones(inp.size), np.float32)
            x = (x - np.asarray(inp.mean, np.float32)) / std
        return x, None
    vocab = len(inp.vocab) + 2
    if example is None:
        x = rng.integers(2, vocab, (3, 11)).astype(np.int64)
        return x, np.full(3, 11, np.int64)
    x = np.asarray(example.numpy() if isinstance(example, torch.Tensor) else example)
    if x.ndim != 2 or 0 in x.shape or not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() >= vocab:
        raise ExportError(f"example has shape {x.shape} ({x.dtype}); expected (N, T) token ids below {vocab}")
    n = np.full(len(x), x.shape[1], np.int64) if lengths is None else np.asarray(lengths, np.int64)
    if n.shape != (len(x),) or n.min() < 1 or n.max() > x.shape[1]:
        raise ExportError(f"lengths has shape {n.shape}; expected ({len(x)},) counts from 1 to {x.shape[1]}")
    return x.astype(np.int64), n


def _call(module: nn.Module, x: np.ndarray, lengths: np.ndarray | None) -> torch.Tensor:
    """The user's forward on x (its state defaults), the first output when it gives several."""
    with torch.no_grad():
        if hasattr(module, PROTOCOL):
            initial: Any = getattr(module, PROTOCOL)
            state = initial(len(x))
            kwargs = {"lengths": torch.from_numpy(lengths)} if lengths is not None else {}
            out = module(torch.from_numpy(x), state, **kwargs)
        else:
            out = module(torch.from_numpy(x))
    while isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise ExportError(f"{type(module).__name__}.forward returned {type(out).__name__}; expected a tensor "
                          "(or a tuple whose first item is one)")
    return out


def _answers_per(module: nn.Module, x: np.ndarray, lengths: np.ndarray | None, per: str | None
                 ) -> tuple[str, int | None]:
    """"sequence" or "step" (given, or read off the forward's output shape: (B, C) or (B, T, C)),
    and the outputs per answer C (None when `per` is given)."""
    if per is not None:
        if per not in ("sequence", "step"):
            raise ExportError(f"per={per!r}; expected 'sequence' (one answer after the last step) or 'step'")
        return per, None
    try:
        out = _call(module, x, lengths)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{type(module).__name__}.forward failed on the example input of shape {x.shape} "
                          f"({one_line(exc)})") from None
    batch, steps = x.shape[0], x.shape[1]
    if out.dim() == 2 and out.shape[0] == batch:
        return "sequence", int(out.shape[1])
    if out.dim() == 3 and out.shape[0] == batch and out.shape[1] == steps:
        return "step", int(out.shape[2])
    if out.dim() == 3 and out.shape[1] == batch and out.shape[0] == steps:
        raise ExportError(f"the forward's output is {tuple(out.shape)}, time first; give answers batch first "
                          "((B, T, C) per step, (B, C) per sequence)")
    raise ExportError(f"the forward's output is {tuple(out.shape)} for an input of {tuple(x.shape)}; expected "
                      f"({batch}, C) (one answer per sequence) or ({batch}, {steps}, C) (one per step)")


def _parts(module: nn.Module, parts: Parts | None, tokens: bool) -> Found | None:
    """The module's parts, checked against the input kind (None: the module follows the protocol)."""
    if hasattr(module, PROTOCOL):
        if parts is not None:
            raise ExportError("the module follows the streaming protocol (it has initial_state); give no parts")
        return None
    found = named_parts(module, parts) if parts is not None else find_parts(module)
    if tokens and found.embedding is None:
        raise ExportError("token input needs an nn.Embedding as the model's first part; for float features give "
                          "input=Features(...)")
    if not tokens and found.embedding is not None:
        raise ExportError(f"part {found.name(found.embedding)} reads token ids; give input=Words(...) or Chars(...)")
    return found


def _streaming_net(module: nn.Module, found: Found | None, per: str, tokens: bool) -> StreamingNet:
    if found is None:
        return ProtocolNet(module, per == "step", tokens).eval()
    return PartsNet(found, per == "step").eval()


def _spec(net: StreamingNet, inp: Features | Words | Chars, output: Classes | Values, per: str, module: nn.Module,
          parts: Parts | None) -> ModelSpec:
    """The fp32 spec: what the model reads and gives, its state, and where it came from."""
    cells = [m for m in net.modules() if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU))]
    if not cells:
        raise ExportError("the module has no nn.RNN, nn.LSTM or nn.GRU; there is no recurrent state to stream")
    embedding = next((m for m in net.modules() if isinstance(m, nn.Embedding)), None)
    first = cells[0]
    cell = "lstm" if isinstance(first, nn.LSTM) else "gru" if isinstance(first, nn.GRU) else "rnn"
    width = embedding.embedding_dim if embedding is not None else inp.size if isinstance(inp, Features) else 1
    initial = getattr(net, "initial_values", (0.0,) * len(net.state_names))
    state = [asdict(StateTensor(n, f"{n}_next", layers, hidden, initial=v)) for n, (layers, hidden), v
             in zip(net.state_names, net.state_shapes, initial, strict=True)]
    classes = isinstance(output, Classes)
    tokens = not isinstance(inp, Features)
    if not isinstance(inp, Features) and embedding is not None and embedding.num_embeddings < len(inp.vocab) + 2:
        raise ExportError(f"the embedding has {embedding.num_embeddings} rows; the vocabulary needs "
                          f"{len(inp.vocab) + 2} (its words and the two reserved ids)")
    return _make({
        "input": inp.spec(), "output": {"kind": output.kind, "per": per, "names": output.spec_names()},
        "cell": cell, "layers": sum(int(c.num_layers) for c in cells), "hidden": int(cells[-1].hidden_size),
        "input_size": int(width), "state": state,
        "io": asdict(GraphIO(lengths="lengths" if tokens else "", step_probabilities="p" if classes else "")),
        "precision": "fp32", "quantization": "none", "opset": OPSET, "metrics": {},
        "provenance": {"module": f"{type(module).__module__}.{type(module).__qualname__}",
                       "contract": "protocol" if hasattr(module, PROTOCOL) else "parts named" if parts else "parts",
                       "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                       "exporter": "edgeinfer_export (torch.onnx.export, dynamo=False)",
                       "exported": dt.date.today().isoformat()},
        "extras": {}, "format_version": FORMAT_VERSION,
    })


def _check_example_width(spec: ModelSpec, x: np.ndarray) -> None:
    if not spec.reads_tokens and x.shape[2] != spec.input_size:
        raise ExportError(f"the example has {x.shape[2]} features per step; the model reads {spec.input_size}")


def _graphs(net: StreamingNet, spec: ModelSpec) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    state = tuple(net.initial_state(2))
    try:
        if spec.reads_tokens:
            ids = torch.ones(2, 3, dtype=torch.int64) * 2
            seq = trace_graph(TokenSequenceModule(net), (ids, torch.tensor([3, 2]), *state), spec, step=False)
            step = trace_graph(StepModule(net, bool(spec.io.step_probabilities)), (ids[:, 0], *state), spec, step=True)
        else:
            x = torch.zeros(2, 3, spec.input_size)
            seq = trace_graph(SequenceModule(net), (x, *state), spec, step=False)
            step = trace_graph(StepModule(net, bool(spec.io.step_probabilities)), (x[:, 0], *state), spec, step=True)
    except ExportError:
        raise
    except Exception as exc:  # the exporter's many error types
        raise ExportError(f"torch.onnx.export could not trace the model ({one_line(exc)})") from None
    return seq, step


def _int8(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec, int8: Int8, output: Classes | Values,
          metrics: dict[str, float]) -> tuple[onnx.ModelProto, onnx.ModelProto, ModelSpec, dict[str, float]]:
    """int8 graphs in the chosen sequence-graph form, gated on the user's metric against fp32."""
    if int8.sequence_graph not in ("measure", "fused", "decomposed"):
        raise ExportError(f"Int8.sequence_graph={int8.sequence_graph!r}; expected measure, fused or decomposed")
    if not (isinstance(int8.max_drop, (int, float)) and math.isfinite(int8.max_drop) and int8.max_drop >= 0):
        raise ExportError(f"Int8.max_drop={int8.max_drop!r}; expected a number >= 0")
    x, y = _validation(int8.data, spec)
    classes = isinstance(output, Classes)
    metric: Metric = int8.metric or (accuracy if classes else mean_squared_error)
    lower = int8.lower_is_better if int8.lower_is_better is not None else (int8.metric is None and not classes)
    name = getattr(metric, "__name__", "metric")
    lengths = None
    if spec.reads_tokens:
        x, lengths = x
    score32 = float(metric(graph_answers(seq, spec, x, lengths), y))
    if not math.isfinite(score32):
        raise ExportError(f"the fp32 model's {name} is {score32}; nothing written")
    try:
        seq8 = quantize(seq, "lstm" if spec.cell == "lstm" else spec.cell, spec.io.output)
        step8 = quantize(step, "lstm" if spec.cell == "lstm" else spec.cell, spec.io.output)
    except Exception as exc:
        raise ExportError(f"int8 quantization failed ({one_line(exc)}); nothing written") from None
    force = {"measure": None, "fused": False, "decomposed": True}[int8.sequence_graph]
    vocab = spec.token_vocab.vocab_size if spec.token_vocab is not None else 0
    try:
        choice = choose_sequence_graph(seq8, step8, spec, vocab, force=force)
    except ValueError as exc:
        raise ExportError(f"the decomposed sequence graph does not cover this model ({one_line(exc)}); use "
                          "sequence_graph='fused'") from None
    choice, note = _both_forms(choice, spec, vocab) if choice.decomposed and force is None else (choice, choice.note)
    agree = seq_step_error(choice.seq, choice.step, spec)
    if not agree <= INT8_SEQ_STEP_TOLERANCE:
        raise ExportError(f"int8: the sequence graph and its steps differ by {agree:.2e} > "
                          f"{INT8_SEQ_STEP_TOLERANCE:.0e}; nothing written")
    score8 = float(metric(graph_answers(choice.seq, spec, x, lengths), y))
    drop = (score8 - score32) if lower else (score32 - score8)
    print(f"int8 {name} {score8:.6g} (fp32 {score32:.6g}; worse by {drop:.6g}, at most {int8.max_drop:g})",
          file=sys.stderr)
    if not drop <= int8.max_drop:
        raise ExportError(f"int8 {name} {score8:.6g} is worse than fp32's {score32:.6g} by {drop:.6g}, more than "
                          f"max_drop {int8.max_drop:g}; int8 model not written")
    metrics = {**metrics, f"fp32_{name}": score32, name: score8, "int8_seq_step_max_abs_err": agree}
    if choice.fused_seq_per_s:
        metrics |= {"seq_per_s_b256_fused": round(choice.fused_seq_per_s, 1),
                    "seq_per_s_b256_decomposed": round(choice.decomposed_seq_per_s, 1)}
    raw = spec.to_dict()
    if not choice.decomposed and spec.cell in ("gru", "rnn"):
        note += " (onnxruntime has no int8 GRU or RNN kernel: the fused operator computes in fp32)"
    spec8 = _make(raw, precision="int8", quantization=f"{METHOD}; {note}",
                  io={**raw["io"], "batch_steps_from": choice.batch_steps_from})
    return choice.seq, choice.step, spec8, metrics


def _both_forms(choice: Choice, spec: ModelSpec, vocab: int) -> tuple[Choice, str]:
    """A measured decomposed choice with the fused operator beside it for small batches
    (edgeinfer_export.both), and the spec's note; the decomposed form alone where its fused form
    cannot be rebuilt."""
    try:
        both, _, both_note = combine(choice.seq, choice.step, spec, vocab)
    except ValueError as exc:
        print(f"sequence graph: the decomposed form alone ({one_line(exc)})", file=sys.stderr)
        return choice, choice.note
    return dataclasses.replace(choice, seq=both), f"{choice.note}; {both_note}"


def _validation(data: Any, spec: ModelSpec) -> tuple[Any, np.ndarray]:
    """(inputs, targets) as arrays; token inputs become ((N, T) ids, (N,) lengths)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ExportError("Int8.data must be (inputs, targets) from the validation split")
    x, y = data
    y = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y)
    if spec.reads_tokens:
        ids, n = (x if isinstance(x, (tuple, list)) and len(x) == 2 else (x, None))
        arr = np.asarray(ids, np.int64)
        lengths = np.full(len(arr), arr.shape[1], np.int64) if n is None else np.asarray(n, np.int64)
        if len(y) != len(arr):
            raise ExportError(f"Int8.data holds {len(arr)} inputs and {len(y)} targets")
        return (arr, lengths), y
    inp = spec.input
    if isinstance(x, (list, tuple)):  # sequences of different lengths: (T_i, F) each
        seqs = [np.array(s, np.float32) for s in x]
        if len(seqs) != len(y) or any(s.ndim != 2 or s.shape[1] != spec.input_size or not len(s)
                                      or not np.isfinite(s).all() for s in seqs):
            raise ExportError(f"Int8.data holds {len(seqs)} sequences and {len(y)} targets; expected finite "
                              f"(T, {spec.input_size}) raw features each and one target per sequence")
        if spec.per_step and len({len(s) for s in seqs}) > 1:
            raise ExportError("Int8.data for a model that answers every step: give sequences of one length, "
                              "(N, T, F), with (N, T) targets")
        return [inp.normalize(s) if isinstance(inp, FeatureInput) else s for s in seqs], y
    arr = np.array(x.numpy() if isinstance(x, torch.Tensor) else x, np.float32)
    if arr.ndim != 3 or arr.shape[2] != spec.input_size or len(y) != len(arr) or not np.isfinite(arr).all():
        raise ExportError(f"Int8.data inputs have shape {arr.shape} and {len(y)} targets; expected finite "
                          f"(N, T, {spec.input_size}) raw features and N targets, or a list of (T, "
                          f"{spec.input_size}) sequences")
    return (inp.normalize(arr) if isinstance(inp, FeatureInput) else arr), y


__all__ = ["Chars", "Classes", "Exported", "Features", "Int8", "Parts", "Values", "Words", "accuracy", "export",
           "mean_squared_error"]
