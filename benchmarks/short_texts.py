"""A sentiment model on short texts: real text first (IMDB test reviews cut to their first sentence,
sentences rated by people), then the sets written for the project, and neutral greetings.

    python benchmarks/short_texts.py [--model sentiment|PATH.onnx] [--data DIR] [--rated SDIST]

Real text (what a model is chosen by):
- IMDB first sentence: all 25,000 test reviews, each cut to its first sentence (`<br />` tags
  replaced by spaces, then up to and including the first `.`, `!` or `?` that a space follows; the
  whole review when there is none) and read alone; a first sentence without any word the tokenizer
  reads (a review opening with "...") is scored as wrong, and counted; and the reviews read whole;
- rated sentences: the human-rated sentence sets of the VADER paper (Hutto and Gilbert 2014; each
  text's mean rating from at least 20 people, -4..4), shipped in the vaderSentiment 3.3.2 source
  distribution (MIT; `tests.datasets.rated_sentences`): movie-review sentences (Pang and Lee's
  reviews), product-review sentences (Hu and Liu's Amazon reviews), tweets and New York Times
  editorial sentences, each text whose mean rating is at least 1 from neutral, labelled by its
  sign. Without the sdist these rows are left out with a line saying how to get it.

Written for the project (the sets the composed texts' frames were written beside): each is
reported whole, on its texts apart from the generator (no composed text within one word of them,
tests/data/generated_register.jsonl; a pair when neither member is near), which is its figure,
and on the others, a behaviour check in the generator's own register that decides nothing:

- challenge: tests/data/sentiment_challenge.jsonl (336 short texts written for the project,
  product, movie, restaurant and service; plain, negation, contrast, intensifier), accuracy overall,
  per kind, per domain and per label;
- pairs: tests/data/negation_pairs.jsonl (50 minimal pairs, "good" / "not good", "bad" / "not bad"):
  the share of pairs with both members right, and each side alone;
- dev, dev pairs: tests/data/sentiment_dev.jsonl and negation_pairs_dev.jsonl (240 texts and 40
  pairs written apart from the two above), the same way;
- greetings: the mean probability of positive on a few neutral texts (0.5 would be neutral).

Prints a markdown table. Runtime only (numpy, onnxruntime): runs where the tests run.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer
from edgeinfer.tasks.sentiment import classify_texts, tokenizer
from tests import datasets

TESTS_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
CHALLENGE = TESTS_DATA / "sentiment_challenge.jsonl"
PAIRS = TESTS_DATA / "negation_pairs.jsonl"
DEV = TESTS_DATA / "sentiment_dev.jsonl"
DEV_PAIRS = TESTS_DATA / "negation_pairs_dev.jsonl"
REGISTER = TESTS_DATA / "generated_register.jsonl"
KINDS = ("plain", "negation", "contrast", "intensifier")
DOMAINS = ("product", "movie", "restaurant", "service")
GREETINGS = ("Hello.", "Hi there!", "Good morning.", "Thank you.", "See you tomorrow.", "How are you?",
             "The meeting is at noon.", "Here is the document you asked for.")

BREAK_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
SENTENCE_END_RE = re.compile(r"[.!?](?= )")


def read_jsonl(path: Path) -> list[dict[str, str]]:
    """One JSON object per non-blank line."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def first_sentence(review: str) -> str:
    """`<br />` tags become spaces; then the text up to and including the first `.`, `!` or `?`
    followed by a space (the whole review when there is none), stripped."""
    text = BREAK_RE.sub(" ", review).strip()
    end = SENTENCE_END_RE.search(text)
    return text[: end.end()].strip() if end else text


