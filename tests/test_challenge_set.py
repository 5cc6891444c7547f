"""The short-text sets of issue 17 (tests/data/README.md): their shape, and the built-in sentiment
model's accuracy on them kept from getting worse.

Runtime only (no torch, no train/); benchmarks/short_texts.py prints the full table.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgeinfer import Model
from edgeinfer.preprocess.text import words

DATA = Path(__file__).resolve().parent / "data"
LABELS = ("positive", "negative")
DOMAINS = ("product", "movie", "restaurant", "service")
KINDS = ("plain", "negation", "contrast", "intensifier")
MAX_WORDS = 30  # short texts: 1 to about 25 words
NEGATIONS = {"not", "no", "never", "nothing", "nobody", "none", "hardly"}  # and every "...n't"

# The built-in sentiment model (GRU-128 + n-grams on whole IMDB reviews, with a short-text branch:
# two GRU-128 branches averaged, trained on short texts of the training reviews and on texts
# composed from sentiment lexicons and expectation phrases, issue 17) measures 91.4% on the
# challenge set (307 of 336; the previous built-in 85.7%, without the branch 78.9%), 94.0% of the
# negation pairs with both members right (47 of 50; 90.0%, 32.0%), and on the dev set 87.5% (210
# of 240; 82.1%, 73.8%) and 85.0% of its pairs (34 of 40; 85.0%, 27.5%). The floors sit under
# that, so the tests fail if the model gets worse: the challenge set and the pairs at issue 17's
# target (90%: 303 of 336, 45 of 50; the pairs 2 pairs under, since one pair is 2 points and a
# borderline pair may flip on another CPU's kernels), the dev set 2.5 points under, its pairs 2
# pairs under.
BASELINE_CHALLENGE = 0.90
BASELINE_PAIRS = 0.90
BASELINE_DEV = 0.85
BASELINE_DEV_PAIRS = 0.80


def read_jsonl(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def has_word(text: str) -> bool:
    """At least one word the tokenizer reads (a token of letters or digits, not only `!` or `?`)."""
    return any(token[0].isalnum() for token in words(text))


def normalized(text: str) -> str:
    """A text as the tokenizer reads it: case and punctuation aside."""
    return " ".join(words(text))


def negations(text: str) -> int:
    """How many negation words a text has."""
    return sum(token in NEGATIONS or token.endswith("n't") for token in words(text))


@pytest.fixture(scope="module")
def challenge() -> list[dict[str, str]]:
    return read_jsonl("sentiment_challenge.jsonl")


@pytest.fixture(scope="module")
def pairs() -> list[dict[str, str]]:
    return read_jsonl("negation_pairs.jsonl")


@pytest.fixture(scope="module")
def dev() -> list[dict[str, str]]:
    return read_jsonl("sentiment_dev.jsonl")


@pytest.fixture(scope="module")
def dev_pairs() -> list[dict[str, str]]:
    return read_jsonl("negation_pairs_dev.jsonl")


@pytest.fixture(scope="module")
def sentiment() -> Model:
    return Model("sentiment")


def check_short_set(rows: list[dict[str, str]]) -> None:
    """A set of labelled short texts: fields, balance, a third or more not plain, no repeats."""
    for row in rows:
        assert set(row) == {"text", "label", "domain", "kind"}, row
        assert row["label"] in LABELS and row["domain"] in DOMAINS and row["kind"] in KINDS, row
        assert isinstance(row["text"], str) and row["text"] == row["text"].strip(), row
        assert has_word(row["text"]) and len(row["text"].split()) <= MAX_WORDS, row
    labels = Counter(row["label"] for row in rows)
    assert labels["positive"] == labels["negative"] == len(rows) // 2  # exactly balanced
    assert set(Counter(row["domain"] for row in rows)) == set(DOMAINS)
    hard = sum(row["kind"] != "plain" for row in rows)
    assert 3 * hard >= len(rows)  # at least a third: negation, contrast or intensifier
    texts = Counter(normalized(row["text"]) for row in rows)
    assert [t for t, n in texts.items() if n > 1] == []


def test_challenge_set_is_well_formed(challenge) -> None:
    assert len(challenge) >= 320
    check_short_set(challenge)


def test_dev_set_is_well_formed_and_apart_from_the_challenge_set(challenge, dev, pairs, dev_pairs) -> None:
    assert len(dev) == 240 and len(dev_pairs) == 40
    check_short_set(dev)
    check_pairs(dev_pairs)
    assert {normalized(r["text"]) for r in dev} & {normalized(r["text"]) for r in challenge} == set()
    shown = {normalized(p[k]) for p in pairs for k in ("plain", "negated")} | {normalized(r["text"]) for r in challenge}
    assert {normalized(p[k]) for p in dev_pairs for k in ("plain", "negated")} & shown == set()


def test_negation_pairs_are_well_formed(pairs) -> None:
    assert len(pairs) >= 40
    check_pairs(pairs)


def check_pairs(pairs: list[dict[str, str]]) -> None:
    """Minimal pairs: a text and the same text with one more negation, of opposite labels."""
    for pair in pairs:
        assert set(pair) == {"plain", "plain_label", "negated", "negated_label"}, pair
        assert {pair["plain_label"], pair["negated_label"]} == set(LABELS), pair  # negation flips the label
        assert has_word(pair["plain"]) and has_word(pair["negated"]), pair
        assert negations(pair["negated"]) > negations(pair["plain"]), pair  # the plain text, negated
    assert {pair["plain_label"] for pair in pairs} == set(LABELS)  # both directions ("good", "bad")
    texts = [normalized(p[k]) for p in pairs for k in ("plain", "negated")]
    assert len(set(texts)) == len(texts)


def right(model: Model, texts: list[str], labels: list[str]) -> np.ndarray:
    """Whether the model's top class is each text's label."""
    predicted = np.array(model.spec.labels)[model.predict(texts).argmax(1)]
    return predicted == np.array(labels)


def test_builtin_sentiment_on_the_challenge_set(sentiment, challenge) -> None:
    accuracy = float(right(sentiment, [r["text"] for r in challenge], [r["label"] for r in challenge]).mean())
    assert accuracy >= BASELINE_CHALLENGE, f"{accuracy:.3f} on the challenge set"


def test_builtin_sentiment_on_the_dev_set(sentiment, dev) -> None:
    accuracy = float(right(sentiment, [r["text"] for r in dev], [r["label"] for r in dev]).mean())
    assert accuracy >= BASELINE_DEV, f"{accuracy:.3f} on the dev set"


def pairs_right(model: Model, pairs: list[dict[str, str]]) -> float:
    """The share of pairs with both members right."""
    plain = right(model, [p["plain"] for p in pairs], [p["plain_label"] for p in pairs])
    negated = right(model, [p["negated"] for p in pairs], [p["negated_label"] for p in pairs])
    return float((plain & negated).mean())


def test_builtin_sentiment_on_the_negation_pairs(sentiment, pairs) -> None:
    both = pairs_right(sentiment, pairs)
    assert both >= BASELINE_PAIRS, f"{both:.3f} of the pairs with both members right"


def test_builtin_sentiment_on_the_dev_pairs(sentiment, dev_pairs) -> None:
    both = pairs_right(sentiment, dev_pairs)
    assert both >= BASELINE_DEV_PAIRS, f"{both:.3f} of the dev pairs with both members right"
