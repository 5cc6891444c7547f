"""Many independent streams stepped together: one onnxruntime call per step for all of them.

Streams (users, sensors, documents) join with `StreamBatch.open()` and leave with `close()` at
any step; each `step()` call names the streams that read a step now, and only those move on.
The states of all streams live in one array per state tensor, a slot (column) per stream; a
step gathers the named slots, runs the step graph once, and scatters the new state back.
"""
from __future__ import annotations

import operator
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeinfer.arrays import float_features, token_ids
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError
from edgeinfer.snapshot import Snapshot, checked_snapshot

MAX_OPEN_STREAMS = 1 << 16  # streams open in one StreamBatch at a time: its memory stays bounded


class BatchedStream:
    """One stream in a StreamBatch: its own state (a slot), snapshot and restore."""

    def __init__(self, owner: StreamBatch, slot: int) -> None:
        self.owner = owner
        self.slot = slot  # column of the owner's state arrays; -1 once closed

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return self.slot < 0

    @property
    def steps(self) -> int:
        """Steps read so far."""
        with self.owner._lock:
            return int(self.owner._steps[self.owner._live(self)])

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities after the latest step. # (C,)"""
        with self.owner._lock:
            slot = self.owner._live(self)
            if not self.owner._steps[slot]:
                raise InputError("the stream has read nothing yet; step it first")
            return self.owner.model.spec.answers(self.owner._logits[slot])

    def snapshot(self) -> Snapshot:
        """The stream's state now, interchangeable with a batch-1 Stream's snapshot."""
        return self.owner._snapshot(self)

    def restore(self, snapshot: Snapshot | bytes) -> None:
        """Continue from a snapshot of this model (from a batch or a batch-1 Stream)."""
        self.owner._restore(self, snapshot)

    def close(self) -> None:
        """Leave the batch; the slot is reused by a later `open()`."""
        self.owner.close(self)


