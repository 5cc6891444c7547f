"""The model spec: a frozen description of a model, stored as JSON in the ONNX `metadata_props`."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeinfer.errors import SpecError

FORMAT_VERSION = 3  # 2 added `readout`, 3 its `ngram_pool` (files of versions 1 and 2 still load)
SPEC_KEY = "edgeinfer.spec"
STEP_GRAPH_KEY = "edgeinfer.step_graph"
STEP_SHARED_KEY = "edgeinfer.step_shared"  # JSON {step initializer: sequence initializer}
CELLS = ("rnn", "lstm", "gru")
TASKS = ("digits", "sentiment", "characters")
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class ImageInput:
    """Digits input: an image read as `rows` steps of `cols` pixels, scaled then normalised."""

    kind: str = "image"
    rows: int = 28
    cols: int = 28
    scale: float = 1.0 / 255.0  # raw uint8 pixel -> [0, 1]
    mean: float = 0.1307
    std: float = 0.3081
    fit_px: int = 20  # the digit's bounding box is scaled to fit fit_px x fit_px (MNIST recipe)


@dataclass(frozen=True)
class VocabInput:
    """Token inputs: ids 0 padding, 1 unknown, then `vocab` in order."""

    kind: str = ""
    vocab: tuple[str, ...] = ()
    pad_id: int = 0
    unk_id: int = 1

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and unknown included."""
        return len(self.vocab) + 2


@dataclass(frozen=True)
class TextInput(VocabInput):
    """Sentiment input: one word per step (see edgeinfer.preprocess.text for the rules)."""

    kind: str = "words"
    lowercase: bool = True


@dataclass(frozen=True)
class CharInput(VocabInput):
    """Characters input: one character per step."""

    kind: str = "chars"


INPUT_KINDS: dict[str, type] = {"image": ImageInput, "words": TextInput, "chars": CharInput}


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


NGRAM_POOLS = ("mean", "sum")  # how the n-gram readout pools its weights (Readout.ngram_pool)


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
    """

    pool: bool = False
    ngram_buckets: int = 0
    ngram_order: int = 3
    ngram_pool: str = "mean"

    @property
    def active(self) -> bool:
        """True when the head reads anything besides the last hidden state."""
        return self.pool or self.ngram_buckets > 0


@dataclass(frozen=True)
class GraphIO:
    """Input and output names of the sequence and step graphs."""

    seq_input: str = "x"  # (B, T, F) float32 features, or (B, T) int64 token ids
    step_input: str = "x"  # (B, F) float32 features, or (B,) int64 token ids
    output: str = "y"  # (B, classes) logits
    lengths: str = ""  # sequence graph input (B,) int64 of valid steps per row, when there is one
    step_probabilities: str = ""  # step graph output (B, classes): softmax of the logits, when there is one


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to use a model file, besides its weights."""

    task: str
    labels: tuple[str, ...]
    input: ImageInput | TextInput | CharInput
    cell: str
    layers: int
    hidden: int
    input_size: int  # features per step F (for token ids: the embedding width)
    state: tuple[StateTensor, ...]
    io: GraphIO = GraphIO()
    readout: Readout = Readout()
    precision: str = "fp32"
    quantization: str = "none"
    opset: int = 17
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SpecError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if self.cell not in CELLS:
            raise SpecError(f"unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        if self.precision not in PRECISIONS:
            raise SpecError(f"unknown precision {self.precision!r}; expected fp32 or int8")
        if self.layers < 1 or self.hidden < 1 or self.input_size < 1 or not self.labels:
            raise SpecError("layers, hidden, input_size and labels must be positive/non-empty")
        if self.readout.ngram_buckets and self.input.kind != "words":
            raise SpecError("an n-gram readout needs word-token input")
        if self.readout.ngram_buckets and self.readout.ngram_order < 2:
            raise SpecError("an n-gram readout needs ngram_order >= 2")
        if self.readout.ngram_pool not in NGRAM_POOLS:
            raise SpecError(f"unknown ngram_pool {self.readout.ngram_pool!r}; expected one of {', '.join(NGRAM_POOLS)}")
        expected = tuple(s.name for s in state_for(self.cell, self.layers, self.hidden, self.readout))
        if tuple(s.name for s in self.state) != expected:
            raise SpecError(f"a {self.cell} model's state must be named {expected}")

    @property
    def classes(self) -> int:
        """Number of output classes."""
        return len(self.labels)

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Fresh state tensors for `batch` streams, keyed by input name."""
        return {s.name: s.initial_value(batch) for s in self.state}

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "ModelSpec":
        """Parse and validate a spec written by `to_json`."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise SpecError("spec is not a JSON object")
        version = raw.get("format_version")
        if not isinstance(version, int):
            raise SpecError("spec has no integer format_version")
        if version > FORMAT_VERSION:
            raise SpecError(
                f"spec format version {version} is newer than this edgeinfer supports "
                f"({FORMAT_VERSION}); upgrade edgeinfer"
            )
        try:
            raw["labels"] = tuple(raw["labels"])
            kind = raw["input"].get("kind")
            if kind not in INPUT_KINDS:
                raise SpecError(f"unknown input kind {kind!r}; expected one of {', '.join(INPUT_KINDS)}")
            if "vocab" in raw["input"]:
                raw["input"]["vocab"] = tuple(raw["input"]["vocab"])
            raw["input"] = INPUT_KINDS[kind](**raw["input"])
            raw["state"] = tuple(StateTensor(**s) for s in raw["state"])
            raw["io"] = GraphIO(**raw.get("io", {}))
            raw["readout"] = Readout(**raw.get("readout", {}))
            return ModelSpec(**raw)
        except SpecError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"spec is malformed: {exc}") from None


def state_for(cell: str, layers: int, hidden: int, readout: Readout = Readout()) -> tuple[StateTensor, ...]:
    """The named state tensors: `h` for rnn/gru, `h` and `c` for lstm, then the readout's.

    A readout adds `count` (1, B, 1), the steps read; `pool` adds `pool_sum` and `pool_max`
    (1, B, H), the sum and the max of the last layer's hidden states (-1 at first: hidden states
    lie in (-1, 1)); n-grams add `ngram_sum` (1, B, 1), the sum of the n-gram weights read, and
    `prev` (order - 1, B, 1), the latest ids (oldest first) as float32, exact below 2**24.
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
    return tuple(state)
