"""Task recipes: what data, model and labels each task trains on."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeinfer.preprocess.image import normalize
from edgeinfer.spec import ImageInput
from train.data import load_mnist

DIGIT_LABELS = tuple(str(d) for d in range(10))


def digits_tensors(root: Path, split: str, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as model inputs (N, 28, 28) float32, normalised as the spec says, and labels (N,)."""
    images, labels = load_mnist(root, split)
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = normalize(images.astype(np.float32) / 255.0, ImageInput())
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


def shift_digits(max_px: int):
    """Augmentation: shift each image by up to max_px pixels in each direction, zero-filled."""
    background = float(normalize(np.zeros(1, np.float32), ImageInput())[0])

    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, rows, cols = x.shape
        pad = torch.nn.functional.pad(x, (max_px, max_px, max_px, max_px), value=background)
        dy = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
        r = (dy[:, None] + torch.arange(rows)[None, :])[:, :, None]
        c = (dx[:, None] + torch.arange(cols)[None, :])[:, None, :]
        return pad[torch.arange(b)[:, None, None], r, c]

    return apply


def digits_meta() -> dict[str, Any]:
    """Checkpoint metadata of the digits task."""
    return {"task": "digits", "labels": list(DIGIT_LABELS), "input": asdict(ImageInput())}
