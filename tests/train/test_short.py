"""Short training texts and negation flips (train.short, issue 17)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.preprocess.text import words
from train.critic import critic
from train.short import MAX_SHORT_WORDS, contradicts, negate, sentences, short_texts

KNOWN = frozenset(["like", "love", "enjoy", "recommend", "hate", "watch", "want", "it", "movie", "the", "good",
                   "bad", "food"])


@pytest.mark.parametrize("text,negated", [
    ("The food was good.", "the food was not good"),
    ("It is not bad.", "it is bad"),
    ("I liked it.", "i didn't like it"),
    ("I recommend it", "i don't recommend it"),
    ("She loves it", "she doesn't love it"),
    ("I don't like it.", "i do like it"),
    ("good", "not good"),
    ("not great", None),  # "not" without a verb before it: no rule takes it out
    ("Great acting but a weak plot.", None),  # a contrast: one negation does not turn it over
    ("It was not good and never fun.", None),  # two negations
    ("A film that runs for two hours and then some and then a little more and more and more.", None),  # too long
])
def test_negate(text: str, negated: str | None) -> None:
    rng = np.random.default_rng(1)  # 0.5 draws: 'was' -> 'was not' with this seed
    got = negate(words(text), KNOWN, rng)
    assert (" ".join(got) if got is not None else None) == negated


def test_contractions_are_one_of_two_forms() -> None:
    forms = {" ".join(negate(["it", "is", "good"], KNOWN, np.random.default_rng(s)) or []) for s in range(20)}
    assert forms == {"it is not good", "it isn't good"}


def test_sentences_read_breaks_as_spaces() -> None:
    assert sentences("Loved it!<br /><br />The end. Really? yes") == ["Loved it!", "The end.", "Really?", "yes"]


def test_short_texts_labels_counts_and_flips() -> None:
    reviews = ["The food was good. I liked it. We left early.", "It is not bad.<br />Bad acting though."]
    texts, labels, flips = short_texts(reviews, [1, 0], per_review=6, flip=True, seed=0, known=KNOWN)
    assert len(texts) == 12 + flips and flips > 0
    assert all(0 < len(t) <= MAX_SHORT_WORDS for t in texts)
    # every flip follows its original with the other label
    pairs = [(texts[i], labels[i], texts[i + 1], labels[i + 1]) for i in range(len(texts) - 1)
             if negate(texts[i], KNOWN, np.random.default_rng(0)) is not None and labels[i] != labels[i + 1]]
    assert pairs
    again = short_texts(reviews, [1, 0], per_review=6, flip=True, seed=0, known=KNOWN)
    assert again == (texts, labels, flips)  # deterministic for a seed
    plain = short_texts(reviews, [1, 0], per_review=6, flip=False, seed=0, known=KNOWN)
    assert plain[2] == 0 and len(plain[0]) == 12 and set(plain[1]) == {0, 1}


@pytest.mark.parametrize("polarity,label,contradicted", [
    (-0.6, 1, True), (-0.05, 1, True), (-0.04, 1, False), (0.0, 1, False), (0.9, 1, False),
    (0.6, 0, True), (0.05, 0, True), (0.04, 0, False), (0.0, 0, False), (-0.9, 0, False),
])
def test_contradicts_outside_the_neutral_band(polarity: float, label: int, contradicted: bool) -> None:
    assert contradicts(polarity, label) is contradicted


def test_a_critic_leaves_out_the_texts_it_contradicts_with_their_flips() -> None:
    reviews = ["The plot was AWFUL.", "It is not bad.", "The food was good.", "The acting was awful."]
    seen: list[str] = []

    def critic(text: str) -> float:  # a stand-in: "awful" reads negative, "good" and "not bad" positive
        seen.append(text)
        low = text.lower()
        return -0.8 if "awful" in low else 0.7 if "good" in low or "not bad" in low else 0.0

    texts, labels, flips = short_texts(reviews, [1, 0, 1, 0], per_review=2, flip=True, seed=0, known=KNOWN,
                                       critic=critic)
    assert seen == [r for r in reviews for _ in range(2)]  # every draw judged, as written
    # the positive review's "awful" and the negative review's "not bad" are left out with their flips
    got = {(" ".join(t), y) for t, y in zip(texts, labels, strict=True)}
    assert {t for t, _ in got} <= {"the food was good", "the food was not good", "the food wasn't good",
                                   "the acting was awful", "the acting was not awful", "the acting wasn't awful"}
    assert ("the food was good", 1) in got and ("the acting was awful", 0) in got
    assert all(y == (1 if ("good" in t) != ("not" in t or "wasn't" in t) else 0) for t, y in got)
    assert len(texts) == 8 and flips == 4
    plain, _, _ = short_texts(reviews, [1, 0, 1, 0], per_review=2, flip=True, seed=0, known=KNOWN)
    assert {"the plot was awful", "it is not bad"} <= {" ".join(t) for t in plain}  # drawn without the critic


def test_the_vader_critic_reads_negation_and_refuses_unknown_names() -> None:
    vader = critic("vader")
    assert vader("the acting was not bad") > 0.05 > -0.05 > vader("the acting was bad")
    assert -0.05 < vader("the meeting is at noon") < 0.05
    with pytest.raises(ValueError, match="unknown critic 'lexicon'"):
        critic("lexicon")
