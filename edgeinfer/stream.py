"""A stream: one sequence (or a fixed batch of them) stepped through a model, state carried along.

The state lives here, never in the shared session, so one loaded model serves many streams
and many threads at once.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeinfer.errors import InputError

if TYPE_CHECKING:
    from edgeinfer.model import Model


SNAPSHOT_MAGIC = "edgeinfer-snapshot-1"


@dataclass(frozen=True)
class Snapshot:
    """A stream's state at one point: enough to resume it, here or in another process."""

    model: str  # sha256 of the model file it was taken from
    state: dict[str, np.ndarray]  # each (L, B, H)
    logits: np.ndarray | None  # (B, C) after the latest step
    steps: int

    def to_bytes(self) -> bytes:
        """Serialise (numpy .npz, no pickle)."""
        buf = io.BytesIO()
        arrays = {f"state.{k}": v for k, v in self.state.items()}
        if self.logits is not None:
            arrays["logits"] = self.logits
        meta = json.dumps({"magic": SNAPSHOT_MAGIC, "model": self.model, "steps": self.steps})
        np.savez(buf, meta=np.array(meta), **arrays)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> "Snapshot":
        """Parse bytes written by `to_bytes`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("magic") != SNAPSHOT_MAGIC:
                    raise ValueError("magic")
                state = {k[len("state."):]: z[k] for k in z.files if k.startswith("state.")}
                logits = z["logits"] if "logits" in z.files else None
            return Snapshot(meta["model"], state, logits, int(meta["steps"]))
        except (ValueError, KeyError, OSError, EOFError, json.JSONDecodeError):
            raise InputError("not an edgeinfer stream snapshot") from None


def token_ids(x: Any, vocab: int) -> np.ndarray:
    """Token ids as int64, checked: integers, each 0 <= id < vocab."""
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"stream input must be token ids (integers), got {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise InputError(f"token id out of range; expected 0 <= id < {vocab}")
    return arr


def checked_snapshot(model: "Model", snapshot: Snapshot | bytes, batch: int) -> Snapshot:
    """A snapshot (or its bytes) checked to come from `model` and to hold `batch` streams."""
    snap = Snapshot.from_bytes(snapshot) if isinstance(snapshot, bytes) else snapshot
    if snap.model != model.fingerprint:
        raise InputError(f"snapshot was taken from another model (sha256 {snap.model[:12]}...); "
                         f"this stream runs {model.source} ({model.fingerprint[:12]}...)")
    want = model.spec.initial_state(batch)
    if set(snap.state) != set(want) or any(snap.state[k].shape != want[k].shape for k in want):
        raise InputError(f"snapshot state does not fit a stream of batch {batch}")
    if snap.logits is not None and snap.logits.shape != (batch, model.spec.classes):
        raise InputError(f"snapshot logits do not fit a stream of batch {batch}")
    return snap


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Stream:
    """Steps a model one time step per call; `feed` consumes a chunk of steps in one call.

    The hot path (`step`) runs the step graph through onnxruntime IOBinding on buffers the
    stream owns: its input, its output and two sets of state tensors used in turn (the state
    read by one step is where the next step writes), so a step allocates nothing but the
    probabilities it returns. A stream is not for use by two threads at once; open one per thread.
    """

    def __init__(self, model: "Model", batch: int = 1) -> None:
        if batch < 1:
            raise InputError(f"stream batch must be >= 1, got {batch}")
        self.model = model
        self.batch = batch
        spec = model.spec
        self.tokens = spec.input.kind in ("words", "chars")
        self._vocab = spec.input.vocab_size if self.tokens else 0  # type: ignore[union-attr]
        self._names = [s.name for s in spec.state]
        initial = spec.initial_state(batch)  # each (L, B, H)
        self._bufs = ({k: v.copy() for k, v in initial.items()}, {k: v.copy() for k, v in initial.items()})
        self._cur = 0  # which of the two buffer sets holds the state now
        self._x = np.zeros((batch,), np.int64) if self.tokens else np.zeros((batch, spec.input_size), np.float32)
        self._y = np.zeros((batch, spec.classes), np.float32)  # logits after the latest step
        # the step graph's softmax output, when the file has one (older files: numpy here)
        self._p = np.zeros((batch, spec.classes), np.float32) if spec.io.step_probabilities else None
        self._bindings: tuple[Any, Any] | None = None
        self.steps = 0

    def reset(self) -> None:
        """Back to the initial state, as if nothing had been read."""
        for k, v in self.model.spec.initial_state(self.batch).items():
            self._bufs[self._cur][k][...] = v
        self.steps = 0

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the state now, keyed by input name. # each (L, B, H)"""
        return {k: v.copy() for k, v in self._bufs[self._cur].items()}

    @property
    def logits(self) -> np.ndarray | None:
        """A copy of the logits after the latest step (None before the first). # (B, C)"""
        return self._y.copy() if self.steps else None

    def _check(self, x: Any, ndim: int, what: str) -> tuple[np.ndarray, bool]:
        """Validate an input of `ndim` dims (with batch): floats (..., F), or token ids."""
        spec = self.model.spec
        if self.tokens:
            ndim -= 1  # token ids have no feature axis
            arr = token_ids(x, self._vocab)
            features, shape_ok = "", True
        else:
            arr = np.asarray(x, dtype=np.float32)
            features = str(spec.input_size)
            shape_ok = arr.ndim >= 1 and arr.shape[-1] == spec.input_size
        single = arr.ndim == ndim - 1 and self.batch == 1
        if single:
            arr = arr[None]
        if arr.ndim != ndim or arr.shape[0] != self.batch or not shape_ok:
            inner = ", ".join(p for p in (what, features) if p)
            want = f"({self.batch}{', ' + inner if inner else ''})" + (f" or ({inner})" if self.batch == 1 else "")
            kind = "int64 token ids" if self.tokens else "float32"
            raise InputError(f"stream input has shape {tuple(np.shape(x))}; expected {want} {kind}")
        return np.ascontiguousarray(arr), single

    def _bind(self) -> tuple[Any, Any]:
        """Two IOBindings on the step session: state buffers 0 -> 1, and 1 -> 0."""
        import onnxruntime as ort

        session = self.model.step_session if self.batch == 1 else self.model.batch_step_session
        io, spec = self.model.spec.io, self.model.spec
        value = ort.OrtValue.ortvalue_from_numpy  # shares the numpy buffer's memory on the CPU
        self._values = []  # the OrtValues must outlive the bindings
        bindings = []
        for src, dst in ((0, 1), (1, 0)):
            b = session.io_binding()
            for name, arr in ((io.step_input, self._x), *self._bufs[src].items()):
                v = value(arr)
                b.bind_ortvalue_input(name, v)
                self._values.append(v)
            outputs = [(io.output, self._y), *((s.output, self._bufs[dst][s.name]) for s in spec.state)]
            if self._p is not None:
                outputs.append((io.step_probabilities, self._p))
            for name, arr in outputs:
                v = value(arr)
                b.bind_ortvalue_output(name, v)
                self._values.append(v)
            bindings.append(b)
        return bindings[0], bindings[1]

    def step(self, x: Any) -> np.ndarray:
        """Read one time step x (F,) or (B, F) (a token id or (B,) ids); returns probabilities (C,) or (B, C)."""
        buf = self._x
        if not self.tokens and type(x) is np.ndarray and x.dtype == np.float32 and (
                x.shape == buf.shape or (self.batch == 1 and x.shape == buf.shape[1:])):
            single = x.ndim == 1  # fast path: a float32 array of the right shape
            buf[...] = x
        elif self.tokens and self.batch == 1 and isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            if not 0 <= x < self._vocab:
                raise InputError(f"token id out of range; expected 0 <= id < {self._vocab}")
            buf[0], single = x, True
        else:
            arr, single = self._check(x, 2, "")
            buf[...] = arr
        if self._bindings is None:
            self._bindings = self._bind()
            self._session = self.model.step_session if self.batch == 1 else self.model.batch_step_session
        self._session.run_with_iobinding(self._bindings[self._cur])
        self._cur ^= 1
        self.steps += 1
        if self._p is not None:  # computed by the graph; a copy, since the buffer is reused
            return self._p[0].copy() if single else self._p.copy()
        probs = softmax(self._y)  # a file exported before the step graph had its softmax output
        return probs[0] if single else probs

    def trace(self, chunk: Any) -> np.ndarray:
        """Read a chunk step by step, (T, F) or (B, T, F) (token ids: (T,) or (B, T)); the
        probabilities after every step. # (T, C) or (B, T, C)

        The anytime view: digits after each row, sentiment after each word.
        """
        arr, single = self._check(chunk, 3, "T")
        out = np.empty((self.batch, arr.shape[1], self.model.spec.classes), np.float32)
        for t in range(arr.shape[1]):
            out[:, t] = self.step(arr[:, t])
        return out[0] if single else out

    def feed(self, chunk: Any) -> np.ndarray:
        """Read many steps at once, (T, F) or (B, T, F) (token ids: (T,) or (B, T)), in one call.

        Runs the sequence graph with the stream's state; the result equals calling `step` T times.
        """
        arr, single = self._check(chunk, 3, "T")
        if arr.shape[1] == 0:
            raise InputError("stream chunk has no time steps; expected T >= 1")
        io = self.model.spec.io
        state = self._bufs[self._cur]
        feeds = {io.seq_input: arr, **state}
        if io.lengths:
            feeds[io.lengths] = np.full(self.batch, arr.shape[1], np.int64)
        outs = self.model.sequence_session.run(None, feeds)
        self._y[...] = outs[0]
        for name, new in zip(self._names, outs[1:]):
            state[name][...] = new
        self.steps += arr.shape[1]
        probs = softmax(outs[0])
        return probs[0] if single else probs

    def snapshot(self) -> Snapshot:
        """The stream's state now; `restore` puts it back, `Snapshot.to_bytes` serialises it."""
        return Snapshot(self.model.fingerprint, self.state, self.logits, self.steps)

    def restore(self, snapshot: Snapshot | bytes) -> None:
        """Continue from a snapshot of a stream of this same model (and batch size)."""
        snap = checked_snapshot(self.model, snapshot, self.batch)
        for k, v in snap.state.items():
            self._bufs[self._cur][k][...] = v
        if snap.logits is not None:
            self._y[...] = snap.logits
        self.steps = snap.steps if snap.logits is not None else 0

    def fork(self) -> "Stream":
        """An independent copy that continues from this point."""
        other = Stream(self.model, self.batch)
        other.restore(self.snapshot())
        return other

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities after the latest step. # (B, C)"""
        if not self.steps:
            raise InputError("the stream has read nothing yet; call step() or feed() first")
        return softmax(self._y)