class StreamBatch:
    """Independent streams of one model stepped together; each gives the results it would alone.

    fp32 models, and int8 models whose recurrent cell stays fp32 (GRU, RNN), give the same
    results as each stream stepped alone. int8 LSTMs (DynamicQuantizeLSTM) quantize the step's
    inputs with one scale for the whole batch, so their results move slightly with batch mates.
    A StreamBatch may be shared between threads: every operation holds the batch's lock, so
    calls from several threads run one after another.
    """

    def __init__(self, model: LoadedModel, capacity: int = 16) -> None:
        self.model = model
        spec = model.spec
        vocab = spec.token_vocab
        self.tokens = vocab is not None
        self._vocab = vocab.vocab_size if vocab is not None else 0
        capacity = max(1, capacity)
        self._state = spec.initial_state(capacity)  # each (L, capacity, H)
        self._logits = np.zeros((capacity, spec.classes), np.float32)
        self._steps = np.zeros(capacity, np.int64)
        self._free = list(range(capacity - 1, -1, -1))
        self._open: dict[int, BatchedStream] = {}
        self._lock = threading.RLock()  # every operation holds it: the batch is shared between threads
        # open() and close() bump the generation; the last stepped list of streams, checked, with its
        # slots, stands while the generation does (checking 256 streams one by one cost more than the
        # run of a small model's step)
        self._generation = 0
        self._checked: tuple[tuple[BatchedStream, ...], int, np.ndarray, bool] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def streams(self) -> list[BatchedStream]:
        """The open streams, in the order they were opened."""
        with self._lock:
            return list(self._open.values())

    def open(self, snapshot: Snapshot | bytes | None = None) -> BatchedStream:
        """A new stream from the initial state (or from `snapshot`)."""
        with self._lock:
            return self._open_locked(snapshot)

    def _open_locked(self, snapshot: Snapshot | bytes | None) -> BatchedStream:
        if len(self._open) >= MAX_OPEN_STREAMS:
            raise InputError(f"a StreamBatch holds at most {MAX_OPEN_STREAMS:,} open streams; close the ones "
                             "that are done (stream.close()) or open another StreamBatch")
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self._generation += 1
        self._reset(slot)
        stream = BatchedStream(self, slot)
        self._open[slot] = stream
        if snapshot is not None:
            try:
                stream.restore(snapshot)
            except InputError:
                self._close_locked(stream)
                raise
        return stream

    def close(self, stream: BatchedStream) -> None:
        """Remove a stream from the batch (closing twice is harmless)."""
        with self._lock:
            self._close_locked(stream)

    def _close_locked(self, stream: BatchedStream) -> None:
        if stream.owner is self and not stream.closed and self._open.get(stream.slot) is stream:
            del self._open[stream.slot]
            self._free.append(stream.slot)
            stream.slot = -1
            self._generation += 1
            self._checked = None  # drops its references to closed streams

    def step(self, streams: Sequence[BatchedStream], x: Any) -> np.ndarray:
        """One step for each named stream: x (N, F) floats or (N,) token ids, row i for streams[i].

        Streams not named keep their state. Returns the probabilities. # (N, C)
        """
        with self._lock:
            return self._step_locked(streams, x)

    def _step_locked(self, streams: Sequence[BatchedStream], x: Any) -> np.ndarray:
        slots, whole = self._slots(streams)
        arr = self._check(x, len(slots))
        spec = self.model.spec
        io = spec.io
        feeds = {name: (v if whole else v[:, slots]) for name, v in self._state.items()}
        if io.batch_steps_from and len(slots) >= io.batch_steps_from:  # the faster graph at this batch
            out, carried = self.model.run_sequence(arr[:, None], feeds)
            outs = [self.model.last_step(out), *(carried[s.name] for s in spec.state)]
            names: list[str] = []
        else:
            names = [io.output, *spec.state_outputs, *([io.step_probabilities] if io.step_probabilities else [])]
            step_x = arr if self.tokens else self.model.graph_features(arr)
            outs = self.model.run("batch_step", names, {io.step_input: step_x, **feeds})
        for s, new in zip(spec.state, outs[1:], strict=False):
            if whole:
                self._state[s.name] = new
            else:
                self._state[s.name][:, slots] = new
        self._logits[slots] = outs[0]
        self._steps[slots] += 1
        return outs[-1] if io.step_probabilities and names else spec.answers(outs[0])

    def _slots(self, streams: Sequence[BatchedStream]) -> tuple[np.ndarray, bool]:
        """The slots of the streams to step (each open in this batch, none twice), and whether they
        are every slot in order. The same streams as the last step, none opened or closed since:
        the last answer, matched by identity (never by ==, which an object can claim)."""
        if not isinstance(streams, Sequence) or isinstance(streams, (str, bytes)):
            raise InputError("expected a list of the streams to step")
        named = tuple(streams)
        checked = self._checked
        if (checked is not None and checked[1] == self._generation and len(checked[0]) == len(named)
                and all(map(operator.is_, checked[0], named))):
            return checked[2], checked[3]
        slots = np.fromiter((self._live(s) for s in named), np.intp, len(named))
        if len(slots) == 0:
            raise InputError("no streams to step; expected at least one open stream")
        if len(set(slots.tolist())) != len(slots):
            raise InputError("a stream is named twice in one step; expected each at most once")
        whole = len(slots) == self._steps.shape[0] and bool((slots == np.arange(len(slots))).all())
        self._checked = (named, self._generation, slots, whole)
        return slots, whole

    def _check(self, x: Any, n: int) -> np.ndarray:
        if self.tokens:
            arr = token_ids(x, self._vocab)
            if arr.shape != (n,):
                raise InputError(f"stream batch input has shape {arr.shape}; expected ({n},) token ids, "
                                 "one per stream stepped")
            return arr
        arr = np.ascontiguousarray(float_features(x))
        f = self.model.spec.input_size
        if arr.shape != (n, f):
            raise InputError(f"stream batch input has shape {arr.shape}; expected ({n}, {f}) float32, "
                             "one row per stream stepped")
        return arr

    def _live(self, stream: BatchedStream) -> int:
        if not isinstance(stream, BatchedStream):
            raise InputError(f"expected streams opened by this batch, got {type(stream).__name__}")
        if stream.owner is not self or stream.closed or self._open.get(stream.slot) is not stream:
            raise InputError("that stream is closed or belongs to another batch; open() a new one")
        return stream.slot

    def _grow(self) -> None:
        old = self._steps.shape[0]
        extra = self.model.spec.initial_state(old)
        self._state = {k: np.concatenate([v, extra[k]], axis=1) for k, v in self._state.items()}
        self._logits = np.concatenate([self._logits, np.zeros_like(self._logits)])
        self._steps = np.concatenate([self._steps, np.zeros_like(self._steps)])
        self._free.extend(range(2 * old - 1, old - 1, -1))

    def _reset(self, slot: int) -> None:
        for k, v in self.model.spec.initial_state(1).items():
            self._state[k][:, slot] = v[:, 0]
        self._logits[slot] = 0
        self._steps[slot] = 0

    def _snapshot(self, stream: BatchedStream) -> Snapshot:
        with self._lock:
            return self._snapshot_locked(stream)

    def _snapshot_locked(self, stream: BatchedStream) -> Snapshot:
        slot = self._live(stream)
        steps = int(self._steps[slot])
        return Snapshot(self.model.fingerprint, {k: v[:, slot : slot + 1].copy() for k, v in self._state.items()},
                        self._logits[slot : slot + 1].copy() if steps else None, steps)

    def _restore(self, stream: BatchedStream, snapshot: Snapshot | bytes) -> None:
        with self._lock:
            self._restore_locked(stream, snapshot)

    def _restore_locked(self, stream: BatchedStream, snapshot: Snapshot | bytes) -> None:
        slot = self._live(stream)
        snap = checked_snapshot(self.model, snapshot, 1)
        for k, v in snap.state.items():
            self._state[k][:, slot] = v[:, 0]
        self._logits[slot] = 0 if snap.logits is None else snap.logits[0]
        self._steps[slot] = snap.steps if snap.logits is not None else 0


__all__ = ["BatchedStream", "StreamBatch"]
