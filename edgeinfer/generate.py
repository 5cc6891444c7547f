"""Character models: generate text one character per step, and score text in nats per character."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from edgeinfer.errors import InputError
from edgeinfer.preprocess.text import PAD_ID, UNK_ID, CharTokenizer
from edgeinfer.spec import CharInput
from edgeinfer.stream import Stream

if TYPE_CHECKING:
    from edgeinfer.model import Model


def char_tokenizer(model: "Model") -> CharTokenizer:
    """The character tokenizer a characters model's spec defines."""
    if not isinstance(model.spec.input, CharInput):
        raise InputError(f"{model.source}: a {model.spec.task} model; expected a characters model")
    return CharTokenizer(model.spec.input)


def generate(model: "Model", prompt: str, max_chars: int, temperature: float = 1.0, top_k: int = 0,
             seed: int | None = None, stream: Stream | None = None) -> Iterator[str]:
    """Yield up to `max_chars` characters continuing `prompt`, one per step, as they are produced.

    temperature 0 means greedy (always the most likely character); otherwise logits are divided
    by the temperature and, with top_k > 0, sampling keeps the k most likely characters. The
    same seed gives the same text. Padding and unknown are never produced. Pass `stream` to
    continue (and keep) a stream of your own; its prompt is then optional.
    """
    if max_chars < 1:
        raise InputError(f"max_chars must be >= 1, got {max_chars}")
    if not temperature >= 0 or math.isinf(temperature):
        raise InputError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k < 0:
        raise InputError(f"top_k must be >= 0, got {top_k}")
    tok = char_tokenizer(model)
    s = stream if stream is not None else model.stream()
    if prompt:
        s.feed(np.array(tok.encode(prompt), np.int64))
    if s.logits is None:
        raise InputError("an empty prompt; expected at least one character to start from")
    rng = np.random.default_rng(seed)
    for _ in range(max_chars):
        logits = s.logits[0].astype(np.float64)
        logits[[PAD_ID, UNK_ID]] = -np.inf
        if temperature == 0:
            nxt = int(np.argmax(logits))
        else:
            z = logits / temperature
            if 0 < top_k < len(z):
                z[z < np.partition(z, -top_k)[-top_k]] = -np.inf
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
        yield tok.chars[nxt]
        s.step(nxt)


def score(model: "Model", text: str) -> float:
    """Average loss of predicting each character from those before it, in nats per character."""
    tok = char_tokenizer(model)
    ids = tok.encode(text)
    if len(ids) < 2:
        raise InputError("text too short to score; expected at least two characters")
    s = model.stream()
    total = 0.0
    s.step(ids[0])
    for nxt in ids[1:]:
        logits = s.logits[0].astype(np.float64)  # type: ignore[index]
        top = logits.max()
        total += top + math.log(np.exp(logits - top).sum()) - logits[nxt]
        s.step(nxt)
    return total / (len(ids) - 1)
