"""Stream snapshots: a stream's state at one point, to restore, fork, or carry to another process."""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError

SNAPSHOT_MAGIC = "edgeinfer-snapshot-1"
MAX_SNAPSHOT_BYTES = 256 << 20  # the most a snapshot may unpack to when no model bounds it
_MEMBER_OVERHEAD = 4096  # a .npy header, and the JSON meta, take at most this
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"state\.[A-Za-z0-9_.-]{1,256}\.npy|logits\.npy|meta\.npy")


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
    def from_bytes(data: bytes, max_bytes: int = MAX_SNAPSHOT_BYTES) -> Snapshot:
        """Parse bytes written by `to_bytes`; InputError for anything else.

        The archive's declared sizes are checked before anything is unpacked: a snapshot that
        would unpack to more than `max_bytes` is refused without reading it.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError(f"a snapshot is bytes or a Snapshot, got {type(data).__name__}")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = archive.infolist()
                if len(members) > 64 or any(not _NAME.fullmatch(m.filename) for m in members):
                    raise ValueError("unexpected members")
                _check_directory(bytes(data), archive, members)
                if sum(m.file_size for m in members) > max_bytes:
                    raise InputError(f"snapshot would unpack to more than {max_bytes:,} bytes; "
                                     "expected a snapshot of this model's stream")
                for member in members:
                    _check_npy_header(archive, member)
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                state = {k[len("state."):]: z[k] for k in z.files if k.startswith("state.")}
                logits = z["logits"] if "logits" in z.files else None
        except InputError:
            raise
        except Exception:  # zipfile, numpy and json raise many types for damaged bytes
            raise InputError("not an edgeinfer stream snapshot (damaged or of another kind)") from None
        return _checked_parts(meta, state, logits)


def _declared_entries(data: bytes) -> int:
    """The member count the archive's end record declares (zip64's when it says so), found as
    the JavaScript runtime finds it: the record whose comment ends exactly at the end."""
    low = max(0, len(data) - 22 - 0xFFFF)
    for at in range(len(data) - 22, low - 1, -1):
        if data[at:at + 4] == b"PK\x05\x06" and at + 22 + int.from_bytes(data[at + 20:at + 22], "little") == len(data):
            count = int.from_bytes(data[at + 10:at + 12], "little")
            if count == 0xFFFF and at >= 20 and data[at - 20:at - 16] == b"PK\x06\x07":
                record = int.from_bytes(data[at - 12:at - 4], "little")
                if data[record:record + 4] == b"PK\x06\x06":
                    count = int.from_bytes(data[record + 32:record + 40], "little")
            return count
    raise ValueError("no end of central directory")


def _check_directory(data: bytes, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> None:
    """The archive's directory must hold what it declares, each member once, each member's data
    inside the archive, stored ones at their own size: zipfile alone reads on past some damage
    (a comment length grown over the next entry drops that member), which the JavaScript runtime
    refuses; both refuse it so."""
    if len(members) != _declared_entries(data) or len({m.filename for m in members}) != len(members):
        raise ValueError("the directory does not hold what it declares")
    for m in members:
        o = m.header_offset
        if data[o:o + 4] != b"PK\x03\x04" or m.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError("bad member")
        start = o + 30 + int.from_bytes(data[o + 26:o + 28], "little") + int.from_bytes(data[o + 28:o + 30], "little")
        stored_size_differs = m.compress_type == zipfile.ZIP_STORED and m.compress_size != m.file_size
        if start + m.compress_size > archive.start_dir or stored_size_differs:
            raise ValueError("member data out of bounds")


def _check_npy_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """A member's .npy header must declare no more data than the member holds (numpy allocates
    what the header declares before reading)."""
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    if dtype.hasobject or float(np.prod(shape, dtype=np.float64)) * dtype.itemsize > member.file_size:
        raise ValueError("header declares more than the member holds")


def _finite_float32(arr: np.ndarray, ndim: int) -> bool:
    return bool(arr.dtype == np.float32 and arr.ndim == ndim and np.isfinite(arr).all())


def _checked_parts(meta: Any, state: dict[str, np.ndarray], logits: np.ndarray | None) -> Snapshot:
    """A Snapshot from parsed parts, every part checked; InputError otherwise."""
    if not isinstance(meta, dict) or meta.get("magic") != SNAPSHOT_MAGIC:
        raise InputError("not an edgeinfer stream snapshot")
    model, steps = meta.get("model"), meta.get("steps")
    if not isinstance(model, str) or not _SHA256.fullmatch(model):
        raise InputError("snapshot names no model (sha256); it is damaged")
    if type(steps) is not int or not 0 <= steps < 1 << 53:
        raise InputError(f"snapshot step count {steps!r} is not a whole number >= 0; it is damaged")
    if not state or not all(_finite_float32(v, 3) for v in state.values()):
        raise InputError("snapshot state must be finite float32 (layers, batch, hidden) arrays; it is damaged")
    if logits is not None and not _finite_float32(logits, 2):
        raise InputError("snapshot logits must be a finite float32 (batch, classes) array; it is damaged")
    if logits is None and steps:  # a stream has logits from its first step on
        raise InputError(f"snapshot counts {steps} steps but holds no logits; it is damaged")
    return Snapshot(model, state, logits, steps)


def checked_snapshot(model: LoadedModel, snapshot: Snapshot | bytes, batch: int) -> Snapshot:
    """A snapshot (or its bytes) checked to come from `model` and to hold `batch` streams."""
    want = model.spec.initial_state(batch)
    if isinstance(snapshot, (bytes, bytearray, memoryview)):
        need = sum(v.nbytes for v in want.values()) + 4 * batch * model.spec.classes
        snap = Snapshot.from_bytes(bytes(snapshot), max_bytes=need + (len(want) + 2) * _MEMBER_OVERHEAD)
    elif isinstance(snapshot, Snapshot):
        snap = _checked_parts({"magic": SNAPSHOT_MAGIC, "model": snapshot.model, "steps": snapshot.steps},
                              snapshot.state, snapshot.logits)
    else:
        raise InputError(f"expected a Snapshot or its bytes, got {type(snapshot).__name__}")
    if snap.model != model.fingerprint:
        raise InputError(f"snapshot was taken from another model (sha256 {snap.model[:12]}...); "
                         f"this stream runs {model.source} ({model.fingerprint[:12]}...)")
    if set(snap.state) != set(want) or any(snap.state[k].shape != want[k].shape for k in want):
        raise InputError(f"snapshot state does not fit a stream of batch {batch}")
    if snap.logits is not None and snap.logits.shape != (batch, model.spec.classes):
        raise InputError(f"snapshot logits do not fit a stream of batch {batch}")
    _check_reachable(model, snap)
    return snap


def _check_reachable(model: LoadedModel, snap: Snapshot) -> None:
    """InputError for a state no stream of this model can reach after `snap.steps` steps (finite,
    but impossible: it would give NaN or nonsense): a GRU's or LSTM's hidden state is a tanh
    within [-1, 1], and so is the running maximum of it a pooled readout keeps (its sum moves by
    at most 1 a step); an LSTM's cell state moves by at most 1 a step; a readout's step count is
    a whole number from 0 to the steps read, and the n-gram readout's previous words are token
    ids of the model's vocabulary."""
    spec = model.spec
    bounds: dict[str, float] = {}
    if spec.provenance.get("contract") == "protocol":  # the user's own state: only they know its range
        return
    active = spec.readout.active
    if spec.cell in ("gru", "lstm"):
        bounds["h"] = 1.0
        if active:
            bounds["pool_max"] = 1.0
            bounds["pool_sum"] = float(snap.steps)
    if spec.cell == "lstm":
        bounds["c"] = float(snap.steps) + 1.0
    for name, limit in bounds.items():
        value = snap.state.get(name)
        if value is not None and value.size and float(np.abs(value).max()) > limit:
            raise InputError(f"snapshot state {name!r} holds {float(np.abs(value).max()):.3g}, beyond the "
                             f"{limit:g} a stream of this model can reach after {snap.steps} steps; it is damaged")
    count = snap.state.get("count") if active else None
    if count is not None and count.size and (
            float(count.min()) < 0 or float(count.max()) > snap.steps or not np.array_equal(count, np.round(count))):
        raise InputError(f"snapshot state 'count' must count the steps read (whole numbers from 0 to "
                         f"{snap.steps}); it is damaged")
    prev = snap.state.get("prev") if active else None
    vocab = spec.token_vocab
    if prev is not None and prev.size and vocab is not None and (
            float(prev.min()) < 0 or float(prev.max()) >= vocab.vocab_size or not np.array_equal(prev, np.round(prev))):
        raise InputError(f"snapshot state 'prev' must hold the latest words' token ids (whole numbers from 0 to "
                         f"{vocab.vocab_size - 1}); it is damaged")


__all__ = ["SNAPSHOT_MAGIC", "Snapshot", "checked_snapshot"]
