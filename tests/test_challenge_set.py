"""The short-text sets of tests/data (tests/data/README.md): their shape.

The built-in sentiment model's accuracy on them, with its floors: benchmarks/accuracy.py (run by
the slow tier's tests/test_shipped_models.py); benchmarks/short_texts.py prints the full table.
Runtime only (no torch, no train/).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from edgeinfer.preprocess.text import words

DATA = Path(__file__).resolve().parent / "data"
LABELS = ("positive", "negative")
DOMAINS = ("product", "movie", "restaurant", "service")
KINDS = ("plain", "negation", "contrast", "intensifier")
MAX_WORDS = 30  # short texts: 1 to about 25 words
NEGATIONS = {"not", "no", "never", "nothing", "nobody", "none", "hardly"}  # and every "...n't"


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
