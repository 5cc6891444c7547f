"""Short training texts cut from the labelled reviews, and their negated counterparts (issue 17).

A model trained on whole reviews only has never read a text of one sentence, and it learns that
"not" is a negative word (in IMDB it mostly is): "not bad" comes out negative. Two additions to
the training data teach it short texts and what a negation does:

- **Short texts**: sentences and windows of two or three sentences of each training review,
  labelled with the review's label (distant supervision: a sentence of a positive review is
  more often positive than not, and a neutral sentence is seen with both labels).
- **Negation flips** (counterfactual augmentation): a short text with one clear place to negate
  ("the food was good" -> "the food wasn't good" / "was not good"; "i liked it" -> "i didn't
  like it"; "i recommend it" -> "i don't recommend it") or to take a negation out ("it is not
  bad" -> "it is bad"; "i don't like it" -> "i do like it") is added a second time, negated,
  with the opposite label. Nothing decides which words are positive: the flip only states that
  a negation turns the text's label over, whatever the label was, so the model must learn the
  words' polarity from the reviews and the negation's effect from the pairs.

Rules work on the tokenizer's words (lower-cased; "didn't" is one word). Only texts of at most
`MAX_FLIP_WORDS` words with no contrast word ("but", "though"...) and at most one negation are
flipped: in a longer or contrasted text one negation does not turn the whole text over.
Deterministic for a seed. Never reads the test split: it is given training reviews.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from edgeinfer.preprocess.text import words

MAX_SHORT_WORDS = 40  # a short text has 1 to 40 words
MAX_FLIP_WORDS = 16
CRITIC_NEUTRAL = 0.05  # VADER's own neutral band: |compound| < 0.05
BREAK_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
CONTRAST = frozenset({"but", "though", "although", "however", "yet", "except", "whereas", "while", "despite"})
# be/have/modal verbs: the word after them is negated by "not", or they take "n't"
CONTRACT = {"is": "isn't", "was": "wasn't", "are": "aren't", "were": "weren't", "do": "don't",
            "does": "doesn't", "did": "didn't", "can": "can't", "could": "couldn't", "will": "won't",
            "would": "wouldn't", "should": "shouldn't", "has": "hasn't", "have": "haven't", "had": "hadn't",
            "must": "mustn't"}
UNCONTRACT = {v: k for k, v in CONTRACT.items()} | {"ain't": "is", "cannot": "can", "dont": "do",
                                                    "didnt": "did", "doesnt": "does", "isnt": "is",
                                                    "wasnt": "was", "cant": "can", "wont": "will"}
BE = frozenset({"is", "was", "are", "were", "am", "be"})
SUBJECTS = {"i": "do", "we": "do", "you": "do", "they": "do", "he": "does", "she": "does", "it": "does"}
NEGATIONS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "hardly", "without"})


def is_negation(word: str) -> bool:
    """A negation word ("not", "never"...) or a contraction with "n't"."""
    return word in NEGATIONS or word.endswith("n't") or word in UNCONTRACT


def sentences(review: str) -> list[str]:
    """A review's sentences (`<br />` tags read as spaces; cut after `.`, `!` or `?` before a space)."""
    text = BREAK_RE.sub(" ", review).strip()
    return [s for s in SENTENCE_RE.split(text) if s]


def _verb_stem(word: str, known: frozenset[str]) -> str | None:
    """The base form of a past ("liked", "enjoyed") or third-person ("loves") verb, when it is a
    known word; None otherwise."""
    if word.endswith("ed") and len(word) > 4:
        for stem in (word[:-1], word[:-2], word[:-3]):  # liked -> like, enjoyed -> enjoy, stopped -> stop
            if stem in known and stem not in BE:
                return stem
    if word.endswith("s") and len(word) > 3 and word[:-1] in known:
        return word[:-1]
    return None


def _take_out(tokens: Sequence[str], i: int) -> list[str] | None:
    """The text without its negation at i ("is not bad" -> "is bad", "don't" -> "do"), or None."""
    word = tokens[i]
    if word == "not" and i > 0 and (tokens[i - 1] in CONTRACT or tokens[i - 1] in BE):
        return [*tokens[:i], *tokens[i + 1:]]
    if word in UNCONTRACT:
        return [*tokens[:i], UNCONTRACT[word], *tokens[i + 1:]]
    return None


