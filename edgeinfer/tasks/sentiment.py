"""Sentiment (word models): classify whole texts in length-sorted batches, or stream text word by word."""
from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edgeinfer.arrays import brief
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError, WrongTaskError
from edgeinfer.preprocess.text import Tokenizer, WordBuffer
from edgeinfer.spec import TextInput
from edgeinfer.stream import Stream

MAX_BATCH_TOKENS = 64 * 512  # padded tokens per sequence-graph call
MAX_BATCH_TEXTS = 256
CHUNK_WORDS = 2048  # words per sequence-graph call when streaming long texts
LONG_TEXT_CHARS = 1 << 16  # longer texts are read in pieces of this many characters, state carried
CHUNK_TEXTS = 4096  # the bulk path tokenizes and sorts at most this many texts together...
CHUNK_CHARS = 1 << 24  # ... or this many characters, so its working memory stays bounded


_TOKENIZERS: weakref.WeakKeyDictionary[LoadedModel, Tokenizer] = weakref.WeakKeyDictionary()


def tokenizer(model: LoadedModel) -> Tokenizer:
    """The tokenizer a text model's spec defines (built once per model: its vocabulary map is
    large, and every chunk of the bulk path and every TextStream needs it)."""
    got = _TOKENIZERS.get(model)
    if got is None:
        try:
            got = Tokenizer(model.spec.require_input(TextInput))
        except WrongTaskError:
            raise InputError(f"{model.source}: a model that reads {model.spec.input.kind} does not read text") from None
        _TOKENIZERS[model] = got
    return got


EMPTY_TEXT = "empty text (no words); expected at least one word"
MIN_KNOWN_FRACTION = 0.6  # below this share of words in the vocabulary, an answer has low coverage


def is_low_coverage(known: int, words: int) -> bool:
    """True when a text's answer rests on too little the model knows: no word of it is in the
    vocabulary, or fewer than MIN_KNOWN_FRACTION of its words are (a text in another language,
    say). The answer is then little more than a guess."""
    return known == 0 or known < MIN_KNOWN_FRACTION * words


@dataclass(frozen=True)
class TextResults:
    """What a chunk of texts gave, in input order."""

    probabilities: np.ndarray  # (N, C); zero rows for the texts that could not be read
    words: np.ndarray  # (N,) words read from each text
    errors: dict[int, str]  # index -> why that text could not be read (one line)
    known: np.ndarray  # (N,) of those words, how many are in the model's vocabulary

    @property
    def low_coverage(self) -> np.ndarray:
        """(N,) bool: the texts whose answers rest on too little the model knows (is_low_coverage)."""
        return np.array([is_low_coverage(int(k), int(w)) for k, w in zip(self.known, self.words, strict=True)])


def classify_texts(model: LoadedModel, texts: Sequence[str], batch_texts: int = MAX_BATCH_TEXTS,
                   batch_tokens: int = MAX_BATCH_TOKENS) -> TextResults:
    """Classify one chunk of texts: the batched path every bulk caller shares.

    The texts are tokenized, sorted by length and run through the sequence graph in batches of
    at most `batch_texts` texts and `batch_tokens` padded tokens (one call on every core each);
    results come back in input order. A text without words is an error for that text only. A
    text of more than LONG_TEXT_CHARS characters is read in pieces with the state carried.
    Callers bound the chunk (the bulk readers take CHUNK_TEXTS texts or CHUNK_CHARS characters).
    """
    tok = tokenizer(model)
    n = len(texts)
    out = np.zeros((n, model.spec.classes), np.float32)
    words = [0] * n
    known = [0] * n
    unk = tok.spec.unk_id
    errors: dict[int, str] = {}
    ids: list[list[int]] = [[]] * n
    encode = tok.encode
    for i, text in enumerate(texts):
        if len(text) > LONG_TEXT_CHARS:
            try:
                out[i], words[i], known[i] = _long_text(model, text)
            except InputError:
                errors[i] = EMPTY_TEXT
            continue
        seq = encode(text)
        if seq:
            ids[i] = seq
            words[i] = len(seq)
            known[i] = len(seq) - seq.count(unk)
        else:
            errors[i] = EMPTY_TEXT
    order = sorted((i for i in range(n) if ids[i]), key=words.__getitem__)
    pad = tok.spec.pad_id
    start = 0
    while start < len(order):
        end = start + 1
        while (end < len(order) and end - start < batch_texts
               and words[order[end]] * (end - start + 1) <= batch_tokens):
            end += 1
        rows = order[start:end]
        lengths = np.array([words[i] for i in rows], np.int64)
        x = np.full((len(rows), int(lengths[-1])), pad, np.int64)  # sorted: the last row is the longest
        x[np.arange(x.shape[1]) < lengths[:, None]] = [t for i in rows for t in ids[i]]  # row by row
        out[rows] = model.spec.answers(model.last_step(model.sequence_logits(x, lengths), lengths))
        start = end
    return TextResults(out, np.array(words, np.int64), errors, np.array(known, np.int64))


