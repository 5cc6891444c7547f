"""Evaluation gates: how each task's exported graphs are scored, and how far int8 may trail fp32.

- digits, sentiment: accuracy on the whole test set (or its first `--limit` examples) through the
  sequence graph, prepared with the checkpoint's own input spec (normalisation, vocabulary); the
  int8 model may be at most MAX_INT8_DROP_POINTS[task] points under fp32.
- characters: validation loss (nats per character; the last 10% of the training text, encoded
  with the checkpoint's own vocabulary) through the step graph; int8 at most MAX_INT8_LOSS_RISE
  nats over fp32. A text whose bytes changed since training (its sha256) is refused.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import onnx
import torch

from edgeinfer.preprocess.image import normalize
from edgeinfer.preprocess.text import CharTokenizer
from edgeinfer.session import create_session
from edgeinfer.spec import CharInput, ImageInput, ModelSpec, TextInput
from edgeinfer_export.errors import ExportError, one_line
from export.parity import output_names, run_named
from train.checkpoint import Checkpoint
from train.data import load_mnist
from train.loop import Data, TensorData
from train.tasks import sentiment_test_data

MAX_INT8_DROP_POINTS = {"digits": 0.3, "sentiment": 0.5}  # int8 test accuracy at most this many points under fp32
MAX_INT8_LOSS_RISE = 0.03  # characters: int8 validation loss at most this many nats over fp32
VALIDATION_SHARE = 0.1  # characters: the last 10% of the text is validation (as train.tasks.char_corpus splits it)
LOSS_ROWS = 16  # characters: validation slices stepped side by side


class Gate(Protocol):
    """One task's evaluation of a pair of graphs, and the limit an int8 model must meet."""

    def score(self, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec) -> float:
        """The graphs' score (accuracy, or loss)."""
        ...

    def describe(self, value: float, fp32: float | None = None) -> str:
        """A progress line: the fp32 score (`fp32` None), or an int8 score set against fp32's."""
        ...

    def metrics(self, value: float, fp32: float | None = None) -> dict[str, float]:
        """The spec's metrics for a score; an int8 model's also record the fp32 score."""
        ...

    def refusal(self, fp32: float, int8: float) -> str | None:
        """Why the int8 model fails the gate; None when it passes."""
        ...


@dataclass(frozen=True)
class AccuracyGate:
    """digits, sentiment: accuracy on a labelled test set through the sequence graph."""

    data: Data
    count_key: str  # the metric naming the examples' count: "test_images" or "test_reviews"
    max_drop_points: float

    def score(self, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec) -> float:
        """Accuracy of the sequence graph."""
        return onnx_accuracy(seq, spec, self.data)

    def describe(self, value: float, fp32: float | None = None) -> str:
        """`fp32 test accuracy ...` or `int8 test accuracy ... (points under fp32)`."""
        if fp32 is None:
            return f"fp32 test accuracy {value:.4%} on {len(self.data)} examples"
        return f"int8 test accuracy {value:.4%} ({(fp32 - value) * 100:+.2f} points under fp32)"

    def metrics(self, value: float, fp32: float | None = None) -> dict[str, float]:
        """test_accuracy, the examples' count[, fp32_test_accuracy]."""
        extra = {} if fp32 is None else {"fp32_test_accuracy": fp32}
        return {"test_accuracy": value, self.count_key: len(self.data), **extra}

    def refusal(self, fp32: float, int8: float) -> str | None:
        """Refused when int8 is more than `max_drop_points` points under fp32."""
        drop = (fp32 - int8) * 100
        if drop <= self.max_drop_points:
            return None
        return f"int8 accuracy {int8:.4%} is {drop:.2f} points under fp32 (limit {self.max_drop_points})"


@dataclass(frozen=True)
class LossGate:
    """characters: validation loss (nats per character) through the step graph."""

    ids: np.ndarray  # the validation text's ids, in the checkpoint's vocabulary
    max_rise: float

    def score(self, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec) -> float:
        """Validation loss of the step graph."""
        return onnx_char_loss(step, spec, self.ids)

    def describe(self, value: float, fp32: float | None = None) -> str:
        """`fp32 validation loss ...` or `int8 validation loss ... (over fp32)`."""
        if fp32 is None:
            return f"fp32 validation loss {value:.4f} nats/char on {len(self.ids):,} characters"
        return f"int8 validation loss {value:.4f} nats/char ({value - fp32:+.4f} over fp32)"

    def metrics(self, value: float, fp32: float | None = None) -> dict[str, float]:
        """val_loss, val_chars[, fp32_val_loss]."""
        extra = {} if fp32 is None else {"fp32_val_loss": fp32}
        return {"val_loss": value, "val_chars": len(self.ids), **extra}

    def refusal(self, fp32: float, int8: float) -> str | None:
        """Refused when int8 is more than `max_rise` nats over fp32 (or not a number)."""
        rise = int8 - fp32
        if rise <= self.max_rise:
            return None
        return f"int8 validation loss {int8:.4f} is {rise:.4f} nats over fp32 (limit {self.max_rise})"


