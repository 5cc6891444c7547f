"""Stream snapshots: a stream's state at one point, to restore, fork, or carry to another process."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError

SNAPSHOT_MAGIC = "edgeinfer-snapshot-1"


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A stream's state at one point: enough to resume it, here or in another process.

    Snapshots compare equal when they hold the same model, steps, state and logits; they are
    not hashable (they hold arrays).
    """

    model: str  # sha256 of the model file it was taken from
    state: dict[str, np.ndarray]  # each (L, B, H)
    logits: np.ndarray | None  # (B, C) after the latest step
    steps: int

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside: not hashable

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        same_logits = (self.logits is None and other.logits is None) or (
            self.logits is not None and other.logits is not None and np.array_equal(self.logits, other.logits))
        return (self.model == other.model and self.steps == other.steps and same_logits
                and self.state.keys() == other.state.keys()
                and all(np.array_equal(v, other.state[k]) for k, v in self.state.items()))

    def to_bytes(self) -> bytes:
        """Serialise (numpy .npz, no pickle)."""
        buf = io.BytesIO()
        arrays: dict[str, Any] = {f"state.{k}": v for k, v in self.state.items()}
        if self.logits is not None:
            arrays["logits"] = self.logits
        meta = json.dumps({"magic": SNAPSHOT_MAGIC, "model": self.model, "steps": self.steps})
        np.savez(buf, meta=np.array(meta), **arrays)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> Snapshot:
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


def checked_snapshot(model: LoadedModel, snapshot: Snapshot | bytes, batch: int) -> Snapshot:
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


__all__ = ["SNAPSHOT_MAGIC", "Snapshot", "checked_snapshot"]
