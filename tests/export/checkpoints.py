"""Tiny checkpoints and data sets written straight to disk, for export tests (no training)."""
from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeinfer.spec import CharInput, ImageInput
from train.checkpoint import Checkpoint, save_checkpoint
from train.data import MNIST_FILES
from train.models import NetConfig, RecurrentNet, build


def write_checkpoint(path: Path, net: RecurrentNet, task: str, labels: tuple[str, ...], input: dict[str, Any],
                     **fields: Any) -> Path:
    """Save `net` as a finished run's checkpoint of `task` (extra Checkpoint fields as given)."""
    ckpt = replace(Checkpoint.new(task, labels, input, net.config.to_dict()), state_dict=net.state_dict(),
                   train_args={"epochs": 1}, epoch=1, train_seconds=1.0, metrics={}, **fields)
    save_checkpoint(path, ckpt)
    return path


def digits_net(cell: str = "gru", hidden: int = 16, seed: int = 0) -> RecurrentNet:
    """A random-weight digits net: 28 pixels per step, 10 classes."""
    torch.manual_seed(seed)
    return build(NetConfig(cell, 28, hidden, 1, 10)).eval()


def digits_checkpoint(path: Path, net: RecurrentNet, image: ImageInput | None = None) -> Path:
    """A digits checkpoint of `net` whose input spec is `image` (default: ImageInput())."""
    return write_checkpoint(path, net, "digits", tuple(str(d) for d in range(10)), asdict(image or ImageInput()))


def characters_net(vocab: tuple[str, ...], cell: str = "gru", seed: int = 0) -> RecurrentNet:
    """A random-weight character language model over `vocab` (ids 0 and 1: padding, unknown)."""
    torch.manual_seed(seed)
    size = len(vocab) + 2
    return build(NetConfig(cell, 8, 16, 1, size, vocab=size)).eval()


def characters_checkpoint(path: Path, net: RecurrentNet, vocab: tuple[str, ...], text: Path,
                          verified: bool = True) -> Path:
    """A characters checkpoint trained (it says) on `text`; `verified` records the text's sha256 (as
    checkpoints do since it was added), else none (as older ones)."""
    digest = hashlib.sha256(text.read_bytes()).hexdigest() if verified else None
    return write_checkpoint(path, net, "characters", ("<pad>", "<unk>", *vocab), asdict(CharInput(vocab=vocab)),
                            text=str(text), text_sha256=digest)


def write_mnist_test(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """The MNIST test split's two IDX files (gzip-ed, unsigned bytes), as published."""
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    for kind, array in (("images", images), ("labels", labels)):
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        with gzip.open(root / "mnist" / MNIST_FILES[("test", kind)][0], "wb") as fh:
            fh.write(header + array.astype(np.uint8).tobytes())
