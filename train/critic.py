"""A critic for short training texts: a sentence's polarity from a rule-based sentiment lexicon.

Review labels are weak labels for a review's sentences: in IMDB, sentences with "not bad" come
from negative reviews 60% of the time ("the acting was not bad, but..."). The critic is a
second, independent opinion: VADER (Hutto & Gilbert, 2014; the `vaderSentiment` package, a
lexicon of about 7,500 words and phrases rated by people, with rules for negation, contrast,
intensifiers and capitals). `train.short` keeps a short text with its review's label only when
the critic does not contradict it; the critic never labels a text on its own.
"""
from __future__ import annotations

from collections.abc import Callable

CRITICS = ("vader",)


def critic(name: str) -> Callable[[str], float]:
    """The critic called `name`: a function from a text to its polarity in [-1, 1] (VADER's
    compound score). ValueError for an unknown name or when its package is missing."""
    if name not in CRITICS:
        raise ValueError(f"unknown critic {name!r}: use one of {', '.join(CRITICS)}")
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise ValueError("the vader critic needs the vaderSentiment package: pip install -e '.[train]'") from exc
    analyzer = SentimentIntensityAnalyzer()

    def polarity(text: str) -> float:
        return float(analyzer.polarity_scores(text)["compound"])

    return polarity
