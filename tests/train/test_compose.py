"""train.compose: short texts composed from sentiment lexicons, labelled by their frames."""
from __future__ import annotations

import os
import re
from itertools import pairwise

import numpy as np
import pytest

from train.compose import (
    AGENTS,
    BARE,
    DOMAIN_SUBJECTS,
    HEADS,
    INTENSIFIERS,
    MIN_POLARITY,
    MODIFIERS,
    NEGATED_TAILS,
    NOTHING,
    OBJECTS,
    OWNERS,
    PLURAL,
    RANK_SCALE,
    REMEDIES,
    REPEATS,
    SINGULAR,
    TAILS,
    THINGS,
    UNKNOWN,
    composed_texts,
    known_functions,
    lexicon_polarity,
    lexicon_words,
)
from train.functions import DOMAINS, EXPECTED, FAILURES
from train.short import is_negation

# a small lexicon: each word's sign is what the frames must carry into the label
POLARITY = {"good": 0.5, "great": 0.8, "bad": -0.6, "rude": -0.5, "problem": -0.4, "complaint": -0.3,
            "joy": 0.7, "love": 0.8, "hate": -0.8, "break": -0.4, "enjoy": 0.6}
FORMS = tuple(" ".join((
    "good great bad rude problem problems complaint complaints joy joys love loved loves hate hated hates",
    "break broke breaks enjoy enjoyed enjoys",
)).split(" "))
FRAME_WORDS = tuple(" ".join((
    "there were are no at all so far had never haven't any with was is not a an single what i we didn't",
    "did don't doesn't never really me us but although however and isn't wasn't aren't weren't ! .",
)).split(" "))


JOINERS = frozenset({"but", "yet", "though", "although", "however", "and", "!"})
REMEDY_WORDS = frozenset(w for forms in REMEDIES for w in forms)


def vocabulary() -> tuple[str, ...]:
    """The frames' words and the lexicon's, commonest first ("good" first, "enjoys" last)."""
    phrases = (BARE + REPEATS + ("will would definitely",) + SINGULAR + PLURAL + OBJECTS + THINGS + INTENSIFIERS
               + AGENTS + TAILS + NEGATED_TAILS + HEADS + OWNERS + MODIFIERS
               + tuple(n.replace("{}", "") for n in NOTHING))
    rest = sorted({w for p in phrases for w in p.split()} | set(FRAME_WORDS) | REMEDY_WORDS
                  | {"nothing", "been", "has", "have", "too", "you", "will", "won't", "can't", "hardly", "without",
                     "everything", "went", "worked", "arrived", "ran", "trip", "delivery", "to", "about", "way", "far"})
    return FORMS + tuple(w for w in rest if w not in FORMS)


def clause_label(tokens: list[str]) -> int:
    """The label a clause must have: its lexicon word's sign, turned over by one negation."""
    signs = [POLARITY[w] > 0 for w in tokens for w in [LEMMA.get(w, w)] if w in POLARITY]
    if not signs and any(f" {r} " in f" {' '.join(tokens)} " for r in REPEATS):  # "we will be back"
        signs = [True]
    assert len(signs) == 1, tokens
    negations = sum(is_negation(t) for t in tokens)
    assert negations <= 1, tokens
    remedies = sum(t in REMEDY_WORDS and u == "the" for t, u in pairwise(tokens))  # "fixed the problem"
    assert remedies == 0 or not signs[0], tokens  # remedies act on bad things only
    return int(signs[0]) ^ negations ^ remedies


LEMMA = {"problems": "problem", "complaints": "complaint", "joys": "joy", "loved": "love", "loves": "love",
         "hated": "hate", "hates": "hate", "broke": "break", "breaks": "break", "enjoyed": "enjoy",
         "enjoys": "enjoy"}


