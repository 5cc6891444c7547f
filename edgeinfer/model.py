"""The `Model` facade: a loaded model with every feature one call away.

`Model` is a `LoadedModel` (edgeinfer.core) plus the methods that build the features: streams,
stream batches, whole-sequence prediction, early exit, text streams. It is the only module that
imports the feature modules; none of them imports it.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgeinfer.answers import Answer
from edgeinfer.batch import StreamBatch
from edgeinfer.core import LoadedModel, builtin_models
from edgeinfer.session import ProviderRequest
from edgeinfer.spec import TextInput
from edgeinfer.stream import Stream
from edgeinfer.tasks.digits import AnytimeResult, early_exit, predict_logits
from edgeinfer.tasks.labelled import classify
from edgeinfer.tasks.sentiment import TextStream, predict_texts


class Model(LoadedModel):
    """A loaded model: its spec, a sequence session for batches and a step session for streams.

    Sessions are created on first use and shared by every stream and thread; state belongs to
    the streams.
    """

    def classify(self, inputs: Any, early_exit: float | None = None) -> list[Answer]:
        """Labelled answers, one per input, in order: label, probability, every label's score, flags.

        Takes what the user has: image files (paths), their bytes, Pillow images or pixel
        arrays for an image model; texts for a text model; sequences (T, F), a list of them or
        (B, T, F) for a feature model. `early_exit`: stop reading an input once its top
        probability reaches this (Answer.steps says how far it read).
        """
        return classify(self, inputs, early_exit)

    def predict_logits(self, x: Any) -> np.ndarray:
        """The graph's output for whole sequences x (B, T, F), or (T, F) for one: logits (or values)
        after the last step, # (B, C) or (C,); every step's for a model that answers every step,
        # (B, T, C) or (T, C)"""
        return predict_logits(self, x)

    def predict(self, x: Any) -> np.ndarray:
        """The answers for whole sequences: class probabilities, or values. # (B, C) or (C,)

        Feature models take x (B, T, F), or (T, F) for one (raw features: the spec's normalisation
        is applied); a model that answers every step gives # (B, T, C) or (T, C). Text models take
        a list of texts, tokenized with the spec and batched by length (each text read whole); token
        models also take token ids (B, T) or (T,).
        """
        if isinstance(self.spec.input, TextInput) and (isinstance(x, str) or (
                isinstance(x, (list, tuple)) and (not x or isinstance(x[0], str)))):
            return predict_texts(self, x)
        return self.spec.answers(predict_logits(self, x))

    def stream(self, batch: int = 1) -> Stream:
        """A new stream with its own state; many may run at once on one Model."""
        return Stream(self, batch)

    def stream_batch(self) -> StreamBatch:
        """An empty batch of streams that step together in one call; `open()` adds streams."""
        return StreamBatch(self)

    def early_exit(self, x: Any, threshold: float) -> AnytimeResult:
        """Classify sequences step by step, stopping each once its top probability reaches
        `threshold` (1.0: read everything). x (B, T, F) or (T, F)."""
        return early_exit(self, x, threshold)

    def text_stream(self) -> TextStream:
        """A stream of text for a text model: feed chunks as they arrive, read the running result."""
        return TextStream(self)


def load(model: str | os.PathLike[str], providers: ProviderRequest = None,
         intra_op_threads: int | None = None, cpu_fallback: bool = True, dequantize: bool | None = None) -> Model:
    """Load a model by path or built-in name (e.g. "digits").

    `providers`: an execution provider's name (`cpu`, `cuda`, `openvino`, `CUDAExecutionProvider`...),
    a list of them, or `auto`; a missing one is a ProviderError now, not at the first run.
    `cpu_fallback=False`: every node must run on that provider. `dequantize`: int8 operators as
    fp32 ones of the file's dequantized weights (default: only on providers without int8 kernels).
    """
    return Model(model, providers, intra_op_threads, cpu_fallback=cpu_fallback, dequantize=dequantize)


__all__ = ["Model", "builtin_models", "load"]