def onnx_accuracy(model: onnx.ModelProto, spec: ModelSpec, data: Data, batch: int = 250) -> float:
    """Accuracy of the sequence graph on a data set, run by onnxruntime on the CPU."""
    sess = create_session(model.SerializeToString(), "sequence graph")
    names = {"x": spec.io.seq_input, "lengths": spec.io.lengths}
    correct = 0
    for idx in data.batches(batch, None):
        inputs, y = data.batch(idx)
        feeds = {names[k]: v.numpy() for k, v in inputs.items()}
        (logits,) = sess.run([spec.io.output], {**feeds, **spec.initial_state(len(idx))})
        correct += int((logits.argmax(1) == y.numpy()).sum())
    return correct / len(data)


def onnx_char_loss(step: onnx.ModelProto, spec: ModelSpec, ids: np.ndarray, rows: int = LOSS_ROWS) -> float:
    """Validation loss (nats per character) through the step graph: `rows` contiguous slices
    stepped side by side, each from the initial state. Outputs are read by name."""
    n = len(ids) // rows
    if n < 2:
        raise ExportError(f"{len(ids)} validation characters are too few; expected at least {2 * rows}")
    sess = create_session(step.SerializeToString(), "step graph")
    names = output_names(spec)
    grid = ids[: n * rows].reshape(rows, n)
    state = spec.initial_state(rows)
    total = 0.0
    for t in range(n - 1):
        got = run_named(sess, names, {spec.io.step_input: grid[:, t], **state})
        state = {s.name: got[s.output] for s in spec.state}
        logits = got[spec.io.output].astype(np.float64)
        top = logits.max(1, keepdims=True)
        logz = top[:, 0] + np.log(np.exp(logits - top).sum(1))
        total += float((logz - logits[np.arange(rows), grid[:, t + 1]]).sum())
    return total / (rows * (n - 1))


def digits_test_data(root: Path, image: ImageInput, limit: int = 0) -> TensorData:
    """The MNIST test split as model inputs, scaled and normalised as the checkpoint's input spec says.

    (train.tasks.digits_data normalises with ImageInput()'s defaults, which are what training
    writes today; a checkpoint may record others.)
    """
    images, labels = load_mnist(root, "test")
    if images.shape[1:] != (image.rows, image.cols):
        raise ExportError(f"MNIST images are {images.shape[1]}x{images.shape[2]}; the checkpoint reads "
                          f"{image.rows}x{image.cols}")
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = normalize(images.astype(np.float32) * np.float32(image.scale), image)
    return TensorData(torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)))


def validation_ids(ckpt: Checkpoint, chars: CharInput, limit: int = 0) -> np.ndarray:
    """The validation part of a characters checkpoint's training text, as ids of its own vocabulary.

    The text's bytes must still have the sha256 the checkpoint recorded; a checkpoint that
    recorded none gets a warning, and characters outside its vocabulary become the unknown id.
    """
    if not ckpt.text:
        raise ExportError("the checkpoint records no training text; retrain with `python -m train characters`")
    path = Path(ckpt.text)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the checkpoint's training text ({exc.strerror or one_line(exc)}); "
                          "put the text back where it was trained") from None
    digest = hashlib.sha256(raw).hexdigest()
    if ckpt.text_sha256 is not None and digest != ckpt.text_sha256:
        raise ExportError(f"{path}: the text changed since training (sha256 {digest[:12]}..., the checkpoint "
                          f"recorded {ckpt.text_sha256[:12]}...); restore the text the model was trained on")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    tok = CharTokenizer(chars)
    val = text[int(len(text) * (1 - VALIDATION_SHARE)):]
    if ckpt.text_sha256 is None:
        unknown = sum(1 for c in val if c not in tok.ids)
        print(f"warning: {path}: the checkpoint records no sha256 of its training text, so the text could not "
              f"be verified; validating on it in the checkpoint's vocabulary ({unknown:,} characters outside it)",
              file=sys.stderr)
    ids = np.array(tok.encode(val), np.int64)
    return ids[:limit] if limit else ids


InputT = TypeVar("InputT", ImageInput, TextInput, CharInput)


def _input(spec: ModelSpec, kind: type[InputT]) -> InputT:
    """The spec's input when it is of `kind`; ExportError otherwise (a checkpoint at odds with itself)."""
    if not isinstance(spec.input, kind):
        raise ExportError(f"a checkpoint whose input is {spec.input.kind!r}; expected {kind.kind!r}")
    return spec.input


def digits_gate(ckpt: Checkpoint, spec: ModelSpec, root: Path, limit: int) -> Gate:
    """Accuracy on the MNIST test split, normalised as the checkpoint says."""
    data = digits_test_data(root, _input(spec, ImageInput), limit)
    return AccuracyGate(data, "test_images", MAX_INT8_DROP_POINTS["digits"])


def sentiment_gate(ckpt: Checkpoint, spec: ModelSpec, root: Path, limit: int) -> Gate:
    """Accuracy on the IMDB test reviews, tokenized with the checkpoint's vocabulary."""
    data = sentiment_test_data(root, _input(spec, TextInput), limit)
    return AccuracyGate(data, "test_reviews", MAX_INT8_DROP_POINTS["sentiment"])


def characters_gate(ckpt: Checkpoint, spec: ModelSpec, root: Path, limit: int) -> Gate:
    """Validation loss on the end of the checkpoint's own training text (`root` is not read)."""
    return LossGate(validation_ids(ckpt, _input(spec, CharInput), limit), MAX_INT8_LOSS_RISE)


GATES: dict[str, Callable[[Checkpoint, ModelSpec, Path, int], Gate]] = {
    "digits": digits_gate, "sentiment": sentiment_gate, "characters": characters_gate}