def test_composed_texts_carry_the_label_their_frames_give() -> None:
    texts, labels = composed_texts(3000, vocabulary(), seed=3, polarity=POLARITY)
    assert len(texts) == len(labels) == 3000 and sum(labels) == 1500
    known = vocabulary()
    kinds = {"plain": 0, "negated": 0, "contrast": 0, "two clauses": 0, "head": 0}
    for tokens, label in zip(texts, labels, strict=True):
        assert all(t in known or t == UNKNOWN for t in tokens)
        for head in HEADS:  # "honestly, ...": a neutral head carries no sign
            if tokens[:len(head.split())] == head.split():
                tokens = tokens[len(head.split()):]
                kinds["head"] += 1
                break
        body = [t for t in tokens if t not in "!."]
        stops = [i for i, t in enumerate(tokens[:-1]) if t == "!"]
        if stops:  # "A! B": two clauses of one sign
            assert clause_label(tokens[:stops[0]]) == label, tokens
            assert clause_label([t for t in tokens[stops[0] + 1:] if t not in "!."]) == label, tokens
            kinds["two clauses"] += 1
        elif "but" in body or "however" in body:  # "A, but B" / "A. however, B": B's label
            cut = body.index("but" if "but" in body else "however")
            assert clause_label(body[:cut]) == 1 - label and clause_label(body[cut + 1:]) == label, tokens
            kinds["contrast"] += 1
        elif "although" in body:  # "B, although A": B's label; "although A, B": the words cannot tell
            cut = body.index("although")  # where A ends (no comma in words), so A's sign is checked
            if cut > 0:
                assert clause_label(body[:cut]) == label and clause_label(body[cut + 1:]) == 1 - label, tokens
            kinds["contrast"] += 1
        elif "and" in body and body.count("and") == 1 and clause_label(body[body.index("and") + 1:]) == label:
            assert clause_label(body[:body.index("and")]) == label, tokens
            kinds["two clauses"] += 1
        else:
            assert clause_label(body) == label, tokens
            kinds["negated" if any(is_negation(t) for t in body) else "plain"] += 1
    assert kinds["contrast"] > 400 and kinds["two clauses"] > 150
    assert kinds["negated"] > 800 and kinds["plain"] > 800 and kinds["head"] > 150
    assert sum(any(t in REMEDY_WORDS for t in tokens) for tokens in texts) > 150
    assert sum("again" in tokens or "back" in tokens for tokens in texts) > 100  # "we will be back"
    assert 80 < sum(UNKNOWN in tokens for tokens in texts) < 600  # "my <unk> broke": a subject only
    after = [tokens[tokens.index(UNKNOWN) - 1] for tokens in texts if UNKNOWN in tokens]
    assert set(after) <= set(OWNERS)
    assert composed_texts(3000, known, seed=3, polarity=POLARITY) == (texts, labels)  # deterministic
    assert composed_texts(3000, known, seed=4, polarity=POLARITY)[0] != texts


def test_no_negation_reads_like_a_phrase_people_write() -> None:
    texts, labels = composed_texts(4000, vocabulary(), seed=0, polarity=POLARITY)
    joined = {" ".join(t): y for t, y in zip(texts, labels, strict=True)}
    assert joined.get("no complaints", 1) == 1 and joined.get("no problems", 1) == 1
    assert "no complaints" in joined or "no problems" in joined
    never_broke = re.compile(r"(it|they|the \w+(?: \w+)?) never broke( me| us)?")
    assert any(never_broke.fullmatch(t) for t in joined)
    assert all(y == 1 for t, y in joined.items() if never_broke.fullmatch(t))
    assert all(y == 0 for t, y in joined.items() if re.fullmatch(r"(i|we) (didn't|did not|don't) (love|enjoy) \w+", t))
    fixed = re.compile(r"(it|they|i|we|the (?!\w+ never)\w+(?: \w+)?) (fixed|solved) the (problem|problems|complaint)")
    assert any(fixed.fullmatch(t) for t in joined) and all(y == 1 for t, y in joined.items() if fixed.fullmatch(t))
    joined = {t: y for t, y in joined.items() if not set(t.split()) & JOINERS}  # one clause
    tail = "(?: " + "| ".join(TAILS + NEGATED_TAILS) + ")?"
    never_had = re.compile(rf"(?:(?:i|we) (?:have )?)?never had an? (?:bad|rude) \w+{tail}")
    assert any(never_had.fullmatch(t) for t in joined) and all(y == 1 for t, y in joined.items()
                                                              if never_had.fullmatch(t))
    nothing = re.compile(rf"nothing(?: about| on| in| we) [\w ]+ (?:broke|hated)(?: me| us)?{tail}")
    assert any(nothing.fullmatch(t) for t in joined) and all(y == 1 for t, y in joined.items() if nothing.fullmatch(t))
    not_too = re.compile(rf"(?:[\w ]+ (?:is|was)(?:n't| not) |not )too (?:bad|rude){tail}")
    assert any(not_too.fullmatch(t) for t in joined) and all(y == 1 for t, y in joined.items() if not_too.fullmatch(t))
    unfixed = re.compile(r"(it|they|i|we|the \w+(?: \w+)?) (never fixed|didn't fix) the (problem|problems)")
    assert all(y == 0 for t, y in joined.items() if unfixed.fullmatch(t))


