"""How near a text is to the composed ones (train.compose): the same words, or one word apart.

The composed texts are training data; the sets a model is measured on (tests/data) must not be
texts the generator writes, nor one word away from one, or a figure on them measures how well the
model learnt the generator's frames rather than how it reads people's sentences. Texts are
compared as word tuples: the tokenizer's words (lower-cased; "didn't" is one word) without
punctuation. Two texts are *near* when one word changed, added or taken out makes them equal
(a token-level edit distance of at most 1).

A generated text cannot be listed in full (about 82% of a million draws are new texts), so two
checks are made: the texts of a large fixed-seed sample, word for word; and their *skeletons*,
where every lexicon word (any form of a word train.compose may draw) stands for its part of
speech ("the staff was rude" and "the staff was friendly" are one skeleton, "the staff was JJ"):
an evaluation text whose skeleton is near a generated skeleton is one the generator's frames
write up to one word, whichever lexicon word was drawn.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from edgeinfer.atomic import write_atomic
from edgeinfer.preprocess.text import words

Words = tuple[str, ...]
GAP = "\0"  # stands for the changed word in a substitution key
UNKNOWN = "<unk>"  # a word outside the model's vocabulary, as train.compose writes it


def normalise(text: str | Sequence[str]) -> Words:
    """A text (or the tokenizer's words of one) as lower-cased words without punctuation
    (UNKNOWN stays)."""
    tokens = words(text.lower()) if isinstance(text, str) else [t.lower() for t in text]
    return tuple(t for t in tokens if t == UNKNOWN or any(c.isalnum() for c in t))


def _substitutions(text: Words) -> Iterator[Words]:
    for i in range(len(text)):
        yield (*text[:i], GAP, *text[i + 1:])


def _deletions(text: Words) -> Iterator[Words]:
    for i in range(len(text)):
        yield (*text[:i], *text[i + 1:])


def near(a: Words, b: Words) -> bool:
    """Whether `a` and `b` are equal or one word apart (changed, added or taken out)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(short == d for d in _deletions(long))


class NearIndex:
    """A fixed set of texts (the evaluation texts), each with a name, asked for the ones near a
    given text in time linear in its length (two dictionary look-ups per word)."""

    def __init__(self, texts: Mapping[str, Words]) -> None:
        self.exact: dict[Words, list[str]] = {}
        self.substituted: dict[Words, list[str]] = {}
        self.deleted: dict[Words, list[str]] = {}
        for name, text in texts.items():
            self.exact.setdefault(text, []).append(name)
            for key in _substitutions(text):
                self.substituted.setdefault(key, []).append(name)
            for key in _deletions(text):
                self.deleted.setdefault(key, []).append(name)

    def near(self, text: Words) -> set[str]:
        """The names of the indexed texts equal to `text` or one word from it."""
        got = set(self.exact.get(text, ()))
        got.update(self.deleted.get(text, ()))  # an indexed text with one word more
        for key in _substitutions(text):
            got.update(self.substituted.get(key, ()))
        for key in _deletions(text):  # an indexed text with one word less
            got.update(self.exact.get(key, ()))
        return got

    def matches(self, generated: Iterable[Words]) -> dict[str, Words]:
        """Each indexed text near one of `generated`, with the first generated text found near it."""
        found: dict[str, Words] = {}
        for text in generated:
            for name in self.near(text):
                found.setdefault(name, text)
        return found


def skeleton(text: Words, classes: Mapping[str, str], known: frozenset[str] | None = None) -> Words:
    """`text` with each word in `classes` (a lexicon word form -> its part of speech) replaced by
    its class and, given the model's words `known`, each other word as the model reads it (UNKNOWN
    when it is not one: "my kettle broke" is "my <unk> broke", as composed)."""
    return tuple(classes.get(t, t if known is None or t in known else UNKNOWN) for t in text)


# The evaluation sets (tests/data) and the fields of their texts.
EVAL_SETS = {"sentiment_challenge.jsonl": ("text",), "negation_pairs.jsonl": ("plain", "negated"),
             "sentiment_dev.jsonl": ("text",), "negation_pairs_dev.jsonl": ("plain", "negated")}
REGISTER = "generated_register.jsonl"  # the evaluation items near a composed text, written by main()
SAMPLE_COUNT = 1_000_000  # texts of each, for the register; a test draws the first few of the same texts


def eval_texts(folder: Path) -> dict[str, str]:
    """Every evaluation text by name, "SET:LINE:FIELD" (LINE from 0)."""
    out = {}
    for name, fields in EVAL_SETS.items():
        with (folder / name).open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        for i, row in enumerate(rows):
            for field in fields:
                out[f"{name}:{i}:{field}"] = row[field]
    return out


def lexicon_classes(vocab: Sequence[str]) -> dict[str, str]:
    """Every form of every word train.compose may draw in `vocab` -> its part of speech
    ("ADJ", "NOUN", "VERB"; a form of two takes the first)."""
    from train.compose import lexicon_polarity, lexicon_words

    out: dict[str, str] = {}
    for pos, got in lexicon_words(lexicon_polarity(), vocab).items():
        for word in got:
            for form in word.forms.values():
                out.setdefault(form, pos)
    return out


def recipe_samples() -> list[tuple[int, float]]:
    """(seed, share of expectations) of every composing stage of the built-in's recipe
    (train/recipes/sentiment.toml): the composed texts it trains on."""
    from train.configs import SHORT_SEED, SentimentConfig
    from train.recipe import load_recipe

    default = SentimentConfig().expectations
    return [(SHORT_SEED, float(s.options.get("expectations", default)))
            for s in load_recipe("sentiment").stages if s.options.get("compose")]


def composed_sample(vocab: Sequence[str], count: int) -> Iterator[Words]:
    """The first `count` composed texts of each of the recipe's samples (`recipe_samples`),
    normalised (a smaller count gives the first texts of a larger one: the draws do not depend on it)."""
    from train.compose import composed_texts

    for seed, share in recipe_samples():
        texts, _ = composed_texts(count, vocab, seed, function_share=share)
        for text in texts:
            yield normalise(text)


def register(texts: Mapping[str, str], vocab: Sequence[str], count: int) -> dict[str, tuple[str, str]]:
    """The evaluation `texts` near a composed text of the sample, by name: ("text", the composed
    text) when near it word for word, else ("skeleton", the composed text's skeleton)."""
    classes, known = lexicon_classes(vocab), frozenset(vocab)
    norm = {name: normalise(text) for name, text in texts.items()}
    by_text, by_skeleton = NearIndex(norm), NearIndex({k: skeleton(v, classes, known) for k, v in norm.items()})
    found: dict[str, tuple[str, str]] = {}
    seen: set[Words] = set()
    for text in composed_sample(vocab, count):
        for name in by_text.near(text):
            if found.get(name, ("",))[0] != "text":
                found[name] = ("text", " ".join(text))
        shape = skeleton(text, classes, known)
        if shape not in seen:
            seen.add(shape)
            for name in by_skeleton.near(shape):
                found.setdefault(name, ("skeleton", " ".join(shape)))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Write tests/data/generated_register.jsonl: the evaluation items near a composed text."""
    import argparse

    import edgeinfer
    from edgeinfer.spec import TextInput

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--count", type=int, default=SAMPLE_COUNT, help="composed texts of each sample")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "data")
    args = ap.parse_args(argv)
    texts = eval_texts(args.data)
    spec_input = edgeinfer.load("sentiment").spec.input
    assert isinstance(spec_input, TextInput)
    found = register(texts, spec_input.vocab, args.count)
    lines = []
    for name in sorted(found, key=lambda n: (list(EVAL_SETS).index(n.split(":")[0]), int(n.split(":")[1]),
                                             n.split(":")[2])):
        set_name, line, field = name.split(":")
        how, near_text = found[name]
        lines.append(json.dumps({"set": set_name, "line": int(line), "field": field, "text": texts[name],
                                 "how": how, "composed": near_text}) + "\n")
    write_atomic(args.data / REGISTER, "".join(lines).encode("utf-8"))
    print(f"{len(found)} of {len(texts)} evaluation texts near a composed text -> {args.data / REGISTER}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
