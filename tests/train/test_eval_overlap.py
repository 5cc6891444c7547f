"""No evaluation text is a composed one, or one word from one (train.overlap).

The evaluation sets (tests/data) were written in the register the composer's frames write: an
evaluation text that the generator writes, or writes up to one word, measures the frames the model
was trained on, not how it reads people's sentences. Those texts are listed in
tests/data/generated_register.jsonl (written by `python -m train.overlap` from a million composed
texts of each of the built-in's two recipes) and reported apart, as a behaviour check
(benchmarks/short_texts.py); every other evaluation text must be far from every composed text.
"""
from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from train.overlap import (
    EVAL_SETS,
    REGISTER,
    UNKNOWN,
    NearIndex,
    eval_texts,
    lexicon_classes,
    near,
    normalise,
    register,
    skeleton,
)

DATA = Path(__file__).resolve().parents[1] / "data"
TEST_COUNT = 20_000  # composed texts of each recipe drawn here: the first of the register's million


def test_near_is_one_word_changed_added_or_taken_out() -> None:
    base = normalise("The printer never jams.")
    assert base == ("the", "printer", "never", "jams")
    assert near(base, normalise("the printer never jams!"))  # punctuation and case set aside
    assert near(base, normalise("The printer never leaks."))  # one word changed
    assert near(base, normalise("The printer jams."))  # one taken out
    assert near(base, normalise("The new printer never jams."))  # one added
    assert not near(base, normalise("The printer always leaks."))  # two changed
    assert not near(base, normalise("Printer jams."))  # two taken out
    assert not near(("good",), ("not", "very", "good"))


def test_the_index_finds_what_near_finds() -> None:
    rng = np.random.default_rng(0)
    vocab = ("a", "b", "c")
    texts = {f"t{i}": tuple(vocab[int(j)] for j in rng.integers(3, size=int(rng.integers(1, 5))))
             for i in range(60)}
    index = NearIndex(texts)
    for query in texts.values():
        assert index.near(query) == {name for name, text in texts.items() if near(query, text)}
    assert any(a != b and near(a, b) for a, b in combinations(texts.values(), 2))  # the check is not empty


def test_a_skeleton_stands_for_every_lexicon_word_of_its_part_of_speech() -> None:
    classes = {"rude": "ADJ", "friendly": "ADJ", "broke": "VERB"}
    known = frozenset({"the", "staff", "was", "my", "rude", "friendly", "broke"})
    assert skeleton(("the", "staff", "was", "rude"), classes) == skeleton(("the", "staff", "was", "friendly"), classes)
    assert skeleton(("my", "kettle", "broke"), classes, known) == ("my", UNKNOWN, "VERB")
    assert skeleton(("my", "kettle", "broke"), classes) == ("my", "kettle", "VERB")


@pytest.fixture(scope="module")
def listed() -> dict[str, dict[str, str]]:
    """The register's entries by name, "SET:LINE:FIELD"."""
    with (DATA / REGISTER).open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {f"{r['set']}:{r['line']}:{r['field']}": r for r in rows}


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return eval_texts(DATA)


def test_the_register_names_evaluation_texts_and_a_composed_text_near_each(listed, texts) -> None:
    vocab = edgeinfer.load("sentiment").spec.input.vocab
    classes, known = lexicon_classes(vocab), frozenset(vocab)
    assert listed, "the register is empty"
    for name, entry in listed.items():
        assert texts.get(name) == entry["text"], f"{name}: the register's text is not the set's"
        mine = normalise(entry["text"])
        if entry["how"] == "text":
            assert near(mine, tuple(entry["composed"].split())), entry
        else:
            assert entry["how"] == "skeleton", entry
            assert near(skeleton(mine, classes, known), tuple(entry["composed"].split())), entry
    # every set keeps texts apart from the generator (its figure), and the pair sets some whole pairs
    for name in EVAL_SETS:
        lines = {int(k.split(":")[1]) for k in texts if k.startswith(name + ":")}
        assert lines - {int(k.split(":")[1]) for k in listed if k.startswith(name + ":")}, name


def test_no_evaluation_text_outside_the_register_is_near_a_composed_one(listed, texts) -> None:
    """The first TEST_COUNT composed texts of each recipe (those of the register's sample: the draws
    do not depend on the count) find nothing the register lacks: fails when the frames, the
    lexicons or an evaluation set change until the register is written again."""
    vocab = edgeinfer.load("sentiment").spec.input.vocab
    found = register(texts, vocab, TEST_COUNT)
    assert len(found) > 100  # the check finds what it is for
    missing = sorted(set(found) - set(listed))
    shown = "; ".join(f"{texts[n]!r} ~ {found[n][1]!r}" for n in missing[:10])
    assert missing == [], f"{len(missing)} evaluation texts near a composed text, not in {REGISTER} " \
                          f"(python -m train.overlap): {shown}"
    for name, (how, _) in found.items():  # near word for word here: so in the larger sample
        assert how == "skeleton" or listed[name]["how"] == "text", name