def test_expectations_met_or_not_carry_their_label() -> None:
    """"the delivery arrived on time" is good, "it leaks" bad; a negation turns either over."""
    functions = {1: [("arrive on time", "arrives on time", "arrived on time", "service")],
                 0: [("leak", "leaks", "leaked", "product")]}
    extra = {w for d in DOMAIN_SUBJECTS.values() for p in d for w in p.split()}
    extra |= set(["arrive", "arrives", "arrived", "on", "time", "leak", "leaks", "leaked", "always"])
    vocab = vocabulary() + tuple(sorted(extra - set(vocabulary())))
    texts, labels = composed_texts(3000, vocab, seed=5, polarity=POLARITY, functions=functions)
    seen = {"arrive": 0, "leak": 0}
    for tokens, label in zip(texts, labels, strict=True):
        words = [t for t in tokens if t not in "!."]
        if set(tokens[:-1]) & JOINERS or tokens[0] in {h.split()[0] for h in HEADS}:
            continue
        verbs = [("arrive" if t.startswith("arriv") else "leak") for t in words if t.startswith(("arriv", "leak"))]
        if verbs and not any(LEMMA.get(t, t) in POLARITY for t in words):  # not "it arrived without any problems"
            assert len(verbs) == 1 and sum(is_negation(t) for t in words) <= 1, tokens
            seen[verbs[0]] += 1
            assert label == int(verbs[0] == "arrive") ^ sum(is_negation(t) for t in words), tokens
    assert min(seen.values()) > 50  # FUNCTION_SHARE of the clauses, both signs
    assert composed_texts(3000, vocab, seed=5, polarity=POLARITY, functions={}) != (texts, labels)


def test_expectation_phrases_are_well_formed_and_filtered_by_the_vocabulary() -> None:
    seen: set[str] = set()
    for phrases in (EXPECTED, FAILURES):
        assert len(phrases) >= 100
        for *forms, domain in phrases:
            assert domain in DOMAINS and forms[0] not in seen, forms
            seen.add(forms[0])
            assert all(re.fullmatch(r"[a-z']+(?: [a-z']+){0,4}", f) for f in forms), forms
    known = ("work", "worked", "fit", "fitted", "leak", "leaked", "leaks")
    got = known_functions(frozenset(known))
    assert ("work", "worked", "worked", "product") in got[1]  # "works" unknown: the past stands in
    assert ("leak", "leaks", "leaked", "product") in got[0]
    assert all(w in known for p in got[0] + got[1] for f in p[:3] for w in f.split())


def test_lexicon_words_need_their_main_forms_and_weigh_common_words_more() -> None:
    vocab = ("good", "problem", "problems", "love", "loved", "complaint", "hate", "broke")
    by_pos = lexicon_words(POLARITY, vocab)
    assert [w.forms for w in by_pos["ADJ"]] == [{"JJ": "good"}]
    nouns = {w.forms["NN"]: w for w in by_pos["NOUN"]}
    assert nouns["problem"].forms == {"NN": "problem", "NNS": "problems"}
    assert nouns["complaint"].forms == {"NN": "complaint", "NNS": "complaint"}  # no plural: the singular
    assert nouns["problem"].weight == pytest.approx(1 / np.sqrt(1 + 1 / RANK_SCALE))
    assert nouns["problem"].weight > nouns["complaint"].weight
    # "love" has its past ("loves" falls back to it); "hate" lacks "hated" and "break" lacks "break"
    assert [(w.forms, w.label) for w in by_pos["VERB"]] == [({"VB": "love", "VBD": "loved", "VBZ": "loved"}, 1)]
    texts, _ = composed_texts(4000, vocabulary(), seed=1, polarity=POLARITY)
    counts = {w: sum(t.count(w) for t in texts) for w in ("good", "enjoy")}
    assert counts["good"] > counts["enjoy"] > 0  # "good" is first in the vocabulary, "enjoy" near its end


