"""Sentiment (word models): classify whole texts in length-sorted batches, or stream text word by word."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from edgeinfer.arrays import softmax
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError, WrongTaskError
from edgeinfer.preprocess.text import Tokenizer, WordBuffer
from edgeinfer.spec import TextInput
from edgeinfer.stream import Stream

MAX_BATCH_TOKENS = 64 * 512  # padded tokens per sequence-graph call
MAX_BATCH_TEXTS = 256
CHUNK_WORDS = 2048  # words per sequence-graph call when streaming long texts
LONG_TEXT_CHARS = 1 << 16  # longer texts are read in pieces of this many characters, state carried


def tokenizer(model: LoadedModel) -> Tokenizer:
    """The tokenizer a text model's spec defines."""
    try:
        return Tokenizer(model.spec.require_input(TextInput))
    except WrongTaskError:
        raise InputError(f"{model.source}: a {model.spec.task} model does not read text") from None


def predict_texts(model: LoadedModel, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities of whole texts, batched by length. # (N, C)

    Each text is read whole (no truncation); a padded batch gives exactly each text's result
    alone, since the sequence graph stops every row at its own length. A text of more than
    LONG_TEXT_CHARS characters is read in pieces with the state carried (a TextStream), so
    memory stays bounded whatever its length.
    """
    if isinstance(texts, str):
        raise InputError("expected a list of texts, got one string; wrap it in a list")
    tok = tokenizer(model)
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise InputError("expected a list of texts (strings)")
    out = np.zeros((len(texts), model.spec.classes), np.float32)
    short = [i for i, t in enumerate(texts) if len(t) <= LONG_TEXT_CHARS]
    for i in sorted(set(range(len(texts))) - set(short)):
        out[i] = _long_text(model, texts[i], i)
    ids = {i: np.array(tok.encode(texts[i]), np.int64) for i in short}
    for i, seq in ids.items():
        if len(seq) == 0:
            raise InputError(f"text {i} is empty or has no words; expected at least one word")
    order = sorted(short, key=lambda i: len(ids[i]))
    start = 0
    while start < len(order):
        end = start + 1
        while (end < len(order) and end - start < MAX_BATCH_TEXTS
               and len(ids[order[end]]) * (end - start + 1) <= MAX_BATCH_TOKENS):
            end += 1
        rows = order[start:end]
        lengths = np.array([len(ids[i]) for i in rows], np.int64)
        x = np.full((len(rows), int(lengths.max())), tok.spec.pad_id, np.int64)
        for r, i in enumerate(rows):
            x[r, : lengths[r]] = ids[i]
        out[rows] = softmax(model.sequence_logits(x, lengths))
        start = end
    return out


def _require_text(chunk: object) -> None:
    if not isinstance(chunk, str):
        raise InputError(f"expected text (a string), got {type(chunk).__name__}")


def _long_text(model: LoadedModel, text: str, index: int) -> np.ndarray:
    """Probabilities of one long text read in pieces through a TextStream. # (C,)"""
    stream = TextStream(model)
    for start in range(0, len(text), LONG_TEXT_CHARS):
        stream.feed(text[start : start + LONG_TEXT_CHARS])
    try:
        return stream.finish()
    except InputError:
        raise InputError(f"text {index} is empty or has no words; expected at least one word") from None


class TextStream:
    """Reads text as it arrives (words or chunks cut anywhere) and keeps the running result."""

    def __init__(self, model: LoadedModel) -> None:
        self.tokenizer = tokenizer(model)
        self.stream = Stream(model, 1)
        self.buffer = WordBuffer(self.tokenizer.spec.lowercase)
        self.labels = model.spec.labels

    @property
    def words(self) -> int:
        """Words read so far."""
        return self.stream.steps

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities after the latest word. # (C,)"""
        if self.stream.steps == 0:
            raise InputError("the text is empty or has no words yet; expected at least one word")
        probs: np.ndarray = self.stream.probabilities[0]
        return probs

    def probability(self, label: str = "positive") -> float:
        """Running probability of one label."""
        return float(self.probabilities[self.labels.index(label)])

    def feed(self, chunk: str) -> None:
        """Read a chunk of text; complete words go through the sequence graph in one call."""
        _require_text(chunk)
        self._feed_words(list(self.buffer.push(chunk)))

    def finish(self) -> np.ndarray:
        """End of text: read the last pending word; returns the final probabilities. # (C,)"""
        self._feed_words(list(self.buffer.flush()))
        return self.probabilities

    def _feed_words(self, tokens: list[str]) -> None:
        for i in range(0, len(tokens), CHUNK_WORDS):
            self.stream.feed(np.array(self.tokenizer.encode_words(tokens[i : i + CHUNK_WORDS]), np.int64))

    def trace(self, chunk: str, final: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """Read text word by word through the step graph, yielding (word, probabilities) each.

        By default the text is read whole, its last word included. For text arriving in pieces,
        pass `final=False` for every piece but the last: a word that may continue in the next
        piece is then held back until it is complete (so a word cut in two is read once).
        """
        _require_text(chunk)
        tokens = list(self.buffer.push(chunk)) + (list(self.buffer.flush()) if final else [])
        for word, token in zip(tokens, self.tokenizer.encode_words(tokens), strict=True):
            yield word, self.stream.step(token)

    def reset(self) -> None:
        """Forget everything read."""
        self.stream.reset()
        self.buffer = WordBuffer(self.tokenizer.spec.lowercase)


__all__ = ["TextStream", "predict_texts", "tokenizer"]
