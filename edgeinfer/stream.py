"""A stream: one sequence (or a fixed batch of them) stepped through a model, state carried along.

The state lives here, never in the shared session, so one loaded model serves many streams
and many threads at once.
"""
from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import onnxruntime as ort

from edgeinfer.arrays import NOT_FINITE, brief, check_finite, float_features, normalised_row, shape_of, token_ids
from edgeinfer.core import NON_FINITE, LoadedModel, run_failed
from edgeinfer.errors import InputError
from edgeinfer.snapshot import Snapshot, checked_snapshot
from edgeinfer.spec import FeatureInput

_F32 = np.dtype(np.float32)
SMALL_ROW = 256  # a single row up to this many features takes the Python-float fast path of Stream._step
# outputs up to this many values are checked in Python floats: right after an onnxruntime run a
# numpy reduction costs four to five times what it costs alone (its code has left the CPU's
# caches), 6-8 µs of a 16 µs digits step; summing a memoryview of ten floats costs about 2
SMALL_OUTPUT = 1024
MAX_STREAM_BATCH = 1 << 16  # sequences in one Stream (a StreamBatch grows as streams open)
IN_USE = ("this stream is in use by another thread; a stream is for one thread at a time: open one stream "
          "per thread (they can share one model)")
P = ParamSpec("P")
R = TypeVar("R")