def test_the_lexicons_agree_on_signs_and_reach_the_floor() -> None:
    pol = lexicon_polarity()
    assert len(pol) > 5000
    assert pol["good"] > 0 and pol["excellent"] > 0 and pol["bad"] < 0 and pol["complaints"] < 0
    assert all(abs(v) >= MIN_POLARITY and re.fullmatch(r"[a-z]+(?:'[a-z]+)?", w) for w, v in pol.items())


def test_composed_texts_refuse_a_vocabulary_without_their_words() -> None:
    with pytest.raises(ValueError, match="no positive or no negative word"):
        composed_texts(10, ("good", "the"), seed=0, polarity=POLARITY)
    with pytest.raises(ValueError, match="vocabulary lacks the frames' common words"):
        composed_texts(10, ("joy", "joys", "problem", "problems"), seed=0, polarity=POLARITY)


@pytest.mark.training
def test_composed_data_keeps_the_vocabulary_order_whatever_the_hash_seed() -> None:
    """The words' weights follow the vocabulary's order; a set's order changes from one process to
    the next (PYTHONHASHSEED), so a set is refused and the training data is the same in every process."""
    import subprocess
    import sys

    with pytest.raises(TypeError, match="not a set"):
        composed_texts(10, frozenset(vocabulary()), seed=0, polarity=POLARITY)
    code = ("from tests.train.test_compose import vocabulary; from edgeinfer.spec import TextInput; "
            "from train.tasks import composed_data; "
            "d = composed_data(TextInput(vocab=vocabulary()), 300, 7); "
            "print([s.tolist() for s in d.seqs], d.y.tolist())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2)}
    assert len(runs) == 1


def test_train_sentiment_adds_composed_texts_to_the_short_texts(tmp_path, capsys) -> None:
    from tests.train.test_sentiment import write_tiny_imdb
    from train.__main__ import main as train_main
    from train.checkpoint import load_checkpoint

    write_tiny_imdb(tmp_path / "data")
    common = ["sentiment", "--data", str(tmp_path / "data"), "--cell", "gru", "--hidden", "8", "--embed", "8",
              "--epochs", "1"]
    assert train_main([*common, "--out", str(tmp_path / "a"), "--compose", "40"]) == 2  # no --short
    assert "--compose adds to the short texts: give --short N too" in capsys.readouterr().err
    # the tiny reviews' few words make too few texts: one clear line
    assert train_main([*common, "--out", str(tmp_path / "a"), "--short", "2", "--compose", "40"]) == 2
    assert "composed texts have every word in the model's vocabulary" in capsys.readouterr().err
    for label, text in (("pos", "it was not bad and i didn't hate the show, there were no problems, we loved it"),
                        ("neg", "it was never good, they didn't fix the problem, we had problems and no fun")):
        for k in range(5):  # reviews with the frames' common words
            (tmp_path / "data" / "imdb" / "aclImdb" / "train" / label / f"{90 + k}_5.txt").write_text(text)
    assert train_main([*common, "--out", str(tmp_path / "b"), "--short", "2", "--compose", "40",
                       "--expectations", "0.5"]) == 0
    assert "composed texts: 40" in capsys.readouterr().err
    args = load_checkpoint(tmp_path / "b" / "checkpoint.pt").train_args
    assert args["compose"] == 40 and args["expectations"] == 0.5
    assert train_main([*common, "--out", str(tmp_path / "c"), "--short", "2", "--compose", "40",
                       "--expectations", "1"]) == 2  # a share is in [0, 1)
    assert "--expectations: 1 is out of range" in capsys.readouterr().err
