"""English verb forms from `lemminflect` (MIT; a dictionary of English lemmas and inflections), for
the composed texts' phrases: each is written once, in its base form, and its other forms derived."""
from __future__ import annotations

from functools import cache


@cache
def inflection(word: str, tag: str) -> str:
    """`word`'s form for the Penn tag `tag` ("VBD", "VBZ", "NNS"...): lemminflect's first; ValueError
    when it has none or lemminflect is missing."""
    try:
        from lemminflect import getInflection
    except ImportError as exc:
        raise ValueError("composed texts need the lemminflect package: pip install -e '.[recipes]'") from exc
    got = getInflection(word, tag=tag)
    if not got:
        raise ValueError(f"lemminflect has no {tag} form of {word!r}")
    return str(got[0])


def verb_forms(phrase: str) -> tuple[str, str, str]:
    """(base form, third person singular present, simple past) of a verb phrase in its base form:
    its first word inflected, the rest as it is ("fall apart" -> "falls apart", "fell apart"); a
    hyphenated first word is inflected in its last part and written as two words ("double-book
    appointments" -> "double books appointments", "double booked appointments")."""
    verb, _, rest = phrase.partition(" ")
    head, _, last = verb.rpartition("-")
    out = []
    for tag in ("VB", "VBZ", "VBD"):
        form = last if tag == "VB" else inflection(last, tag)
        out.append(" ".join(w for w in (head, form, rest) if w))
    return out[0], out[1], out[2]
