"""The public API walked with wrong argument values: every one is an EdgeInferError subclass
with a message, never a plain ValueError, TypeError, KeyError or IndexError."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import edgeinfer


def _cases() -> list[tuple[str, Callable[[], Any]]]:
    digits, sentiment, chars, motions = (edgeinfer.load(n) for n in ("digits", "sentiment", "characters", "motions"))
    text = sentiment.text_stream()
    text.feed("a good film ")
    row = np.zeros(28, np.float32)
    return [
        ("load(123)", lambda: edgeinfer.load(123)),  # type: ignore[arg-type]
        ("load(None)", lambda: edgeinfer.load(None)),  # type: ignore[arg-type]
        ("load('')", lambda: edgeinfer.load("")),
        ("load(nope)", lambda: edgeinfer.load("nope")),
        ("load(threads=-1)", lambda: edgeinfer.load("digits", intra_op_threads=-1)),
        ("load(providers=42)", lambda: edgeinfer.load("digits", providers=42)),  # type: ignore[arg-type]
        ("digits.predict(text)", lambda: digits.predict("seven")),
        ("digits.predict(None)", lambda: digits.predict(None)),
        ("digits.predict(wrong shape)", lambda: digits.predict(np.zeros((1, 28, 27), np.float32))),
        ("digits.predict(NaN)", lambda: digits.predict(np.full((1, 28, 28), np.nan, np.float32))),
        ("sentiment.predict(ids of strings)", lambda: sentiment.predict([["a"]])),
        ("sentiment.predict([None])", lambda: sentiment.predict([None])),
        ("motions.predict(dict)", lambda: motions.predict({"x": 1})),
        ("stream(batch=0)", lambda: digits.stream(0)),
        ("stream(batch='2')", lambda: digits.stream("2")),  # type: ignore[arg-type]
        ("step(str)", lambda: digits.stream().step("row")),
        ("step(None)", lambda: digits.stream().step(None)),
        ("step(short row)", lambda: digits.stream().step(row[:5])),
        ("step(token out of range)", lambda: sentiment.stream().step(10**9)),
        ("step(bool)", lambda: sentiment.stream().step(True)),
        ("feed(empty)", lambda: digits.stream().feed(np.zeros((0, 28), np.float32))),
        ("probabilities before a step", lambda: digits.stream().probabilities),
        ("restore(garbage)", lambda: digits.stream().restore(b"not a snapshot")),
        ("restore(int)", lambda: digits.stream().restore(5)),  # type: ignore[arg-type]
        ("early_exit(threshold 0)", lambda: digits.early_exit(np.zeros((28, 28), np.float32), 0.0)),
        ("early_exit(threshold str)", lambda: digits.early_exit(np.zeros((28, 28), np.float32), "0.9")),
        ("text_stream on digits", lambda: digits.text_stream().feed("x")),
        ("text.probability('pos')", lambda: text.probability("pos")),
        ("text.probability(3)", lambda: text.probability(3)),  # type: ignore[arg-type]
        ("text.feed(bytes)", lambda: text.feed(b"abc")),  # type: ignore[arg-type]
        ("generate(chars=-1)", lambda: edgeinfer.generate(chars, "A", -1)),
        ("generate(prompt=5)", lambda: edgeinfer.generate(chars, 5, 10)),  # type: ignore[arg-type]
        ("generate(temperature=-1)", lambda: edgeinfer.generate(chars, "A", 10, temperature=-1)),
        ("generate on digits", lambda: edgeinfer.generate(digits, "A", 10)),
        ("score(None)", lambda: edgeinfer.score(chars, None)),  # type: ignore[arg-type]
        ("score on sentiment", lambda: edgeinfer.score(sentiment, "text")),
        ("stream_batch.step(no streams)", lambda: digits.stream_batch().step([], np.zeros((0, 28), np.float32))),
    ]


CASES = _cases()


@pytest.mark.parametrize(("what", "call"), CASES, ids=[c[0] for c in CASES])
def test_wrong_argument_values_are_edgeinfer_errors(what: str, call: Callable[[], Any]) -> None:
    with pytest.raises(edgeinfer.EdgeInferError) as info:
        result = call()
        if hasattr(result, "__next__"):  # generators raise when iterated
            list(result)
    assert str(info.value).strip(), what