def text_chunks(texts: Sequence[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive chunks of `texts` of at most CHUNK_TEXTS texts or CHUNK_CHARS
    characters (a longer text is a chunk of its own)."""
    start, count = 0, len(texts)
    while start < count:
        end, chars = start, 0
        while end < count and end - start < CHUNK_TEXTS and (end == start or chars + len(texts[end]) <= CHUNK_CHARS):
            chars += len(texts[end])
            end += 1
        yield start, end
        start = end


def check_texts(texts: Sequence[object]) -> None:
    """InputError naming the first item of `texts` that is not a string (as the JavaScript
    runtime's checkTexts)."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text {i} is {brief(text)}; expected a string")


def predict_texts(model: LoadedModel, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities of whole texts, batched by length. # (N, C)

    Each text is read whole (no truncation); a padded batch gives exactly each text's result
    alone, since the sequence graph stops every row at its own length. The texts go through
    `classify_texts` in chunks (CHUNK_TEXTS texts or CHUNK_CHARS characters), so the working
    memory stays bounded; a text of more than LONG_TEXT_CHARS characters is read in pieces with
    the state carried (a TextStream), so memory stays bounded whatever its length.
    """
    if isinstance(texts, str):
        raise InputError("expected a list of texts, got one string; wrap it in a list")
    tokenizer(model)
    if not isinstance(texts, Sequence):
        raise InputError(f"expected a list of texts (strings), got {brief(texts)}")
    check_texts(texts)
    out = np.zeros((len(texts), model.spec.classes), np.float32)
    for start, end in text_chunks(texts):
        got = classify_texts(model, texts[start:end])
        if got.errors:
            raise InputError(f"text {start + min(got.errors)} is empty or has no words; expected at least one word")
        out[start:end] = got.probabilities
    return out


def _require_text(chunk: object) -> None:
    if not isinstance(chunk, str):
        raise InputError(f"expected text (a string), got {type(chunk).__name__}")


def _long_text(model: LoadedModel, text: str) -> tuple[np.ndarray, int, int]:
    """Probabilities (C,), words and known words of one long text read in pieces through a TextStream."""
    stream = TextStream(model)
    for start in range(0, len(text), LONG_TEXT_CHARS):
        stream.feed(text[start : start + LONG_TEXT_CHARS])
    return stream.finish(), stream.words, stream.known_words


class TextStream:
    """Reads text as it arrives (words or chunks cut anywhere) and keeps the running result."""

    def __init__(self, model: LoadedModel) -> None:
        self.tokenizer = tokenizer(model)
        self.stream = Stream(model, 1)
        self.buffer = WordBuffer(self.tokenizer.spec.lowercase)
        self.labels = model.spec.labels
        self.known_words = 0  # words read that are in the model's vocabulary

    @property
    def words(self) -> int:
        """Words read so far."""
        return self.stream.steps

    @property
    def coverage(self) -> float:
        """The share of the words read that are in the model's vocabulary (0 before any word)."""
        return self.known_words / self.words if self.words else 0.0

    @property
    def low_coverage(self) -> bool:
        """True when the answer rests on too little the model knows (`is_low_coverage`)."""
        return is_low_coverage(self.known_words, self.words)

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities after the latest word. # (C,)"""
        if self.stream.steps == 0:
            raise InputError("the text is empty or has no words yet; expected at least one word")
        probs: np.ndarray = self.stream.probabilities[0]
        return probs

    def probability(self, label: str = "positive") -> float:
        """Running probability of one label (InputError naming the labels for another)."""
        if not isinstance(label, str) or label not in self.labels:
            shown = json.dumps(label) if isinstance(label, str) else brief(label)
            raise InputError(f"unknown label {shown}; expected one of {', '.join(self.labels)}")  # as edgeinfer-web
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
        unk = self.tokenizer.spec.unk_id
        for i in range(0, len(tokens), CHUNK_WORDS):
            ids = self.tokenizer.encode_words(tokens[i : i + CHUNK_WORDS])
            self.stream.feed(np.array(ids, np.int64))
            self.known_words += len(ids) - ids.count(unk)

    def trace(self, chunk: str, final: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """Read text word by word through the step graph, yielding (word, probabilities) each.

        By default the text is read whole, its last word included. For text arriving in pieces,
        pass `final=False` for every piece but the last: a word that may continue in the next
        piece is then held back until it is complete (so a word cut in two is read once).
        """
        _require_text(chunk)
        tokens = list(self.buffer.push(chunk)) + (list(self.buffer.flush()) if final else [])
        unk = self.tokenizer.spec.unk_id
        for word, token in zip(tokens, self.tokenizer.encode_words(tokens), strict=True):
            probs = self.stream.step(token)
            self.known_words += token != unk
            yield word, probs

    def reset(self) -> None:
        """Forget everything read."""
        self.stream.reset()
        self.known_words = 0
        self.buffer = WordBuffer(self.tokenizer.spec.lowercase)


__all__ = ["CHUNK_CHARS", "CHUNK_TEXTS", "EMPTY_TEXT", "TextResults", "TextStream", "classify_texts", "predict_texts",
           "text_chunks", "tokenizer"]
