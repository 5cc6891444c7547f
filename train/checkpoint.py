"""The checkpoint: a typed, versioned record of a training run, saved as plain containers.

On disk a checkpoint is what `torch.save` writes for a dict of tensors and plain Python values
with a "version" key, so that `torch.load(..., weights_only=True)` reads it. Version 1 (the
untyped dicts written before there was a version) still loads: its optimizer, scheduler, RNG,
language-model and partial-epoch entries go into `resume`.
"""
from __future__ import annotations

import pickle
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from edgeinfer.atomic import atomic_path
from edgeinfer.spec import InputSpec, parse_input
from train.models import NetConfig

CHECKPOINT_VERSION = 2
TASKS = ("digits", "sentiment", "characters", "sentiment-lm")
RESUME_KEYS = ("optimizer", "scheduler", "rng", "lm_state_dict", "partial")  # version 1's top-level keys
RETRAIN = "retrain with `python -m train ...`"


class CheckpointError(ValueError):
    """A file is not a checkpoint this code reads; the message is one line that names the fix."""


@dataclass(frozen=True)
class Checkpoint:
    """One training run's model, provenance and (for training runs) what resuming needs."""

    task: str  # "digits" | "sentiment" | "characters" | "sentiment-lm"
    labels: tuple[str, ...]
    input: dict[str, Any]  # the runtime input spec's fields (see `input_spec`)
    config: dict[str, Any]  # NetConfig.to_dict() (see `net_config`)
    state_dict: dict[str, torch.Tensor]  # the RecurrentNet's weights
    train_args: dict[str, Any]
    epoch: int
    train_seconds: float
    metrics: dict[str, Any]
    text: str | None = None  # characters: the training text's path
    text_sha256: str | None = None  # characters: sha256 of that file's bytes when it was trained on
    stack: dict[str, Any] | None = None  # the weights `train stack` folded into the heads
    ngrams: dict[str, Any] | None = None  # how `train ngrams` fitted the n-gram readout
    bptt: int | None = None  # language models: steps per truncated back-propagation window
    resume: dict[str, Any] | None = None  # optimizer, scheduler, rng[, lm_state_dict, partial]
    version: int = CHECKPOINT_VERSION

    @classmethod
    def new(cls, task: str, labels: tuple[str, ...], input: dict[str, Any], config: dict[str, Any], *,
            text: str | None = None, text_sha256: str | None = None) -> Checkpoint:
        """A run's description before any training: no weights, epoch 0. The training loops
        write it with their weights and state filled in (`dataclasses.replace`)."""
        return cls(task, tuple(labels), dict(input), dict(config), {}, {}, 0, 0.0, {}, text=text,
                   text_sha256=text_sha256)

    def input_spec(self) -> InputSpec:
        """The runtime's typed input spec (edgeinfer.errors.SpecError when the fields are invalid)."""
        return parse_input(self.input)

    def net_config(self) -> NetConfig:
        """The model's constructor arguments."""
        return NetConfig(**self.config)


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write `ckpt` to `path` atomically, as a dict of tensors and plain Python values."""
    payload = {f.name: getattr(ckpt, f.name) for f in fields(ckpt)}
    payload["labels"] = list(ckpt.labels)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> Checkpoint:
    """Load a checkpoint safely (`weights_only=True`: tensors and plain containers only).

    FileNotFoundError when there is no file; CheckpointError when it is not a checkpoint or
    one of a newer version than this code reads.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; train first with `python -m train ...`")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a checkpoint ({reason}); give a checkpoint.pt written by "
                              "`python -m train`") from None
    return from_dict(raw, str(path))


def from_dict(raw: Any, where: str = "checkpoint") -> Checkpoint:
    """A Checkpoint from what `torch.load` returned: version 2, or version 1 (no "version" key)."""
    if not isinstance(raw, dict) or "state_dict" not in raw:
        raise CheckpointError(f"{where}: not a checkpoint (no model weights); give a checkpoint.pt written by "
                              "`python -m train`")
    version = raw.get("version", 1)
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{where}: checkpoint version {version!r} is not an integer >= 1; {RETRAIN}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{where}: checkpoint version {version} is newer than this code reads "
                              f"({CHECKPOINT_VERSION}); update edgeinfer or {RETRAIN}")
    data = dict(raw)
    if version == 1:
        resume = {k: data.pop(k) for k in RESUME_KEYS if k in data}
        names = {f.name for f in fields(Checkpoint)}
        data = {k: v for k, v in data.items() if k in names}  # version 1 had no unknown keys worth keeping
        data["resume"] = resume or None
        data["version"] = CHECKPOINT_VERSION
    missing = [f.name for f in fields(Checkpoint) if f.name not in data and f.default is MISSING]
    if missing:
        raise CheckpointError(f"{where}: checkpoint lacks {', '.join(missing)}; {RETRAIN}")
    try:
        data["labels"] = tuple(data["labels"])
        data["input"] = dict(data["input"])
        if "vocab" in data["input"]:
            data["input"]["vocab"] = tuple(data["input"]["vocab"])
        return Checkpoint(**data)
    except (TypeError, ValueError) as exc:  # a key Checkpoint does not know, a field of the wrong kind
        raise CheckpointError(f"{where}: not a version-{version} checkpoint ({exc}); {RETRAIN}") from None
