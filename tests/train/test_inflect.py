"""train.inflect: the composed texts' verb forms come from lemminflect, written once in the base form."""
from __future__ import annotations

import hashlib
import json

import pytest

import edgeinfer
from train.compose import REMEDIES, REMEDY_VERBS, composed_texts
from train.functions import EXPECTED, EXPECTED_PHRASES, FAILURE_PHRASES, FAILURES
from train.inflect import inflection, verb_forms


def test_a_phrase_is_inflected_in_its_verb_and_keeps_its_complement() -> None:
    assert verb_forms("fall apart") == ("fall apart", "falls apart", "fell apart")
    assert verb_forms("fit true to size") == ("fit true to size", "fits true to size", "fit true to size")
    assert verb_forms("have bedbugs") == ("have bedbugs", "has bedbugs", "had bedbugs")
    assert verb_forms("freeze") == ("freeze", "freezes", "froze")
    assert verb_forms("reply to my emails") == ("reply to my emails", "replies to my emails", "replied to my emails")
    assert verb_forms("double-book appointments") == (
        "double book appointments", "double books appointments", "double booked appointments")
    assert inflection("stop", "VBD") == "stopped"
    with pytest.raises(ValueError, match="no QQ form"):  # a tag lemminflect does not know
        inflection("go", "QQ")


def test_the_expectation_lists_are_their_phrases_inflected() -> None:
    assert [(e[0], e[3]) for e in EXPECTED] == [(verb_forms(p)[0], d) for p, d in EXPECTED_PHRASES]
    assert len(EXPECTED) == 128 and len(FAILURES) == 133 == len(FAILURE_PHRASES)
    assert ("lose my luggage", "loses my luggage", "lost my luggage", "service") in FAILURES
    assert ("work", "works", "worked", "product") in EXPECTED
    assert ("fix", "fixed") in REMEDIES and len(REMEDIES) == len(REMEDY_VERBS)


# the composed texts of the built-in's recipe (seed 17, expectations 0.2 and none), as they were when
# the phrases were typed in all three forms by hand: deriving the forms changed no text
COMPOSED_SHA256 = {0.2: "d8705b140ddaf70ade0ef45a5b65f73464aff277d7223b0e8ab6aa354ee5a5d2",
                   0.0: "dc5eb5aa687e1c22053a0821ba80b0fc02ada87222cba1a6c02b1a771650f3b1"}


@pytest.mark.parametrize("share", sorted(COMPOSED_SHA256))
def test_the_recipe_composes_the_same_texts_as_before(share: float) -> None:
    vocab = edgeinfer.load("sentiment").spec.input.vocab
    texts, labels = composed_texts(20000, vocab, 17, function_share=share)
    assert hashlib.sha256(json.dumps([texts, labels]).encode()).hexdigest() == COMPOSED_SHA256[share]