def exclusive(method: Callable[Concatenate[Stream, P], R]) -> Callable[Concatenate[Stream, P], R]:
    """Run a Stream method only if no other thread is inside one: a stream used by two threads
    at once raises InputError instead of corrupting its state (a non-blocking lock: no waiting)."""

    def guarded(self: Stream, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if not self._inuse.acquire(blocking=False):
            raise InputError(IN_USE)
        try:
            return method(self, *args, **kwargs)
        finally:
            self._inuse.release()

    functools.update_wrapper(guarded, method)
    return guarded


class Stream:
    """Steps a model one time step per call; `feed` consumes a chunk of steps in one call.

    The hot path (`step`) runs the step graph through onnxruntime IOBinding on buffers the
    stream owns: its input, its output and two sets of state tensors used in turn (the state
    read by one step is where the next step writes), so a step allocates nothing but the
    probabilities it returns. A stream is for one thread at a time (open one per thread): a second
thread calling it while it works gets an InputError, never a corrupted state.
    """

    def __init__(self, model: LoadedModel, batch: int = 1) -> None:
        if type(batch) is not int or not 1 <= batch <= MAX_STREAM_BATCH:
            raise InputError(f"stream batch must be a whole number from 1 to {MAX_STREAM_BATCH:,}, got {brief(batch)}")
        self.model = model
        self.batch = batch
        spec = model.spec
        vocab = spec.token_vocab
        self.tokens = vocab is not None
        self._vocab = vocab.vocab_size if vocab is not None else 0
        initial = spec.initial_state(batch)  # each (L, B, H)
        self._bufs = ({k: v.copy() for k, v in initial.items()}, {k: v.copy() for k, v in initial.items()})
        self._cur = 0  # which of the two buffer sets holds the state now
        self._x = np.zeros((batch,), np.int64) if self.tokens else np.zeros((batch, spec.input_size), np.float32)
        # the logits, in two buffers used in turn like the state's: a step refused for non-finite
        # answers has written the other one, so the logits of the latest step stay as they were
        self._ys = (np.zeros((batch, spec.classes), np.float32), np.zeros((batch, spec.classes), np.float32))
        # the step graph's softmax output, when the file has one (older files: numpy here)
        self._p = np.zeros((batch, spec.classes), np.float32) if spec.io.step_probabilities else None
        self._p0 = self._p[0] if self._p is not None else None  # the first row's view, copied at batch 1
        self._bindings: tuple[Any, Any] | None = None
        self._values: list[Any] = []  # the OrtValues the bindings use: they must outlive them
        self._session: Any = None
        self._inuse = threading.Lock()  # held while a method runs: see `exclusive`
        self.steps = 0
        inp = spec.input
        self._normalize = inp.normalize if isinstance(inp, FeatureInput) and inp.mean else None
        # the fast path (a float32 row at batch 1): checked and normalised in Python floats, see _step
        self._mean_std: tuple[list[float], list[float]] | None = None
        if isinstance(inp, FeatureInput) and inp.mean:
            self._mean_std = (inp.mean_array.tolist(), inp.std_array.tolist())
        small = batch == 1 and not self.tokens and spec.input_size <= SMALL_ROW
        self._row_shape = self._x.shape[1:] if small else None
        self._row = memoryview(self._x.data).cast("B").cast("f") if small else None  # the input buffer as floats
        # batch 1 of token ids: the id is written through a view of the buffer as int64s
        self._token = memoryview(self._x.data).cast("B").cast("q") if self.tokens and batch == 1 else None
        # the logits as floats, for the finiteness check of small outputs without a numpy call
        small_y = batch * spec.classes <= SMALL_OUTPUT
        self._y_floats = tuple(memoryview(y.data).cast("B").cast("f") for y in self._ys) if small_y else None
        self._answers = spec.answers

    @exclusive
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
        return self._ys[self._cur].copy() if self.steps else None

    def _check(self, x: Any, ndim: int, what: str) -> tuple[np.ndarray, bool]:
        """Validate an input of `ndim` dims (with batch): floats (..., F), or token ids."""
        spec = self.model.spec
        if self.tokens:
            ndim -= 1  # token ids have no feature axis
            arr = token_ids(x, self._vocab)
            features, shape_ok = "", True
        else:
            arr = float_features(x)
            features = str(spec.input_size)
            shape_ok = arr.ndim >= 1 and arr.shape[-1] == spec.input_size
        single = arr.ndim == ndim - 1 and self.batch == 1
        if single:
            arr = arr[None]
        if arr.ndim != ndim or arr.shape[0] != self.batch or not shape_ok:
            inner = ", ".join(p for p in (what, features) if p)
            want = f"({self.batch}{', ' + inner if inner else ''})" + (f" or ({inner})" if self.batch == 1 else "")
            kind = "int64 token ids" if self.tokens else "float32"
            raise InputError(f"stream input has shape {shape_of(x)}; expected {want} {kind}")
        return np.ascontiguousarray(arr), single

    def _bind(self, session: Any) -> tuple[Any, Any]:
        """Two IOBindings on the step session: state buffers 0 -> 1, and 1 -> 0."""
        io, spec = self.model.spec.io, self.model.spec
        value = ort.OrtValue.ortvalue_from_numpy  # shares the numpy buffer's memory on the CPU
        self._values = []
        bindings = []
        for src, dst in ((0, 1), (1, 0)):
            b = session.io_binding()
            for name, arr in ((io.step_input, self._x), *self._bufs[src].items()):
                v = value(arr)
                b.bind_ortvalue_input(name, v)
                self._values.append(v)
            outputs = [(io.output, self._ys[dst]), *((s.output, self._bufs[dst][s.name]) for s in spec.state)]
            if self._p is not None:
                outputs.append((io.step_probabilities, self._p))
            for name, arr in outputs:
                v = value(arr)
                b.bind_ortvalue_output(name, v)
                self._values.append(v)
            bindings.append(b)
        return bindings[0], bindings[1]

    def step(self, x: Any) -> np.ndarray:
        """Read one time step x (F,) or (B, F) (a token id or (B,) ids); returns the answers after it,
        probabilities (or values) (C,) or (B, C). Raw features: the spec's normalisation is applied here."""
        if not self._inuse.acquire(blocking=False):  # the `exclusive` guard, inlined on the hot path
            raise InputError(IN_USE)
        try:
            return self._step(x)
        finally:
            self._inuse.release()

    def _step(self, x: Any) -> np.ndarray:
        buf = self._x
        if type(x) is np.ndarray and x.dtype is _F32 and x.shape == self._row_shape:
            # fast path: one float32 row of at most SMALL_ROW values. Between two onnxruntime runs
            # every numpy call costs several times what it costs alone (measured: a step of the
            # motions model took 15 µs bare and 29 µs after the numpy finiteness check and
            # normalisation), so the row is checked and normalised in Python floats: a double's
            # sum of float32 values cannot overflow, and each float32 result below is rounded
            # once from a double holding the exact value's correct rounding, which equals numpy's
            # float32 subtract and divide bit for bit (53 >= 2 x 24 + 2 bits: double rounding is
            # innocuous); tests/edgeinfer/test_stream_rows.py checks it on a million values.
            if self._mean_std is None:  # copied as it is, buffer to buffer
                view = x.data  # a memoryview of the row, format "f"
                if not math.isfinite(sum(view)):
                    raise InputError(NOT_FINITE)
                self._row[:] = view  # type: ignore[index]
                return self._run_step(True)
            row = x.tolist()
            if not math.isfinite(sum(row)):
                raise InputError(NOT_FINITE)
            self._row[:] = normalised_row(row, *self._mean_std)  # type: ignore[index]
            return self._run_step(True)
        if not self.tokens and type(x) is np.ndarray and x.dtype is _F32 and x.shape == buf.shape:
            single = False  # a float32 (B, F) batch of the right shape
            check_finite(x)
            buf[...] = x
        elif self._token is not None and isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            if not 0 <= x < self._vocab:
                raise InputError(f"token id out of range; expected 0 <= id < {self._vocab}")
            self._token[0] = int(x)
            return self._run_step(True)
        else:
            arr, single = self._check(x, 2, "")
            buf[...] = arr
        if self._normalize is not None:
            self._normalize(buf)
        return self._run_step(single)

    def _run_step(self, single: bool) -> np.ndarray:
        """Run the step graph on the input buffer; the answers after it."""
        if self._bindings is None:
            self._session = self.model.step_session if self.batch == 1 else self.model.batch_step_session
            self._bindings = self._bind(self._session)
        try:
            self._session.run_with_iobinding(self._bindings[self._cur])
        except Exception as exc:  # onnxruntime's own error types
            raise run_failed(self.model.source, "step", exc) from None
        # a double's sum of float32 values is finite exactly when every value is (no overflow)
        nxt = self._cur ^ 1  # where the run wrote its logits and state
        y_floats = self._y_floats
        if not (math.isfinite(sum(y_floats[nxt])) if y_floats is not None else np.isfinite(self._ys[nxt]).all()):
            raise InputError(f"{self.model.source}: {NON_FINITE}")  # what it wrote stays unused: nothing moves
        self._cur = nxt
        self.steps += 1
        if self._p0 is not None:  # computed by the graph; a copy, since the buffer is reused
            out: np.ndarray = self._p0.copy() if single else self._p.copy()  # type: ignore[union-attr]
            return out
        probs = self._answers(self._ys[nxt])  # values, or a file exported before the step graph had its softmax
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

    @exclusive
    def feed(self, chunk: Any) -> np.ndarray:
        """Read many steps at once, (T, F) or (B, T, F) (token ids: (T,) or (B, T)), in one call.

        Runs the sequence graph with the stream's state; the result equals calling `step` T times.
        """
        arr, single = self._check(chunk, 3, "T")
        if arr.shape[1] == 0:
            raise InputError("stream chunk has no time steps; expected T >= 1")
        state = self._bufs[self._cur]
        out, new = self.model.run_sequence(arr, state)
        y = self._ys[self._cur]
        y[...] = self.model.last_step(out)
        for name, value in new.items():
            state[name][...] = value
        self.steps += arr.shape[1]
        probs = self._answers(y)
        return probs[0] if single else probs

    @exclusive
    def snapshot(self) -> Snapshot:
        """The stream's state now; `restore` puts it back, `Snapshot.to_bytes` serialises it."""
        return Snapshot(self.model.fingerprint, self.state, self.logits, self.steps)

    @exclusive
    def restore(self, snapshot: Snapshot | bytes) -> None:
        """Continue from a snapshot of a stream of this same model (and batch size)."""
        snap = checked_snapshot(self.model, snapshot, self.batch)
        for k, v in snap.state.items():
            self._bufs[self._cur][k][...] = v
        if snap.logits is not None:
            self._ys[self._cur][...] = snap.logits
        self.steps = snap.steps if snap.logits is not None else 0

    def fork(self) -> Stream:
        """An independent copy that continues from this point."""
        other = Stream(self.model, self.batch)
        other.restore(self.snapshot())
        return other

    @property
    def probabilities(self) -> np.ndarray:
        """The answers after the latest step: class probabilities, or values. # (B, C)"""
        if not self.steps:
            raise InputError("the stream has read nothing yet; call step() or feed() first")
        return self._answers(self._ys[self._cur].copy())


__all__ = ["Snapshot", "Stream"]
