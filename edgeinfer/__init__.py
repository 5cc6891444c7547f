"""edgeinfer: run small recurrent models cell by cell on onnxruntime.

    import edgeinfer
    model = edgeinfer.load("digits")            # a Model: spec, predict, stream, ...
    stream = model.stream()                     # a Stream: step, feed, snapshot, restore

The names below are imported when first used (PEP 562): `import edgeinfer` alone loads no numpy
and no onnxruntime, so the command line starts inside its own error handling (a Ctrl-C while it
starts is "interrupted", never a traceback) and a program pays for what it uses.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgeinfer.errors import (
    EdgeInferError,
    ImageError,
    InputError,
    ModelFileError,
    ProviderError,
    SpecError,
    UnreadableInput,
    WrongTaskError,
)

if TYPE_CHECKING:
    from edgeinfer.answers import Answer
    from edgeinfer.batch import BatchedStream, StreamBatch
    from edgeinfer.model import Model, builtin_models, load
    from edgeinfer.preprocess.image import load_digit
    from edgeinfer.session import available_providers
    from edgeinfer.snapshot import Snapshot
    from edgeinfer.spec import ModelSpec
    from edgeinfer.stream import Stream
    from edgeinfer.tasks.characters import generate, score
    from edgeinfer.tasks.digits import AnytimeResult
    from edgeinfer.tasks.sentiment import TextStream, classify_texts

_LAZY = {
    "Answer": "edgeinfer.answers",
    "BatchedStream": "edgeinfer.batch", "StreamBatch": "edgeinfer.batch", "Model": "edgeinfer.model",
    "builtin_models": "edgeinfer.model", "load": "edgeinfer.model", "available_providers": "edgeinfer.session",
    "Snapshot": "edgeinfer.snapshot", "ModelSpec": "edgeinfer.spec", "Stream": "edgeinfer.stream",
    "generate": "edgeinfer.tasks.characters", "score": "edgeinfer.tasks.characters",
    "AnytimeResult": "edgeinfer.tasks.digits", "TextStream": "edgeinfer.tasks.sentiment",
    "classify_texts": "edgeinfer.tasks.sentiment", "load_digit": "edgeinfer.preprocess.image",
}


def __getattr__(name: str) -> Any:
    """The public names, and the submodules (`edgeinfer.core`), imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Answer", "AnytimeResult", "BatchedStream", "EdgeInferError", "ImageError", "InputError", "Model", "ModelFileError",
    "ModelSpec", "ProviderError", "Snapshot", "SpecError", "Stream", "StreamBatch", "TextStream", "UnreadableInput",
    "WrongTaskError",
    "available_providers", "builtin_models", "classify_texts", "generate", "load", "load_digit", "score",
]
__version__ = "0.1.0"
