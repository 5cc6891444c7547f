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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Stream:
    """Steps a model one time step per call; `feed` consumes a chunk of steps in one call."""

    def __init__(self, model: "Model", batch: int = 1) -> None:
        if batch < 1:
            raise InputError(f"stream batch must be >= 1, got {batch}")
        self.model = model
        self.batch = batch
        self.tokens = model.spec.input.kind in ("words", "chars")
        self._names = [s.name for s in model.spec.state]
        self.reset()

    def reset(self) -> None:
        """Back to the initial state, as if nothing had been read."""
        self.state: dict[str, np.ndarray] = self.model.spec.initial_state(self.batch)  # each (L, B, H)
        self.logits: np.ndarray | None = None  # (B, C) after the latest step
        self.steps = 0

    def _check(self, x: Any, ndim: int, what: str) -> tuple[np.ndarray, bool]:
        """Validate an input of `ndim` dims (with batch): floats (..., F), or token ids."""
        spec = self.model.spec
        if self.tokens:
            ndim -= 1  # token ids have no feature axis
            arr = np.asarray(x)
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise InputError(f"stream input must be token ids (integers), got {arr.dtype}")
            arr = arr.astype(np.int64)
            vocab = spec.input.vocab_size  # type: ignore[union-attr]
            if arr.size and (arr.min() < 0 or arr.max() >= vocab):
                raise InputError(f"token id out of range; expected 0 <= id < {vocab}")
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

    def step(self, x: Any) -> np.ndarray:
        """Read one time step x (F,) or (B, F) (a token id or (B,) ids); returns probabilities (C,) or (B, C)."""
        arr, single = self._check(x, 2, "")
        outs = self.model.step_session.run(None, {self.model.spec.io.step_input: arr, **self.state})
        return self._update(outs, single, 1)

    def feed(self, chunk: Any) -> np.ndarray:
        """Read many steps at once, (T, F) or (B, T, F) (token ids: (T,) or (B, T)), in one call.

        Runs the sequence graph with the stream's state; the result equals calling `step` T times.
        """
        arr, single = self._check(chunk, 3, "T")
        if arr.shape[1] == 0:
            raise InputError("stream chunk has no time steps; expected T >= 1")
        io = self.model.spec.io
        feeds = {io.seq_input: arr, **self.state}
        if io.lengths:
            feeds[io.lengths] = np.full(self.batch, arr.shape[1], np.int64)
        outs = self.model.sequence_session.run(None, feeds)
        return self._update(outs, single, arr.shape[1])

    def _update(self, outs: list[np.ndarray], single: bool, steps: int) -> np.ndarray:
        self.logits = outs[0]
        self.state = dict(zip(self._names, outs[1:]))
        self.steps += steps
        probs = softmax(outs[0])
        return probs[0] if single else probs

    def snapshot(self) -> Snapshot:
        """The stream's state now; `restore` puts it back, `Snapshot.to_bytes` serialises it."""
        return Snapshot(self.model.fingerprint, {k: v.copy() for k, v in self.state.items()},
                        None if self.logits is None else self.logits.copy(), self.steps)

    def restore(self, snapshot: Snapshot | bytes) -> None:
        """Continue from a snapshot of a stream of this same model (and batch size)."""
        snap = Snapshot.from_bytes(snapshot) if isinstance(snapshot, bytes) else snapshot
        if snap.model != self.model.fingerprint:
            raise InputError(f"snapshot was taken from another model (sha256 {snap.model[:12]}...); "
                             f"this stream runs {self.model.source} ({self.model.fingerprint[:12]}...)")
        want = self.model.spec.initial_state(self.batch)
        if set(snap.state) != set(want) or any(snap.state[k].shape != want[k].shape for k in want):
            raise InputError(f"snapshot state does not fit a stream of batch {self.batch}")
        self.state = {k: v.copy() for k, v in snap.state.items()}
        self.logits = None if snap.logits is None else snap.logits.copy()
        self.steps = snap.steps

    def fork(self) -> "Stream":
        """An independent copy that continues from this point."""
        other = Stream(self.model, self.batch)
        other.restore(self.snapshot())
        return other

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities after the latest step. # (B, C)"""
        if self.logits is None:
            raise InputError("the stream has read nothing yet; call step() or feed() first")
        return softmax(self.logits)
