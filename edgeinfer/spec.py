"""The model spec: a frozen description of a model, stored as JSON in the ONNX `metadata_props`.

The spec is the single source of truth about a model file: the runtime reads every field from
it (labels, input preprocessing, vocabulary and special ids, state names and shapes, graph
input/output names) and validates every field when a file is loaded. Anything it cannot
accept is a `SpecError` naming the field.
"""
from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

import numpy as np

from edgeinfer.arrays import softmax
from edgeinfer.errors import SpecError, WrongTaskError

# 2 added `readout`, 3 its `ngram_pool`, 4 the portable layout: the step graph's shared weights
# are byte ranges of the file itself (files of versions 1 to 3 still load), 5 io.batch_steps_from,
# 6 readout.short_hidden and short_words; 7 describes what a model is (input kind, output kind,
# generic state) instead of which task it serves: no `task`, `labels` or `readout` fields
FORMAT_VERSION = 8
GENERIC_FORMAT = 7  # from this version on: `output`, `extras`, any named state; no task/labels/readout
SPEC_CHECKSUM_FORMAT = 8  # from this version on the checksums cover the spec's JSON too
MAX_BATCH_STEPS_FROM = 1 << 20
SELF_RANGES_FORMAT = 4  # from this version on, the step graph's shared weights are ranges of the file
SPEC_KEY = "edgeinfer.spec"
STEP_GRAPH_KEY = "edgeinfer.step_graph"
STEP_SHARED_KEY = "edgeinfer.step_shared"  # formats 1-3: JSON {step initializer: sequence initializer}
RELAYOUT_COMMAND = "python -m edgeinfer_export.relayout OLD.onnx NEW.onnx"  # rewrites a file in the current format
SELF_LOCATION = "edgeinfer-self"  # format 4: the external-data location that names the model file itself
CHECKSUMS_KEY = "edgeinfer.checksums"  # format 4: JSON {"graph": sha256, "step_graph": sha256}
CELLS = ("rnn", "lstm", "gru")
TASKS = ("digits", "sentiment", "characters")  # formats 1-6 only: the task, which fixed the input kind
OUTPUT_KINDS = ("classes", "values")  # class probabilities (softmax of the logits) or plain values
OUTPUT_PER = ("sequence", "step")  # one answer per sequence (after its last step) or one per step
PRECISIONS = ("fp32", "int8")
NGRAM_POOLS = ("mean", "sum")  # how the n-gram readout pools its weights (Readout.ngram_pool)
SHORT_CELLS = ("rnn", "gru")  # the cells a short-text branch is made for (one state tensor)
SHORT_SPREAD = 4.0  # a short-text branch's gate goes from 0.12 to 0.88 between 0.5 and 1.5 x short_words steps
MAX_SHORT_WORDS = 1 << 20
TASK_INPUT = {"digits": "image", "sentiment": "words", "characters": "chars"}  # formats 1-6: task -> input kind

# Bounds that keep a hostile file from asking for absurd work or memory.
MAX_JSON_DEPTH = 32
MAX_LAYERS = 64
MAX_WIDTH = 1 << 16  # hidden size, input size, image side
MAX_VOCAB = 1 << 22
MAX_NGRAM_BUCKETS = 1 << 26
MAX_NGRAM_ORDER = 8
MAX_NAME = 256
MAX_STATE_ELEMENTS = 1 << 24  # state values per stream, all tensors together


@dataclass(frozen=True)
class ImageInput:
    """Digits input: an image read as `rows` steps of `cols` pixels, scaled then normalised.

    A pixel's 8-bit value v becomes v * scale (in [0, 1] for the default 1/255), then
    (x - mean) / std; the digit's bounding box is first scaled to fit `fit_px` pixels.
    """

    kind: str = "image"
    rows: int = 28
    cols: int = 28
    scale: float = 1.0 / 255.0  # raw 8-bit pixel -> [0, 1]
    mean: float = 0.1307
    std: float = 0.3081
    fit_px: int = 20  # the digit's bounding box is scaled to fit fit_px x fit_px (MNIST recipe)


