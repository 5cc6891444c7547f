"""Short texts composed from sentiment lexicons (issue 17): word polarity from outside IMDB, and
what a negation, a contrast and an intensifier do to it.

The review labels of IMDB teach a word's polarity only as movie reviews use it, and teach
negation from few, noisy examples: "no complaints", "it never broke" and "i don't regret it"
come out negative, since "complaints", "broke" and "regret" mostly come with negative reviews
and "no", "never", "don't" with both. This module writes labelled short texts that state those
rules outright, from two lexicons rated by people and a word-form dictionary:

- **Polarity**: VADER's lexicon (Hutto & Gilbert 2014, ratings -4..4 by ten people each; the
  `vaderSentiment` package, MIT licence) and AFINN-165 (Nielsen 2011, -5..5; the `afinn`
  package, ODbL). A word keeps the mean of its scaled ratings when every lexicon that rates it
  agrees on the sign and the mean is at least MIN_POLARITY; multi-word and emoticon entries are
  left out.
- **Part of speech and word forms**: `lemminflect` (MIT; a dictionary of English lemmas and
  inflections): an adjective goes where adjectives go ("the room was dirty"), a noun where
  nouns go ("there were problems", "it was a disaster"), a verb with its past and present forms
  ("it broke", "they ignored me", "i loved it").
- **Expectations** (`train.functions`): phrases that carry no sentiment word but say whether a
  thing does what it is for ("it arrived on time", "it leaks"); negated they turn over ("it
  doesn't leak"). Written for the project from general knowledge (by a helper that read no test
  or development text).
- **Composition** (the label follows from the word's sign and the frame, never from a text's
  source): plain frames keep the word's label, intensifiers keep it ("really good", "so
  rude"), negations turn it over ("not good", "no complaints", "it never broke", "i didn't
  like it", "it was no problem"), a remedy verb acting on a bad thing makes a good outcome
  ("they fixed the problem"; "they never fixed the problem": content-word negators, Choi &
  Cardie 2008), and a contrast takes the label of its second part ("the food was good, but the
  service was slow"; "although it was cheap, it broke").

Subjects are neutral nouns of the four domains people review (products, films, restaurants,
services). Only words in the model's vocabulary are used (an unknown word would teach the
`<unk>` id a polarity). Deterministic for a seed. Reads no data set: nothing here comes from
IMDB or from any test set.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeinfer.preprocess.text import words
from train.inflect import inflection

MIN_POLARITY = 0.2  # a word's scaled rating (VADER / 4, AFINN / 5) must reach this to be used
RANK_SCALE = 100.0  # word weights: the 100th word of the vocabulary is drawn 1/sqrt(2) as often as the 1st
MAX_TRIES = 50  # draws per composed text before giving up (a vocabulary without the frames' words)
WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")

# neutral subjects: (singular, plural) noun phrases of products, films, restaurants and services
SINGULAR = ("it", "this", "the phone", "the laptop", "the app", "the product", "the camera", "the charger",
            "the jacket", "the chair", "the vacuum", "the blender", "the battery", "the screen", "the case",
            "the movie", "the film", "the show", "the plot", "the ending", "the acting", "the script",
            "the soundtrack", "the book", "the game", "the series", "the episode", "the documentary",
            "the food", "the meal", "the soup", "the steak", "the pizza", "the coffee", "the dessert",
            "the restaurant", "the menu", "the bar", "the cafe", "this place", "the service", "the staff",
            "the hotel", "the room", "the flight", "the delivery", "the support", "the repair", "the bank",
            "the doctor", "the driver", "the waiter", "the manager", "the team", "the company", "the shop",
            "the experience", "the price", "the quality", "the installation", "everything", "the whole thing")
PLURAL = ("they", "the fries", "the shoes", "the headphones", "the seats", "the portions", "the drinks",
          "the actors", "the characters", "the jokes", "the effects", "the songs", "the staff members",
          "the prices", "the rooms", "the instructions", "the people", "the results", "the prices here")
OBJECTS = ("it", "this", "this phone", "this movie", "this place", "the food", "the service", "the hotel",
           "this product", "this book", "the show", "this app", "the staff", "this restaurant", "them")
THINGS = ("phone", "movie", "film", "place", "product", "book", "restaurant", "hotel", "service", "app",
          "meal", "experience", "show", "purchase", "company", "store", "camera", "story", "game", "team")
INTENSIFIERS = ("very", "really", "so", "extremely", "incredibly", "absolutely", "truly", "quite",
                "super", "pretty", "totally", "genuinely", "remarkably")
PERSONS = ("i", "we")
# content-word negators (Choi & Cardie 2008): acting on a bad thing they make a good outcome
REMEDY_VERBS = ("fix", "solve", "resolve", "repair", "remove", "eliminate", "prevent", "avoid", "reduce", "ease",
                "handle", "cure", "correct", "stop", "sort")
REMEDIES = tuple((verb, inflection(verb, "VBD")) for verb in REMEDY_VERBS)  # (base, past): "fix", "fixed"
REMEDY_SHARE = 0.1  # of the clauses
# neutral phrases that vary a clause's shape around its frame (issue 17: "never had a problem with it here",
# "nothing on the menu disappointed us", "my steak we ordered was cold")
TAILS = ("here", "with it", "so far", "this time", "today", "last night", "in the end", "for the price",
         "every time", "overall", "for us", "for me", "at first", "from the start", "this week", "after a week",
         "in our room", "on the menu", "during our stay", "in ten years")
NEGATED_TAILS = ("at all", "at all here", "whatsoever")
HEADS = ("honestly", "overall", "so far", "to be honest", "in the end", "this time", "once again", "well")
OWNERS = ("my", "our", "this", "the", "their")
MODIFIERS = ("we ordered", "i bought", "we got", "here", "i tried", "we had", "they sent", "on the menu")
NOTHING = ("nothing", "nothing about {}", "nothing on the menu", "nothing we tried", "nothing in {}",
           "nothing about the {}")
UNKNOWN = "<unk>"  # a subject noun the vocabulary lacks ("my <unk> broke"): the unknown id is taught to be neutral
UNKNOWN_SHARE = 0.1  # of the subjects
UNKNOWN_MARK = "unknownnoun"  # stands for UNKNOWN until the text is split into words
# plural or mass nouns for bare noun phrases ("friendly staff", "generous portions")
BARE = ("food", "service", "staff", "prices", "portions", "quality", "sound", "acting", "music", "people",
        "rooms", "drinks", "value", "design", "battery life", "customer service", "delivery", "support",
        "characters", "writing", "visuals", "coffee", "atmosphere", "results", "instructions")
# what people say they will do again, or never ("we will be back", "i would never go back")
REPEATS = ("go back", "come back", "be back", "buy it again", "order again", "stay here again", "eat here again",
           "fly with them again", "use them again", "watch it again", "shop here again", "return",
           "buy from them again", "book with them again", "come here again")
REPEAT_SHARE = 0.05  # of the clauses
FUNCTION_SHARE = 0.2  # of the clauses: an expectation met or not (train.functions), "it leaks", "it didn't leak"
# subjects for train.functions' phrases, by the domain a phrase is said of
DOMAIN_SUBJECTS = {
    "product": ("it", "this", "the phone", "the laptop", "the charger", "the jacket", "the chair", "the vacuum",
                "the blender", "the battery", "the screen", "the case", "the product", "the camera", "the car",
                "the shoes", "the headphones", "the printer", "the machine", "the watch", "the bag", "the tv"),
    "restaurant": ("the food", "the meal", "the soup", "the pizza", "the coffee", "our order", "the order",
                   "the kitchen", "the restaurant", "the waiter", "the fries", "the steak", "the staff"),
    "service": ("they", "the staff", "the driver", "the company", "the support", "the hotel", "the delivery",
                "the doctor", "the manager", "the bank", "the flight", "the airline", "the shop", "the agent",
                "the mechanic", "the team", "the landlord", "the office"),
    "movie": ("the movie", "the film", "the show", "the plot", "the story", "the series", "the episode"),
}
PLURAL_SUBJECTS = frozenset({"they", "the shoes", "the headphones", "the fries"})
TAIL_SHARE = 0.3  # of the clauses get a neutral tail; HEAD_SHARE of the texts a neutral head
HEAD_SHARE = 0.1
AGENTS = ("it", "they", "the staff", "the company", "the product", "the app", "the movie", "the service",
          "the driver", "the manager", "the support team", "the phone", "the food", "the hotel", "the film",
          "the show", "the ending", "the meal", "the waiter", "the doctor", "the repair", "the delivery")


@dataclass(frozen=True)
class LexWord:
    """A lexicon word in one part of speech: its forms and its sign (1 positive, 0 negative)."""

    forms: dict[str, str]  # Penn tag -> form ("JJ", "NN", "NNS", "VB", "VBD", "VBZ")
    label: int
    weight: float  # how often it is drawn: 1 / sqrt(1 + rank / RANK_SCALE) of its commonest form


def lexicon_polarity() -> dict[str, float]:
    """word -> polarity in [-1, 1] from VADER and AFINN-165 (ValueError when a package is missing)."""
    try:
        import afinn
        import vaderSentiment
    except ImportError as exc:
        raise ValueError("composed texts need the vaderSentiment and afinn packages: pip install -e '.[train]'") \
            from exc
    rated: dict[str, list[float]] = {}
    sources = ((os.path.join(os.path.dirname(vaderSentiment.__file__), "vader_lexicon.txt"), 4.0),
               (os.path.join(os.path.dirname(afinn.__file__), "data", "AFINN-en-165.txt"), 5.0))
    for path, scale in sources:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 2 and WORD_RE.fullmatch(fields[0]):
                    rated.setdefault(fields[0], []).append(float(fields[1]) / scale)
    out = {}
    for word, scores in rated.items():
        mean = float(np.mean(scores))
        if abs(mean) >= MIN_POLARITY and (all(s > 0 for s in scores) or all(s < 0 for s in scores)):
            out[word] = mean
    return out


def lexicon_words(polarity: dict[str, float], vocab: Sequence[str]) -> dict[str, list[LexWord]]:
    """The lexicon's words by part of speech ("ADJ", "NOUN", "VERB") with the forms the frames
    need, all in `vocab` (a model's words, commonest first: common words are drawn more often).
    A word with an adjective reading is used as an adjective only. A verb needs its base and
    past forms ("-s" falls back to the past), a noun its singular (the plural falls back to it).
    ValueError when lemminflect is missing."""
    try:
        from lemminflect import getAllInflections, getAllLemmas
    except ImportError as exc:
        raise ValueError("composed texts need the lemminflect package: pip install -e '.[recipes]'") from exc
    need = {"ADJ": ("JJ",), "NOUN": ("NN", "NNS"), "VERB": ("VB", "VBD", "VBZ")}
    # the forms a frame cannot do without; a missing other one is replaced by one of these
    must = {"ADJ": ("JJ",), "NOUN": ("NN",), "VERB": ("VB", "VBD")}
    fallback = {"NNS": "NN", "VBZ": "VBD"}
    rank = {w: i for i, w in enumerate(vocab)}
    out: dict[str, list[LexWord]] = {pos: [] for pos in need}
    seen: set[tuple[str, str]] = set()
    for word, score in sorted(polarity.items()):
        readings = getAllLemmas(word)
        if "ADJ" in readings:  # "warm", "best": an adjective first, never a noun or a verb
            readings = {"ADJ": readings["ADJ"]}
        for pos, lemmas in readings.items():
            if pos not in need or not lemmas or (lemmas[0], pos) in seen:
                continue
            lemma = lemmas[0]
            forms = {tag: got[0] for tag, got in getAllInflections(lemma, upos=pos).items() if got}
            forms.setdefault("JJ" if pos == "ADJ" else "NN" if pos == "NOUN" else "VB", lemma)
            if all(forms.get(tag) in rank for tag in must[pos]):
                seen.add((lemma, pos))
                got = {t: forms[t] if forms.get(t) in rank else forms[fallback[t]] for t in need[pos]}
                best = min(rank[f] for f in got.values())
                out[pos].append(LexWord(got, int(score > 0), 1.0 / float(np.sqrt(1.0 + best / RANK_SCALE))))
    return out


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _subject(rng: np.random.Generator, plural: bool) -> str:
    """A neutral subject: a fixed one mostly, else "my phone", "the steak we ordered" or "my <unk>"."""
    subject = _pick(rng, PLURAL if plural else SINGULAR)
    roll = rng.random()
    if not plural and roll < UNKNOWN_SHARE:  # "my <unk>": a product the vocabulary does not know
        return f"{_pick(rng, OWNERS)} {UNKNOWN_MARK}"
    if not plural and roll < UNKNOWN_SHARE + 0.15:
        return f"{_pick(rng, OWNERS)} {_pick(rng, THINGS)}"
    if roll < UNKNOWN_SHARE + 0.25 and subject.startswith("the ") and " " not in subject[4:]:
        return f"{subject} {_pick(rng, MODIFIERS)}"
    return subject


def _nothing(rng: np.random.Generator) -> str:
    """"nothing", "nothing about this movie", "nothing on the menu"..."""
    frame = _pick(rng, NOTHING)
    if "{}" not in frame:
        return frame
    return frame.format(_pick(rng, THINGS) if frame.endswith("the {}") else _pick(rng, OBJECTS[:-1]))


def _adjective(w: LexWord, negate: bool, rng: np.random.Generator) -> str:
    adj = w.forms["JJ"]
    if negate and w.label == 0 and rng.random() < 0.2:  # "not too bad", "the room wasn't too noisy"
        be = _pick(rng, ("is", "was"))
        return _pick(rng, (f"not too {adj}", f"{_subject(rng, False)} {be} not too {adj}",
                           f"{_subject(rng, False)} {be}n't too {adj}"))
    if rng.random() < 0.35:
        adj = f"{_pick(rng, INTENSIFIERS)} {adj}"
    elif w.label == 0 and not negate and rng.random() < 0.1:  # "too noisy", "way too slow"
        adj = f"{_pick(rng, ('too', 'way too', 'far too'))} {adj}"
    frame = int(rng.integers(5))
    if frame == 0:  # "not good", "good", "a good movie", "friendly staff"
        roll = rng.random()
        if roll < 0.35:
            return f"not {adj}" if negate else adj
        if roll < 0.6:
            return f"no {adj} {_pick(rng, BARE)}" if negate else f"{adj} {_pick(rng, BARE)}"
        article = "an" if adj[0] in "aeiou" else "a"
        return f"not {article} {adj} {_pick(rng, THINGS)}" if negate else f"{article} {adj} {_pick(rng, THINGS)}"
    if frame == 4:  # "never had a bad meal", "we had a great time"
        article = "an" if adj[0] in "aeiou" else "a"
        thing = _pick(rng, THINGS)
        if negate:
            return _pick(rng, (f"never had {article} {adj} {thing}", f"{_pick(rng, PERSONS)} never had {article} {adj} "
                               f"{thing}", f"{_pick(rng, PERSONS)} have never had {article} {adj} {thing}"))
        return _pick(rng, (f"had {article} {adj} {thing}", f"{_pick(rng, PERSONS)} had {article} {adj} {thing}"))
    plural = frame == 3
    if w.forms["JJ"].endswith("ed") and rng.random() < 0.5:  # "i was impressed", "we were not disappointed"
        subject = _pick(rng, PERSONS)
        be = "was" if subject == "i" else "were"
    else:
        subject = _subject(rng, plural)
        be = _pick(rng, ("are", "were") if plural else ("is", "was"))
    if negate:
        if rng.random() < 0.25:  # "nothing was good", "it has never been good", "nothing wrong with it"
            has = "have" if plural or subject in PERSONS else "has"
            obj = _pick(rng, OBJECTS)
            return _pick(rng, (f"{_nothing(rng)} {_pick(rng, ('is', 'was'))} {adj}",
                               f"{subject} {has} never been {adj}",
                               f"there {_pick(rng, ('is', 'was'))} nothing {adj} about {obj}",
                               f"nothing {adj} about {obj}", f"there was nothing {adj} with {obj}"))
        be = _pick(rng, (f"{be} not", f"{be}n't", f"{be} never"))
    return f"{subject} {be} {adj}"


def _noun(w: LexWord, negate: bool, rng: np.random.Generator) -> str:
    one, many = w.forms["NN"], w.forms["NNS"]
    frame = int(rng.integers(4))
    if frame == 0:  # "there were problems" / "there were no problems"
        return f"there {_pick(rng, ('were', 'are'))} {'no ' if negate else ''}{many}"
    if frame == 1:  # "i had problems with it" / "i had no problems with it", "no problems"
        if negate:
            return _pick(rng, (f"no {many}", f"no {many} at all", f"no {many} so far",
                               f"{_pick(rng, PERSONS)} had no {many}", f"{_pick(rng, PERSONS)} never had any {many}",
                               f"{_pick(rng, PERSONS)} haven't had any {many} with {_pick(rng, OBJECTS)}",
                               f"never had a {one}", f"never had a {one} with {_pick(rng, OBJECTS)}",
                               f"{_pick(rng, PERSONS)} have never had a {one} with {_pick(rng, OBJECTS)}",
                               f"hardly any {many}", f"{_pick(rng, ('everything', 'it', 'the delivery', 'the trip'))} "
                               f"{_pick(rng, ('went', 'worked', 'arrived', 'ran'))} without any {many}"))
        return _pick(rng, (f"{_pick(rng, PERSONS)} had {many} with {_pick(rng, OBJECTS)}",
                           f"{_pick(rng, PERSONS)} had a {one} with {_pick(rng, OBJECTS)}"))
    if frame == 2:  # "it was a hassle" / "it was no hassle"
        article = "an" if one[0] in "aeiou" else "a"
        return f"{_subject(rng, False)} was {_pick(rng, ('no', 'not ' + article)) if negate else article} {one}"
    return f"not a single {one}" if negate else f"what {'an' if one[0] in 'aeiou' else 'a'} {one}"


def _verb(w: LexWord, negate: bool, rng: np.random.Generator) -> str:
    base, past, third = w.forms["VB"], w.forms["VBD"], w.forms["VBZ"]
    if rng.random() < 0.5:  # a person's act: "i loved it" / "i didn't love it"
        who, what = _pick(rng, PERSONS), _pick(rng, OBJECTS)
        if negate:
            return _pick(rng, (f"{who} didn't {base} {what}", f"{who} did not {base} {what}",
                               f"{who} don't {base} {what}", f"{who} never {past} {what}",
                               f"you won't {base} {what}", f"{who} won't {base} {what}", f"{who} can't {base} {what}",
                               f"there was nothing to {base} about {what}", f"nothing to {base} about {what}"))
        return _pick(rng, (f"{who} {past} {what}", f"{who} {base} {what}", f"{who} really {past} {what}",
                           f"you will {base} {what}"))
    who = _pick(rng, AGENTS)  # a thing's or a provider's act: "it broke" / "it never broke"
    if rng.random() < UNKNOWN_SHARE:  # "my <unk> broke"
        who = f"{_pick(rng, OWNERS)} {UNKNOWN_MARK}"
    plural = who == "they"
    now = base if plural else third
    tail = _pick(rng, ("", "", " me", " us"))
    if negate:
        return _pick(rng, (f"{who} never {past}{tail}", f"{who} didn't {base}{tail}", f"{_nothing(rng)} {past}{tail}",
                           f"{who} {'don' if plural else 'doesn'}'t {base}{tail}"))
    return _pick(rng, (f"{who} {past}{tail}", f"{who} {now}{tail}"))


def _function(phrase: tuple[str, str, str, str], negate: bool, rng: np.random.Generator) -> str:
    """An expectation met or not (train.functions): "the delivery arrived on time", "it leaks" /
    "it never leaks", "the battery didn't hold a charge"."""
    base, third, past, domain = phrase
    if domain not in DOMAIN_SUBJECTS:  # "any"
        domain = _pick(rng, tuple(DOMAIN_SUBJECTS))
    who = _pick(rng, DOMAIN_SUBJECTS[domain])
    if domain == "product" and rng.random() < UNKNOWN_SHARE:  # "my <unk> leaks"
        who = f"{_pick(rng, OWNERS)} {UNKNOWN_MARK}"
    plural = who in PLURAL_SUBJECTS
    now = base if plural else third
    if negate:
        do = "don't" if plural else "doesn't"
        return _pick(rng, (f"{who} {do} {base}", f"{who} didn't {base}", f"{who} never {past}", f"{who} never {now}",
                           f"{who} did not {base}"))
    return _pick(rng, (f"{who} {now}", f"{who} {past}", f"{who} always {now}"))


FRAMES = {"ADJ": _adjective, "NOUN": _noun, "VERB": _verb}


class Pools:
    """The lexicon's words by part of speech and sign, each drawn with its weight."""

    def __init__(self, by_pos: dict[str, list[LexWord]],
                 functions: dict[int, list[tuple[str, str, str, str]]] | None = None,
                 function_share: float = FUNCTION_SHARE) -> None:
        self.functions = {label: got for label, got in (functions or {}).items() if got}
        self.function_share = function_share
        self.pools: dict[tuple[str, int], tuple[list[LexWord], np.ndarray]] = {}
        for pos, got in by_pos.items():
            for label in (0, 1):
                pool = [w for w in got if w.label == label]
                if pool:
                    weights = np.array([w.weight for w in pool])
                    self.pools[pos, label] = pool, np.cumsum(weights) / weights.sum()

    def draw(self, pos: str, label: int, rng: np.random.Generator) -> LexWord | None:
        """A word of part of speech `pos` and sign `label`, or None when there is none."""
        got = self.pools.get((pos, label))
        if got is None:
            return None
        pool, cumulative = got
        return pool[min(int(np.searchsorted(cumulative, rng.random())), len(pool) - 1)]

    def remedy(self, label: int, rng: np.random.Generator) -> str | None:
        """A remedy acting on a bad thing: "they fixed the problem" (positive), "they never
        fixed the problem" (negative); None without negative nouns."""
        word = self.draw("NOUN", 0, rng)
        if word is None:
            return None
        base, past = REMEDIES[int(rng.integers(len(REMEDIES)))]
        noun = word.forms["NN"] if rng.random() < 0.5 else word.forms["NNS"]
        who = _pick(rng, AGENTS + PERSONS)
        if label == 1:
            return f"{who} {past} the {noun}"
        return _pick(rng, (f"{who} never {past} the {noun}", f"{who} didn't {base} the {noun}"))

    def clause(self, label: int, rng: np.random.Generator) -> str:
        """One clause of sentiment `label`: a lexicon word in a frame, negated half the time
        (then a word of the other sign); a REMEDY_SHARE of them a remedy of a bad thing."""
        if rng.random() < REMEDY_SHARE:
            got = self.remedy(label, rng)
            if got is not None:
                return got
        if rng.random() < REPEAT_SHARE:  # "we will be back" / "i would never go back"
            who, again = _pick(rng, PERSONS), _pick(rng, REPEATS)
            if label == 1:
                return _pick(rng, (f"{who} will {again}", f"{who} would {again}", f"{who} will definitely {again}"))
            return _pick(rng, (f"{who} will never {again}", f"{who} won't {again}", f"{who} would never {again}",
                               f"{who} will not {again}"))
        if len(self.functions) == 2 and rng.random() < self.function_share:
            negate = bool(rng.random() < 0.5)
            phrases = self.functions[1 - label if negate else label]
            text = _function(phrases[int(rng.integers(len(phrases)))], negate, rng)
            return f"{text} {_pick(rng, TAILS)}" if rng.random() < TAIL_SHARE else text
        while True:
            pos = _pick(rng, tuple(FRAMES))
            negate = bool(rng.random() < 0.5)
            word = self.draw(pos, 1 - label if negate else label, rng)
            if word is not None:
                text = FRAMES[pos](word, negate, rng)
                if negate and rng.random() < 0.1:  # "no problems at all"
                    text = f"{text} {_pick(rng, NEGATED_TAILS)}"
                elif rng.random() < TAIL_SHARE:  # "it broke after a week"
                    text = f"{text} {_pick(rng, TAILS)}"
                return text


def known_functions(known: frozenset[str]) -> dict[int, list[tuple[str, str, str, str]]]:
    """train.functions' phrases whose base and past forms are all in `known` (a missing third-person
    form falls back to the past), by sign: 1 EXPECTED (doing it is good), 0 FAILURES."""
    from train.functions import EXPECTED, FAILURES

    out: dict[int, list[tuple[str, str, str, str]]] = {}
    for label, phrases in ((1, EXPECTED), (0, FAILURES)):
        out[label] = []
        for base, third, past, domain in phrases:
            if all(w in known for w in f"{base} {past}".split()):
                third = third if all(w in known for w in third.split()) else past
                out[label].append((base, third, past, domain))
    return out


def composed_texts(count: int, vocab: Sequence[str], seed: int, polarity: dict[str, float] | None = None,
                   functions: dict[int, list[tuple[str, str, str, str]]] | None = None,
                   function_share: float = FUNCTION_SHARE) -> tuple[list[list[str]], list[int]]:
    """`count` composed short texts (the tokenizer's words) and their labels (1 positive,
    0 negative), half of each; a fifth are contrasts ("A, but B": B's label), a tenth two
    clauses of one sign. `vocab`: the model's words, commonest first. `functions`: the
    expectation phrases by sign (default: train.functions' in `vocab`), used in `function_share`
    of the clauses. ValueError when the
    lexicons give no usable word in it."""
    if isinstance(vocab, (set, frozenset)):  # a set's order changes with PYTHONHASHSEED: weights and texts would too
        raise TypeError("composed_texts needs the vocabulary in its order (commonest first), not a set")
    by_pos = lexicon_words(lexicon_polarity() if polarity is None else polarity, vocab)
    if not all(any(w.label == s for p in by_pos.values() for w in p) for s in (0, 1)):
        raise ValueError("the lexicons give no positive or no negative word in the model's vocabulary")
    known = frozenset(vocab)
    pools = Pools(by_pos, known_functions(known) if functions is None else functions, function_share)
    rng = np.random.default_rng(seed)
    texts: list[list[str]] = []
    labels: list[int] = []
    for _ in range(MAX_TRIES * count):
        if len(texts) == count:
            break
        label = len(texts) % 2
        kind = rng.random()
        if kind < 0.2:
            first, second = pools.clause(1 - label, rng), pools.clause(label, rng)
            text = _pick(rng, (f"{first}, but {second}", f"{first} but {second}", f"{first}, yet {second}",
                               f"{first}, though {second}", f"although {first}, {second}",
                               f"{second}, although {first}", f"{first}. however, {second}"))
        elif kind < 0.3:
            first, second = pools.clause(label, rng), pools.clause(label, rng)
            text = _pick(rng, (f"{first} and {second}", f"{first}, and {second}", f"{first}! {second}"))
        else:
            text = pools.clause(label, rng)
        if rng.random() < HEAD_SHARE:  # "honestly, the food was good"
            text = f"{_pick(rng, HEADS)}, {text}"
        tokens = [UNKNOWN if t == UNKNOWN_MARK else t for t in words(text + _pick(rng, ("", "", ".", "!")))]
        if all(t in known or t == UNKNOWN for t in tokens):
            texts.append(tokens)
            labels.append(label)
    if len(texts) < count:
        raise ValueError(f"only {len(texts):,} of {count:,} composed texts have every word in the model's "
                         "vocabulary: the vocabulary lacks the frames' common words")
    return texts, labels