def _put_in(tokens: Sequence[str], known: frozenset[str], rng: np.random.Generator) -> list[str] | None:
    """The text negated at its first be/have/modal verb, or before the verb after a subject
    pronoun ("i liked it" -> "i didn't like it"), or a verbless phrase of up to 3 words with
    "not" in front; None when no rule applies."""
    out = list(tokens)
    for i, t in enumerate(tokens[:-1]):
        if t in CONTRACT or t in BE:
            if t in CONTRACT and rng.random() < 0.5:
                out[i] = CONTRACT[t]
            else:
                out.insert(i + 1, "not")
            return out
    if len(tokens) <= 3 and not any(t in SUBJECTS for t in tokens):  # "good" -> "not good"
        return ["not", *out]
    for i, t in enumerate(tokens[:-1]):
        if t not in SUBJECTS:
            continue
        verb = tokens[i + 1]
        stem = _verb_stem(verb, known)
        if stem is not None:
            return [*out[: i + 1], "didn't" if verb.endswith("ed") else "doesn't", stem, *out[i + 2:]]
        if verb in known and verb.isalpha() and SUBJECTS[t] == "do" and len(verb) > 2:
            return [*out[: i + 1], "don't", *out[i + 1:]]
        return None
    return None


def negate(tokens: Sequence[str], known: frozenset[str], rng: np.random.Generator) -> list[str] | None:
    """The text negated (no negation in it) or with its one negation taken out; None when no rule
    applies or the text is not one that a single negation turns over."""
    if not 0 < len(tokens) <= MAX_FLIP_WORDS or any(t in CONTRAST for t in tokens):
        return None
    negs = [i for i, t in enumerate(tokens) if is_negation(t)]
    if len(negs) > 1:
        return None
    return _take_out(tokens, negs[0]) if negs else _put_in(tokens, known, rng)


def contradicts(polarity: float, label: int) -> bool:
    """Whether a critic's polarity (-1 negative .. 1 positive) says the other label than `label`
    (1 positive, 0 negative), outside the neutral band (-CRITIC_NEUTRAL, CRITIC_NEUTRAL)."""
    return polarity <= -CRITIC_NEUTRAL if label == 1 else polarity >= CRITIC_NEUTRAL


def short_texts(reviews: Sequence[str], labels: Sequence[int], per_review: int, flip: bool, seed: int,
                known: frozenset[str], critic: Callable[[str], float] | None = None,
                ) -> tuple[list[list[str]], list[int], int]:
    """`per_review` short texts (words) of each review with its label: a sentence, or a window of
    two or three sentences, at most MAX_SHORT_WORDS words; with `flip`, each flippable one is
    followed by its negated counterpart with the other label; with a `critic` (a text's polarity in [-1, 1], see
    `train.critic`), a short text whose polarity contradicts its review's label (beyond the
    critic's neutral band) is left out, with its flip. Returns (texts, labels, flips)."""
    rng = np.random.default_rng(seed)
    out: list[list[str]] = []
    out_labels: list[int] = []
    flips = 0
    for review, label in zip(reviews, labels, strict=True):
        cut = [(s, words(s)) for s in sentences(review)]
        raw = [s for s, w in cut if w]  # the sentences as written, for the critic
        parts = [w for _, w in cut if w]
        if not parts:
            continue
        for _ in range(per_review):
            start = int(rng.integers(len(parts)))
            size = int(rng.choice((1, 1, 2, 3)))
            tokens = [t for p in parts[start: start + size] for t in p][:MAX_SHORT_WORDS]
            if critic is not None and contradicts(critic(" ".join(raw[start: start + size])), int(label)):
                continue
            negated = negate(tokens, known, rng) if flip else None
            out.append(tokens)
            out_labels.append(int(label))
            if negated is not None:
                out.append(negated)
                out_labels.append(1 - int(label))
                flips += 1
    return out, out_labels, flips