@dataclass(frozen=True)
class VocabInput:
    """Token inputs: `pad_id` and `unk_id` are reserved, the vocabulary takes the other ids in order."""

    kind: str = ""
    vocab: tuple[str, ...] = ()
    pad_id: int = 0
    unk_id: int = 1

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and unknown included."""
        return len(self.vocab) + 2

    @property
    def token_ids(self) -> tuple[int, ...]:
        """The id of each vocabulary entry, in order: every id except pad_id and unk_id."""
        reserved = (self.pad_id, self.unk_id)
        return tuple(i for i in range(self.vocab_size) if i not in reserved)


@dataclass(frozen=True)
class TextInput(VocabInput):
    """Sentiment input: one word per step (see edgeinfer.preprocess.text for the rules)."""

    kind: str = "words"
    lowercase: bool = True


@dataclass(frozen=True)
class CharInput(VocabInput):
    """Characters input: one character per step."""

    kind: str = "chars"


@dataclass(frozen=True)
class FeatureInput:
    """Feature input: `size` float32 values per step, normalised as (x - mean) / std per feature.

    The runtime applies the normalisation (float32, feature by feature) before the graphs read a
    step, so users feed raw values; `names` (optional) name the features, e.g. a CSV's columns.
    """

    kind: str = "features"
    size: int = 1
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    names: tuple[str, ...] = ()

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Raw features (..., size) float32 -> what the graphs read, in place when x is writable."""
        if self.mean:
            np.subtract(x, self.mean_array, out=x)
            np.divide(x, self.std_array, out=x)
        return x

    @functools.cached_property
    def mean_array(self) -> np.ndarray:
        """The means as float32 (read-only). # (F,)"""
        arr = np.asarray(self.mean, np.float32)
        arr.flags.writeable = False
        return arr

    @functools.cached_property
    def std_array(self) -> np.ndarray:
        """The standard deviations as float32 (read-only). # (F,)"""
        arr = np.asarray(self.std, np.float32)
        arr.flags.writeable = False
        return arr


InputSpec = ImageInput | TextInput | CharInput | FeatureInput
INPUT_KINDS: dict[str, type[ImageInput] | type[TextInput] | type[CharInput] | type[FeatureInput]] = {
    "image": ImageInput, "words": TextInput, "chars": CharInput, "features": FeatureInput}
InputT = TypeVar("InputT", ImageInput, TextInput, CharInput, FeatureInput)


@dataclass(frozen=True)
class OutputSpec:
    """What the graphs' `output` holds: `classes` (logits; answers are their softmax, named by
    class) or `values` (answers as they are, named), `per` sequence (after the last step read)
    or step (the sequence graph gives every step's answer, (B, T, C))."""

    kind: str = "classes"
    per: str = "sequence"
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class StateTensor:
    """One named recurrent state tensor of shape (layers, batch, hidden); batch is dynamic."""

    name: str  # input name in both graphs, e.g. "h"
    output: str  # output name in both graphs, e.g. "h_next"
    layers: int
    hidden: int
    dtype: str = "float32"
    initial: float = 0.0  # every element of the initial state

    def initial_value(self, batch: int) -> np.ndarray:
        """The initial state for `batch` streams. # (L, B, H)"""
        return np.full((self.layers, batch, self.hidden), self.initial, dtype=self.dtype)