def positive_probability(model: edgeinfer.Model, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """P(positive) of each text read alone (NaN for a text without words) and a mask of the texts read."""
    got = classify_texts(model, list(texts))
    p = got.probabilities[:, model.spec.labels.index("positive")].astype(np.float64)
    read = np.ones(len(texts), bool)
    read[list(got.errors)] = False
    p[~read] = np.nan
    return p, read


def correct(p_positive: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Right answers (argmax of two classes: positive when P(positive) > 0.5); NaN counts as wrong."""
    said = np.where(p_positive > 0.5, "positive", "negative")
    return (said == np.array(labels)) & ~np.isnan(p_positive)


def near_composed(path: Path) -> set[int]:
    """The lines (from 0) of an evaluation set with a text near a composed one: the generator's
    register (tests/data/generated_register.jsonl, written by `python -m train.overlap`)."""
    return {int(r["line"]) for r in read_jsonl(REGISTER) if r["set"] == path.name}


def challenge_rows(model: edgeinfer.Model, path: Path = CHALLENGE, section: str = "challenge"
                   ) -> list[tuple[str, str, int, float]]:
    """(section, name, count, accuracy) on the challenge set (or the dev set): all of it, its texts
    apart from the generator (no composed text within one word: the figure), per kind, domain and
    label of those, and its texts in the generator's register (a behaviour check, not a figure)."""
    rows = read_jsonl(path)
    p, _ = positive_probability(model, [r["text"] for r in rows])
    right = correct(p, [r["label"] for r in rows])
    near = np.array([i in near_composed(path) for i in range(len(rows))])
    out = [(section, "all", len(rows), float(right.mean())),
           (section, "apart from the generator", int((~near).sum()), float(right[~near].mean())),
           (section, "generator's register (behaviour)", int(near.sum()), float(right[near].mean()))]
    for field, names in (("kind", KINDS), ("domain", DOMAINS), ("label", ("positive", "negative"))):
        for name in names:
            pick = np.array([r[field] == name for r in rows]) & ~near
            out.append((f"{section} apart, {field}", name, int(pick.sum()), float(right[pick].mean())))
    return out


def pairs_rows(model: edgeinfer.Model, path: Path = PAIRS, section: str = "pairs"
               ) -> list[tuple[str, str, int, float]]:
    """(section, name, count, accuracy) on the negation pairs: both members right, of all pairs, of
    the pairs with neither member in the generator's register (the figure) and of the others;
    each side alone."""
    pairs = read_jsonl(path)
    plain = correct(positive_probability(model, [q["plain"] for q in pairs])[0], [q["plain_label"] for q in pairs])
    negated = correct(positive_probability(model, [q["negated"] for q in pairs])[0],
                      [q["negated_label"] for q in pairs])
    both = plain & negated
    near = np.array([i in near_composed(path) for i in range(len(pairs))])
    out = [(section, "both right", len(pairs), float(both.mean())),
           (section, "both right, apart from the generator", int((~near).sum()),
            float(both[~near].mean()) if (~near).any() else float("nan")),
           (section, "both right, generator's register (behaviour)", int(near.sum()), float(both[near].mean())),
           (section, "plain member", len(pairs), float(plain.mean())),
           (section, "negated member", len(pairs), float(negated.mean()))]
    return out


def imdb_rows(model: edgeinfer.Model, data: Path | None) -> tuple[list[tuple[str, str, int, float]], str]:
    """Accuracy on the IMDB test reviews read whole and cut to their first sentence, and a note
    on the first sentences' length."""
    reviews, labels = datasets.imdb_test(data)
    names = np.array(["negative", "positive"])[labels]
    firsts = [first_sentence(r) for r in reviews]
    p_first, read = positive_probability(model, firsts)
    p_whole, _ = positive_probability(model, reviews)
    words = np.array([len(s.split()) for s in firsts])
    tok = tokenizer(model)
    tokens = np.array([len(tok.words(s)) for s in firsts])
    note = (f"IMDB first sentences: {words.mean():.1f} words on average (whitespace-separated; "
            f"{tokens.mean():.1f} tokenizer tokens), median {int(np.median(words))}; "
            f"{int((~read).sum())} without a word (scored wrong); "
            f"mean P(positive) {np.nanmean(p_first):.3f} (whole reviews {p_whole.mean():.3f})")
    right = correct(p_first, names)
    out = [("IMDB test", "whole reviews", len(reviews), float(correct(p_whole, names).mean())),
           ("IMDB test", "first sentence", len(reviews), float(right.mean()))]
    for label in ("positive", "negative"):
        pick = names == label
        out.append(("IMDB test", f"first sentence, {label} reviews", int(pick.sum()), float(right[pick].mean())))
    return out, note


def rated_rows(model: edgeinfer.Model, sdist: Path | None) -> list[tuple[str, str, int, float]]:
    """Accuracy on each human-rated sentence set (`tests.datasets.rated_sentences`), overall and by label."""
    out = []
    for name, (texts, labels) in datasets.rated_sentences(sdist).items():
        names = np.array(["negative", "positive"])[labels]
        right = correct(positive_probability(model, texts)[0], names)
        out.append((f"rated {name}", "all", len(texts), float(right.mean())))
        for label in ("positive", "negative"):
            pick = names == label
            out.append((f"rated {name}", label, int(pick.sum()), float(right[pick].mean())))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="sentiment", help="built-in name or .onnx path (default: sentiment)")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: $EDGEINFER_DATA or ../shared/data)")
    ap.add_argument("--rated", type=Path, default=None,
                    help="the vaderSentiment 3.3.2 sdist holding the human-rated sentences (default: "
                         f"${datasets.VADER_SDIST_ENV}, ~/.cache/edgeinfer/, DATA/vader/)")
    args = ap.parse_args(argv)
    model = edgeinfer.load(args.model)
    rows, note = imdb_rows(model, args.data)
    try:
        rows += rated_rows(model, args.rated)
    except FileNotFoundError as exc:
        print(f"rated sentences left out: {exc}", file=sys.stderr)
    rows += challenge_rows(model) + pairs_rows(model) + challenge_rows(model, DEV, "dev") + pairs_rows(
        model, DEV_PAIRS, "dev pairs")
    greet, _ = positive_probability(model, GREETINGS)
    print(f"model: {model.source}\n")
    print("| text | set | subset | n | accuracy |\n|---|---|---|---:|---:|")
    for section, name, count, acc in rows:
        source = "real" if section.startswith(("IMDB", "rated")) else "written"
        print(f"| {source} | {section} | {name} | {count} | {100 * acc:.1f}% |")
    print(f"| written | greetings | mean P(positive) | {len(GREETINGS)} | {greet.mean():.3f} |")
    print(f"\n{note}\n")
    print("| greeting | P(positive) |\n|---|---:|")
    for text, p in zip(GREETINGS, greet, strict=True):
        print(f"| {text} | {p:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
