"""edgeinfer: run small recurrent models cell by cell on onnxruntime.

    import edgeinfer
    model = edgeinfer.load("digits")            # a Model: spec, predict, stream, ...
    stream = model.stream()                     # a Stream: step, feed, snapshot, restore
"""
from edgeinfer.batch import BatchedStream, StreamBatch
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
from edgeinfer.model import Model, builtin_models, load
from edgeinfer.session import available_providers
from edgeinfer.snapshot import Snapshot
from edgeinfer.spec import ModelSpec
from edgeinfer.stream import Stream
from edgeinfer.tasks.characters import generate, score
from edgeinfer.tasks.digits import AnytimeResult
from edgeinfer.tasks.sentiment import TextStream

__all__ = [
    "AnytimeResult", "BatchedStream", "EdgeInferError", "ImageError", "InputError", "Model", "ModelFileError",
    "ModelSpec", "ProviderError", "Snapshot", "SpecError", "Stream", "StreamBatch", "TextStream", "UnreadableInput",
    "WrongTaskError",
    "available_providers", "builtin_models", "generate", "load", "score",
]
__version__ = "0.1.0"
