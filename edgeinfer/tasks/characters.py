"""Character models: generate text one character per step, and score text in nats per character."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edgeinfer.arrays import brief
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError, WrongTaskError
from edgeinfer.preprocess.text import CharTokenizer
from edgeinfer.spec import CharInput
from edgeinfer.stream import Stream

DEFAULT_TEMPERATURE = 0.8  # the API's and the CLI's default
SCORE_BATCH = 256  # texts stepped together by score_texts
TOO_SHORT = "text too short to score; expected at least two characters"


@dataclass(frozen=True)
class ScoreResults:
    """What a chunk of texts scored, in input order."""

    nats: np.ndarray  # (N,) float64 nats per character; NaN for the texts that could not be scored
    chars: np.ndarray  # (N,) characters in each text
    errors: dict[int, str]  # index -> why that text could not be scored (one line)


def char_tokenizer(model: LoadedModel) -> CharTokenizer:
    """The character tokenizer a characters model's spec defines."""
    try:
        return CharTokenizer(model.spec.require_input(CharInput))
    except WrongTaskError:
        raise InputError(f"{model.source}: a model that reads {model.spec.input.kind}; "
                         "expected a characters model") from None


def generate(model: LoadedModel, prompt: str, max_chars: int, temperature: float = DEFAULT_TEMPERATURE,
             top_k: int = 0, seed: int | None = None, stream: Stream | None = None) -> Iterator[str]:
    """Yield up to `max_chars` characters continuing `prompt`, one per step, as they are produced.

    temperature 0 means greedy (always the most likely character); otherwise logits are divided
    by the temperature and, with top_k > 0, sampling keeps the k most likely characters. The
    same seed gives the same text. Padding and unknown are never produced. Pass `stream` to
    continue (and keep) a stream of your own; its prompt is then optional.
    """
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be text (a string), got {type(prompt).__name__}")
    if type(max_chars) is not int or max_chars < 1:
        raise InputError(f"max_chars must be a whole number >= 1, got {brief(max_chars)}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            0 <= float(temperature) < math.inf):
        raise InputError(f"temperature must be a finite number >= 0, got {brief(temperature)}")
    if type(top_k) is not int or top_k < 0:
        raise InputError(f"top_k must be a whole number >= 0, got {brief(top_k)}")
    tok = char_tokenizer(model)
    if seed is not None and (type(seed) is not int or seed < 0):
        raise InputError(f"seed must be an integer >= 0, got {brief(seed)}")
    s = stream if stream is not None else Stream(model)
    if prompt:
        s.feed(np.array(tok.encode(prompt), np.int64))
    if s.logits is None:
        raise InputError("an empty prompt; expected at least one character to start from")
    rng = np.random.default_rng(seed)
    special = [tok.spec.pad_id, tok.spec.unk_id]
    for _ in range(max_chars):
        now = s.logits
        assert now is not None  # set by the prompt, then by every step
        logits = now[0].astype(np.float64)
        logits[special] = -np.inf
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


def char_losses(model: LoadedModel, text: str) -> np.ndarray:
    """The loss of predicting each character from those before it, in nats, in one stream. # (len - 1,)"""
    if not isinstance(text, str):
        raise InputError(f"expected text (a string), got {type(text).__name__}")
    tok = char_tokenizer(model)
    ids = tok.encode(text)
    if len(ids) < 2:
        raise InputError("text too short to score; expected at least two characters")
    s = Stream(model)
    losses = np.empty(len(ids) - 1)
    for k, (now, nxt) in enumerate(itertools.pairwise(ids)):
        s.step(now)
        after = s.logits
        assert after is not None  # set by the step
        logits = after[0].astype(np.float64)
        top = logits.max()
        losses[k] = top + math.log(np.exp(logits - top).sum()) - logits[nxt]
    return losses


def score(model: LoadedModel, text: str) -> float:
    """Average loss of predicting each character from those before it, in nats per character."""
    return float(char_losses(model, text).mean())


def score_texts(model: LoadedModel, texts: Sequence[str], batch: int = SCORE_BATCH) -> ScoreResults:
    """`score` for many texts at once: the bulk path. # (N,) nats per character

    Texts are sorted by length (longest first) and stepped `batch` at a time through the step
    graph on every core, each row leaving the batch after its last character, so no step is
    spent on padding. Equal to `score` of each text within float rounding (an int8 LSTM
    quantizes each step's inputs with one scale per batch, so its results move slightly with
    the batch mates). A text of fewer than two characters is an error for that text only.
    """
    tok = char_tokenizer(model)
    if type(batch) is not int or batch < 1:
        raise InputError(f"batch must be a whole number >= 1, got {brief(batch)}")
    spec, io = model.spec, model.spec.io
    n = len(texts)
    nats = np.full(n, np.nan)
    chars = np.array([len(t) for t in texts], np.int64)
    errors = {i: TOO_SHORT for i in range(n) if chars[i] < 2}
    order = sorted((i for i in range(n) if i not in errors), key=lambda i: -chars[i])
    names = [s.name for s in spec.state]
    outputs = [io.output, *spec.state_outputs]
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        lengths = [int(chars[i]) for i in rows]  # longest first
        x = np.full((len(rows), lengths[0]), tok.spec.pad_id, np.int64)
        for r, i in enumerate(rows):
            x[r, : lengths[r]] = tok.encode(texts[i])
        state = spec.initial_state(len(rows))
        total = np.zeros(len(rows))
        active = len(rows)
        for t in range(lengths[0] - 1):
            while lengths[active - 1] - 1 <= t:  # rows whose last character was read at t leave
                active -= 1
            feeds = {io.step_input: np.ascontiguousarray(x[:active, t]),
                     **{k: np.ascontiguousarray(v[:, :active]) for k, v in state.items()}}
            got = model.run("batch_step", outputs, feeds)
            state = dict(zip(names, got[1:], strict=True))
            logits = got[0].astype(np.float64)
            top = logits.max(axis=1)
            lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
            total[:active] += lse - logits[np.arange(active), x[:active, t + 1]]
        nats[rows] = total / (np.array(lengths) - 1)
    return ScoreResults(nats, chars, errors)


__all__ = ["DEFAULT_TEMPERATURE", "SCORE_BATCH", "TOO_SHORT", "ScoreResults", "char_losses", "char_tokenizer",
           "generate", "score", "score_texts"]