@dataclass(frozen=True)
class Readout:
    """What the classifier head reads besides the last hidden state.

    Each part is a running summary kept in extra state tensors, so the model still reads one
    step per call in constant memory, and the step graph run T times equals the sequence graph:
    - `pool`: the mean and the max of the last layer's hidden state over the steps read;
    - `ngram_buckets` > 0 (token models): the weights of the word n-grams read, of orders 1 to
      `ngram_order` (a learnt weight per unigram id, and per hashed bucket of longer n-grams;
      the previous `ngram_order - 1` ids are part of the state, id 0 marking the text's start),
      pooled as `ngram_pool` says: "mean" (their total per step read) or "sum" (the total itself:
      a linear model of the text's n-gram counts, as `python -m train ngrams` fits).
    - `short_hidden` > 0: a short-text branch, a second one-layer cell of the model's kind with
      `short_hidden` units reading the same inputs, and its own head; the logits are
      g * (the main head's) + (1 - g) * (the branch's), g = sigmoid((count - short_words) /
      (short_words / SHORT_SPREAD)) with count the steps read: a text of a few words is answered
      by the branch, a long one by the main head (format 6).
    """

    pool: bool = False
    ngram_buckets: int = 0
    ngram_order: int = 3
    ngram_pool: str = "mean"
    short_hidden: int = 0
    short_words: float = 0.0

    @property
    def active(self) -> bool:
        """True when the head reads anything besides the last hidden state."""
        return self.pool or self.ngram_buckets > 0 or self.short_hidden > 0


