"""Word-level tokenizer for the sentiment task, shared by training and the runtime.

Rules: HTML line breaks (`<br />`) become spaces; text is lower-cased when the spec says
`lowercase`; curly apostrophes become straight ones; a token is a run of letters/digits with an
optional contraction suffix kept in the same token ("don't", "it's", "movie's"), or one of `!` and
`?`; everything else separates tokens. Ids: the spec's `pad_id` and `unk_id` (0 and 1 in every
file exported so far), the vocabulary taking the other ids in order.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from edgeinfer.spec import CharInput, TextInput, VocabInput

BREAK_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[!?]")
PAD_ID, UNK_ID = VocabInput.pad_id, VocabInput.unk_id  # the spec's defaults, which training writes


def words(text: str, lowercase: bool = True) -> list[str]:
    """Split text into the tokenizer's words."""
    text = BREAK_RE.sub(" ", text)
    if lowercase:
        text = text.lower()
    return TOKEN_RE.findall(text.replace("\u2019", "'").replace("\u2018", "'"))


class Tokenizer:
    """Maps words to ids with the vocabulary a model's spec carries."""

    def __init__(self, spec: TextInput) -> None:
        self.spec = spec
        self.ids = dict(zip(spec.vocab, spec.token_ids, strict=True))

    def words(self, text: str) -> list[str]:
        """Split text into words by the spec's rules."""
        return words(text, self.spec.lowercase)

    def encode(self, text: str) -> list[int]:
        """Token ids of a text. # (T,)"""
        return self.encode_words(self.words(text))

    def encode_words(self, tokens: list[str]) -> list[int]:
        """Token ids of already split words."""
        get, unk = self.ids.get, self.spec.unk_id
        return [get(w, unk) for w in tokens]


class WordBuffer:
    """Splits text arriving in arbitrary chunks into whole words.

    A word is released once a separator follows it, so a word cut across two chunks is never
    counted twice; `flush()` releases the last pending word at the end of the text.
    """

    def __init__(self, lowercase: bool = True) -> None:
        self.pending = ""
        self.lowercase = lowercase

    MAX_PENDING = 1000  # a "word" longer than this is released as it is (an unknown word)

    def push(self, chunk: str) -> Iterator[str]:
        """Words completed by this chunk."""
        text = self.pending + chunk
        cut = len(text)
        while cut > 0 and (text[cut - 1].isalnum() or text[cut - 1] in "'\u2019"):
            cut -= 1
        tag = text.rfind("<")
        if tag >= 0 and ">" not in text[tag:] and len(text) - tag <= 6:
            cut = min(cut, tag)  # a `<br />` tag cut in two: wait for its end
        if len(text) - cut > self.MAX_PENDING:
            cut = len(text)
        self.pending = text[cut:]
        yield from words(text[:cut], self.lowercase)

    def flush(self) -> Iterator[str]:
        """The words still pending."""
        text, self.pending = self.pending, ""
        yield from words(text, self.lowercase)


class CharTokenizer:
    """Maps characters to ids with the vocabulary a characters model's spec carries."""

    def __init__(self, spec: CharInput) -> None:
        self.spec = spec
        self.ids = dict(zip(spec.vocab, spec.token_ids, strict=True))
        chars = [""] * spec.vocab_size  # id -> text; padding prints as nothing, unknown as U+FFFD
        chars[spec.unk_id] = "\ufffd"
        for c, i in self.ids.items():
            chars[i] = c
        self.chars = tuple(chars)

    def encode(self, text: str) -> list[int]:
        """Ids of each character; characters outside the vocabulary become the unknown id."""
        get, unk = self.ids.get, self.spec.unk_id
        return [get(c, unk) for c in text]

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` outside the vocabulary."""
        return sorted({c for c in text if c not in self.ids})