@dataclass(frozen=True)
class GraphIO:
    """Input and output names of the sequence and step graphs."""

    seq_input: str = "x"  # (B, T, F) float32 features, or (B, T) int64 token ids
    step_input: str = "x"  # (B, F) float32 features, or (B,) int64 token ids
    output: str = "y"  # (B, classes) logits
    lengths: str = ""  # sequence graph input (B,) int64 of valid steps per row, when there is one
    step_probabilities: str = ""  # step graph output (B, classes): softmax of the logits, when there is one
    # StreamBatch steps of at least this many streams run the sequence graph for one step (the
    # state carried as Stream.feed carries it), where that is the faster graph; 0: the step graph
    batch_steps_from: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to use a model file, besides its weights (format 7: what a model is; format 8
    is the same spec, its JSON covered by the file's checksums).

    Hashable and comparable: two specs are equal when every field is (metrics, provenance and the
    file's `format_version` included). Specs of formats 1-6 are read into the same terms (`from_dict`).
    """

    input: InputSpec
    output: OutputSpec
    cell: str
    layers: int
    hidden: int
    input_size: int  # features per step F (for token ids: the embedding width)
    state: tuple[StateTensor, ...]
    io: GraphIO = GraphIO()
    precision: str = "fp32"
    quantization: str = "none"
    opset: int = 17
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # named extras no runtime needs (e.g. "readout")
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _check_spec(self)

    def __hash__(self) -> int:
        return hash(self.to_json())

    @property
    def labels(self) -> tuple[str, ...]:
        """The names of the answers: class labels, or the names of the values."""
        return self.output.names

    @property
    def classes(self) -> int:
        """Number of outputs per answer (classes, or values)."""
        return len(self.output.names)

    @property
    def gives_classes(self) -> bool:
        """True when the answers are class probabilities (the softmax of the graphs' output)."""
        return self.output.kind == "classes"

    @property
    def per_step(self) -> bool:
        """True when the model answers every step (the sequence graph's output is (B, T, C))."""
        return self.output.per == "step"

    @property
    def readout(self) -> Readout:
        """The built-in models' readout, an extra describing what their heads read (see Readout)."""
        raw = self.extras.get("readout")
        return _build(Readout, raw, "extras.readout") if raw is not None else Readout()

    @property
    def reads_tokens(self) -> bool:
        """True when a step reads a token id (words, characters) rather than a feature row."""
        return isinstance(self.input, VocabInput)

    @property
    def token_vocab(self) -> TextInput | CharInput | None:
        """The token input of a words or characters model; None for feature models."""
        return self.input if isinstance(self.input, (TextInput, CharInput)) else None

    def answers(self, logits: np.ndarray) -> np.ndarray:
        """The graphs' output as answers (a new array): probabilities (softmax) for classes, values as they are."""
        return softmax(logits) if self.gives_classes else np.array(logits, copy=True)

    def require_input(self, kind: type[InputT]) -> InputT:
        """This model's input spec when it is of `kind`; WrongTaskError otherwise."""
        if not isinstance(self.input, kind):
            want = kind.kind  # the dataclass default
            raise WrongTaskError(f"a model that reads {self.input.kind}; expected a model that reads {want}")
        return self.input

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Fresh state tensors for `batch` streams, keyed by input name."""
        return {s.name: s.initial_value(batch) for s in self.state}

    @property
    def state_outputs(self) -> list[str]:
        """The state tensors' output names, in the spec's order."""
        return [s.output for s in self.state]

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-ready data, in this edgeinfer's format (a spec read from an older
        file is written in the current format's terms; `format_version` keeps the file's own version)."""
        return {**asdict(self), "format_version": FORMAT_VERSION}

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @staticmethod
    def from_json(text: str) -> ModelSpec:
        """Parse and validate a spec written by `to_json` (or by an older edgeinfer: formats 1-6)."""
        if len(text) > 64 << 20:
            raise SpecError("spec is larger than 64 MB")
        try:
            raw = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise SpecError(f"spec JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
        return ModelSpec.from_dict(raw)

    @staticmethod
    def from_dict(raw: Any) -> ModelSpec:
        """Build and validate a spec from plain data (what `to_dict` gives, or a format 1-6 spec)."""
        if not isinstance(raw, Mapping):
            raise SpecError("spec is not a JSON object")
        _check_depth(raw, "spec")
        version = raw.get("format_version")
        if type(version) is not int or version < 1:
            raise SpecError("spec has no integer format_version")
        if version > FORMAT_VERSION:
            raise SpecError(
                f"spec format version {version} is newer than this edgeinfer supports "
                f"({FORMAT_VERSION}); upgrade edgeinfer"
            )
        data = dict(raw)
        if version < GENERIC_FORMAT:
            data = _from_task_spec(data)
        data["input"] = parse_input(data.get("input"))
        data["output"] = parse_output(data.get("output"))
        states = data.get("state")
        if not isinstance(states, (list, tuple)):
            raise SpecError("spec field 'state' must be a list")
        data["state"] = tuple(_build(StateTensor, s, f"state[{i}]") for i, s in enumerate(states))
        data["io"] = _build(GraphIO, data.get("io", {}), "io")
        for name in ("metrics", "provenance", "extras"):
            if not isinstance(data.get(name, {}), dict):
                raise SpecError(f"spec field {name!r} must be an object")
        return _build(ModelSpec, data, "spec")


def _from_task_spec(raw: dict[str, Any]) -> dict[str, Any]:
    """A format 1-6 spec in format 7's terms: its task's input kind checked, its labels the
    output's class names, its readout an extra (the state it implies checked here)."""
    data = dict(raw)
    newer = sorted({"output", "extras"} & set(data))
    if newer:
        raise SpecError(f"spec field(s) {', '.join(map(repr, newer))} are format 7's; a format "
                        f"{data.get('format_version')} spec has task, labels and readout instead")
    task, labels = data.pop("task", None), data.pop("labels", None)
    if not isinstance(task, str) or task not in TASKS:
        raise SpecError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    inp = data.get("input")
    if isinstance(inp, Mapping) and inp.get("kind") != TASK_INPUT[task]:
        raise SpecError(f"a {task} model must read {TASK_INPUT[task]} input, not {inp.get('kind')}")
    readout = _build(Readout, data.pop("readout", {}), "readout")
    data["output"] = {"kind": "classes", "per": "sequence", "names": _str_tuple(labels, "labels")}
    data["extras"] = {"readout": asdict(readout)} if readout.active else {}
    for name in ("cell", "layers", "hidden"):
        _check_type(next(f.type for f in fields(ModelSpec) if f.name == name), data.get(name), name)
    if data["cell"] not in CELLS:
        raise SpecError(f"unknown cell {data['cell']!r}; expected one of {', '.join(CELLS)}")
    _check_readout(readout, data["cell"], str(inp.get("kind")) if isinstance(inp, Mapping) else "")
    states = data.get("state")
    if isinstance(states, (list, tuple)) and all(isinstance(st, Mapping) for st in states):
        _check_task_state(states, data["cell"], data["layers"], data["hidden"], readout)
    return data


def parse_input(raw: Any) -> InputSpec:
    """The typed input spec from plain data (a spec's `input` object); SpecError when invalid."""
    if not isinstance(raw, Mapping):
        raise SpecError("spec field 'input' must be an object")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in INPUT_KINDS:
        raise SpecError(f"unknown input kind {kind!r}; expected one of {', '.join(INPUT_KINDS)}")
    data = dict(raw)
    if "vocab" in data:
        data["vocab"] = _str_tuple(data["vocab"], "input.vocab", allow_empty=True)
    if kind == "features":
        for name in ("mean", "std"):
            data[name] = _float_tuple(data.get(name, ()), f"input.{name}")
        data["names"] = _str_tuple(data.get("names", ()), "input.names", allow_empty=True)
    return _build(INPUT_KINDS[kind], data, "input")


def parse_output(raw: Any) -> OutputSpec:
    """The typed output spec from plain data (a spec's `output` object); SpecError when invalid."""
    if not isinstance(raw, Mapping):
        raise SpecError("spec field 'output' must be an object")
    data = dict(raw)
    data["names"] = _str_tuple(data.get("names"), "output.names")
    return _build(OutputSpec, data, "output")


def state_for(cell: str, layers: int, hidden: int, readout: Readout = Readout()) -> tuple[StateTensor, ...]:
    """The named state tensors: `h` for rnn/gru, `h` and `c` for lstm, then the readout's.

    A readout adds `count` (1, B, 1), the steps read; `pool` adds `pool_sum` and `pool_max`
    (1, B, H), the sum and the max of the last layer's hidden states (-1 at first: hidden states
    lie in (-1, 1)); n-grams add `ngram_sum` (1, B, 1), the sum of the n-gram weights read, and
    `prev` (order - 1, B, 1), the latest ids (oldest first) as float32, exact below 2**24; a
    short-text branch adds `h_short` (1, B, short_hidden), its hidden state.
    """
    names = ("h", "c") if cell == "lstm" else ("h",)
    state = [StateTensor(n, f"{n}_next", layers, hidden) for n in names]
    if readout.active:
        state.append(StateTensor("count", "count_next", 1, 1))
    if readout.pool:
        state += [StateTensor("pool_sum", "pool_sum_next", 1, hidden),
                  StateTensor("pool_max", "pool_max_next", 1, hidden, initial=-1.0)]
    if readout.ngram_buckets:
        state += [StateTensor("ngram_sum", "ngram_sum_next", 1, 1),
                  StateTensor("prev", "prev_next", readout.ngram_order - 1, 1)]
    if readout.short_hidden:
        state.append(StateTensor("h_short", "h_short_next", 1, readout.short_hidden))
    return tuple(state)


# --- validation -------------------------------------------------------------------------------

_T = TypeVar("_T")


def _refuse_constant(name: str) -> float:
    raise SpecError(f"spec holds {name}; expected finite numbers only")


def _check_depth(value: Any, where: str, depth: int = 0) -> None:
    """Refuse containers nested deeper than MAX_JSON_DEPTH and non-finite floats anywhere."""
    if depth > MAX_JSON_DEPTH:
        raise SpecError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels")
    items = value.values() if isinstance(value, Mapping) else value
    for v in items:
        if isinstance(v, (Mapping, list, tuple)):
            _check_depth(v, where, depth + 1)
        elif isinstance(v, float) and not math.isfinite(v):
            raise SpecError(f"{where} holds {v}; expected finite numbers only")


def _str_tuple(value: Any, where: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"spec field {where!r} must be a list of strings")
    if not value and not allow_empty:
        raise SpecError(f"spec field {where!r} must not be empty")
    return tuple(value)


def _float_tuple(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and type(v) is not bool and math.isfinite(v) for v in value):
        raise SpecError(f"spec field {where!r} must be a list of finite numbers")
    return tuple(float(v) for v in value)


def _build(cls: type[_T], raw: Any, where: str) -> _T:
    """A dataclass from a mapping: unknown fields refused, every field's type checked."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"spec field {where!r} must be an object")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SpecError(f"spec field {where!r} has unknown field(s) {', '.join(map(repr, unknown[:5]))}")
    for name, value in raw.items():
        _check_type(known[name].type, value, f"{where}.{name}" if where != "spec" else name)
    try:
        return cls(**raw)
    except TypeError as exc:  # a required field is missing
        missing = str(exc).split(":")[-1].strip()
        raise SpecError(f"spec field {where!r} is missing {missing}") from None


_SIMPLE: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float)}


def _check_type(annotation: Any, value: Any, where: str) -> None:
    """Check a plain value against a field's annotation (a string under `from __future__`)."""
    kind = str(annotation)
    if kind in _SIMPLE:
        ok = isinstance(value, _SIMPLE[kind]) and (kind == "bool" or type(value) is not bool)
        if not ok:
            raise SpecError(f"spec field {where!r} must be a {'number' if kind == 'float' else kind}, "
                            f"got {type(value).__name__}")
        if kind == "float" and not math.isfinite(value):
            raise SpecError(f"spec field {where!r} must be a finite number, got {value}")
    elif kind.startswith("dict[str, float]") and (not isinstance(value, Mapping) or not all(
            isinstance(v, (int, float)) and type(v) is not bool and math.isfinite(v) for v in value.values())):
        raise SpecError(f"spec field {where!r} must map names to finite numbers")


def _positive(value: int, where: str, top: int) -> None:
    if not 1 <= value <= top:
        raise SpecError(f"spec field {where!r} must be between 1 and {top:,}, got {value}")


def _check_name(value: str, where: str, required: bool = True) -> None:
    if (required and not value) or len(value) > MAX_NAME or not value.isprintable():
        raise SpecError(f"spec field {where!r} must be a printable name of 1 to {MAX_NAME} characters")


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32(value: float, positive: bool = False) -> bool:
    """True when `value` is a finite float32 number (and, with `positive`, stays above 0 as one)."""
    if not (math.isfinite(value) and abs(value) <= FLOAT32_MAX):
        return False
    return not positive or float(np.float32(value)) > 0


def _check_features(spec: ModelSpec, inp: FeatureInput) -> None:
    _positive(inp.size, "input.size", MAX_WIDTH)
    if spec.input_size != inp.size:
        raise SpecError(f"a features model reads {inp.size} values per step; input_size is {spec.input_size}")
    if len(inp.mean) != len(inp.std) or (inp.mean and len(inp.mean) != inp.size):
        raise SpecError(f"spec fields 'input.mean' and 'input.std' must hold {inp.size} numbers each (or none)")
    if not all(_float32(v) for v in inp.mean) or not all(_float32(v, positive=True) for v in inp.std):
        raise SpecError("spec fields 'input.mean' and 'input.std' must hold float32 numbers, std positive")
    if inp.names and (len(inp.names) != inp.size or len(set(inp.names)) != inp.size):
        raise SpecError(f"spec field 'input.names' must hold {inp.size} distinct names (or none)")


def _check_input(spec: ModelSpec) -> None:
    inp = spec.input
    if isinstance(inp, FeatureInput):
        _check_features(spec, inp)
        return
    if isinstance(inp, ImageInput):
        _positive(inp.rows, "input.rows", MAX_WIDTH)
        _positive(inp.cols, "input.cols", MAX_WIDTH)
        _positive(inp.fit_px, "input.fit_px", min(inp.rows, inp.cols))
        if not (_float32(inp.scale, positive=True) and _float32(inp.std, positive=True) and _float32(inp.mean)):
            raise SpecError("spec fields 'input.scale', 'input.mean' and 'input.std' must be float32 numbers, "
                            "scale and std positive")
        if spec.input_size != inp.cols:
            raise SpecError(f"an image model reads rows of {inp.cols} pixels; input_size is {spec.input_size}")
        return
    if len(inp.vocab) > MAX_VOCAB:
        raise SpecError(f"spec field 'input.vocab' has more than {MAX_VOCAB:,} entries")
    if len(set(inp.vocab)) != len(inp.vocab) or not all(inp.vocab):
        raise SpecError("spec field 'input.vocab' must hold distinct non-empty entries")
    if isinstance(inp, CharInput) and any(len(c) != 1 for c in inp.vocab):
        raise SpecError("spec field 'input.vocab' of a characters model must hold single characters")
    for name, value in (("pad_id", inp.pad_id), ("unk_id", inp.unk_id)):
        if not 0 <= value < inp.vocab_size:
            raise SpecError(f"spec field 'input.{name}' must be an id below {inp.vocab_size}, got {value}")
    if inp.pad_id == inp.unk_id:
        raise SpecError("spec fields 'input.pad_id' and 'input.unk_id' must differ")


def _check_output(spec: ModelSpec) -> None:
    out = spec.output
    if out.kind not in OUTPUT_KINDS:
        raise SpecError(f"unknown output kind {out.kind!r}; expected one of {', '.join(OUTPUT_KINDS)}")
    if out.per not in OUTPUT_PER:
        raise SpecError(f"unknown output.per {out.per!r}; expected one of {', '.join(OUTPUT_PER)}")
    if not out.names or len(set(out.names)) != len(out.names) or len(out.names) > MAX_VOCAB:
        raise SpecError(f"spec field 'output.names' must hold 1 to {MAX_VOCAB:,} distinct names")
    if out.kind == "values" and spec.io.step_probabilities:
        raise SpecError("a model that gives values has no probabilities: io.step_probabilities must be empty")


def _check_readout(r: Readout, cell: str, input_kind: str) -> None:
    if r.ngram_pool not in NGRAM_POOLS:
        raise SpecError(f"unknown ngram_pool {r.ngram_pool!r}; expected one of {', '.join(NGRAM_POOLS)}")
    if not 0 <= r.ngram_buckets <= MAX_NGRAM_BUCKETS:
        raise SpecError(f"spec field 'readout.ngram_buckets' must be between 0 and {MAX_NGRAM_BUCKETS:,}")
    if r.ngram_buckets and input_kind != "words":
        raise SpecError("an n-gram readout needs word-token input")
    if r.ngram_buckets and not 2 <= r.ngram_order <= MAX_NGRAM_ORDER:
        raise SpecError(f"an n-gram readout needs ngram_order between 2 and {MAX_NGRAM_ORDER}")
    if not 0 <= r.short_hidden <= MAX_WIDTH:
        raise SpecError(f"spec field 'readout.short_hidden' must be between 0 and {MAX_WIDTH:,}")
    if r.short_hidden and cell not in SHORT_CELLS:
        raise SpecError(f"a short-text branch needs a {' or '.join(SHORT_CELLS)} model, not {cell}")
    if r.short_hidden and not 1.0 <= r.short_words <= MAX_SHORT_WORDS:
        raise SpecError(f"spec field 'readout.short_words' must be between 1 and {MAX_SHORT_WORDS:,} "
                        "with a short-text branch")
    if not r.short_hidden and r.short_words:
        raise SpecError("spec field 'readout.short_words' is set without a short-text branch (short_hidden 0)")


def _check_task_state(states: Sequence[Mapping[str, Any]], cell: str, layers: Any, hidden: Any,
                      readout: Readout) -> None:
    """Formats 1-6: the state's names and shapes follow from the cell, its size and the readout."""
    if type(layers) is not int or type(hidden) is not int:
        return  # the generic checks name the field
    expected = state_for(cell, layers, hidden, readout)
    if tuple(s.get("name") for s in states) != tuple(s.name for s in expected):
        raise SpecError(f"a {cell} model's state must be named {tuple(s.name for s in expected)}")
    for got, want in zip(states, expected, strict=True):
        if (got.get("layers"), got.get("hidden"), got.get("dtype", "float32")) != (want.layers, want.hidden,
                                                                                     want.dtype):
            raise SpecError(f"state {want.name!r} must be ({want.layers}, B, {want.hidden}) {want.dtype}, "
                            f"not ({got.get('layers')}, B, {got.get('hidden')}) {got.get('dtype')}")


def _check_state(spec: ModelSpec) -> None:
    if not spec.state:
        raise SpecError("spec field 'state' must list at least one state tensor")
    elements = 0
    for s in spec.state:
        _check_name(s.name, f"state.{s.name}.name")
        _check_name(s.output, f"state.{s.name}.output")
        if s.dtype != "float32":
            raise SpecError(f"state {s.name!r} must be float32, not {s.dtype}")
        if not _float32(s.initial):
            raise SpecError(f"state {s.name!r} has initial value {s.initial}; expected a float32 number")
        _positive(s.layers, f"state.{s.name}.layers", MAX_WIDTH)
        _positive(s.hidden, f"state.{s.name}.hidden", MAX_WIDTH)
        elements += s.layers * s.hidden
    if elements > MAX_STATE_ELEMENTS:
        raise SpecError(f"the state holds {elements:,} values per stream; at most {MAX_STATE_ELEMENTS:,}")
    io = spec.io
    states = [s.name for s in spec.state]
    seq_inputs = [io.seq_input, *([io.lengths] if io.lengths else []), *states]
    step_inputs = [io.step_input, *states]
    outputs = [io.output, *spec.state_outputs, *([io.step_probabilities] if io.step_probabilities else [])]
    if any(len(set(names)) != len(names) for names in (seq_inputs, step_inputs, outputs)) or (
            set(outputs) & set(seq_inputs + step_inputs)):
        raise SpecError("graph input and output names in 'io' and 'state' must all be distinct")
    for name, value in asdict(io).items():
        if name != "batch_steps_from":
            _check_name(value, f"io.{name}", required=name not in ("lengths", "step_probabilities"))
    if not 0 <= io.batch_steps_from <= MAX_BATCH_STEPS_FROM:
        raise SpecError(f"io.batch_steps_from is {io.batch_steps_from}; expected 0 (never) or a stream count "
                        f"up to {MAX_BATCH_STEPS_FROM}")
    if io.lengths and not spec.reads_tokens:
        raise SpecError("only token models have a lengths input (feature rows are read whole): "
                        "io.lengths must be empty")


def _check_spec(spec: ModelSpec) -> None:
    """Every cross-field rule of a spec; SpecError naming the first that fails."""
    if spec.cell not in CELLS:
        raise SpecError(f"unknown cell {spec.cell!r}; expected one of {', '.join(CELLS)}")
    if spec.precision not in PRECISIONS:
        raise SpecError(f"unknown precision {spec.precision!r}; expected fp32 or int8")
    if spec.layers < 1 or spec.hidden < 1 or spec.input_size < 1:
        raise SpecError("layers, hidden and input_size must be positive")
    _positive(spec.layers, "layers", MAX_LAYERS)
    _positive(spec.hidden, "hidden", MAX_WIDTH)
    _positive(spec.input_size, "input_size", MAX_WIDTH)
    _positive(spec.opset, "opset", 100)
    _check_input(spec)
    _check_output(spec)
    _check_state(spec)
    if "readout" in spec.extras:
        _check_readout(spec.readout, spec.cell, spec.input.kind)
    _check_depth(spec.provenance, "spec field 'provenance'")
    _check_depth(spec.metrics, "spec field 'metrics'")
    _check_depth(spec.extras, "spec field 'extras'")
