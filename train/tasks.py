"""Task recipes: what data, model and labels each task trains on."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgeinfer.preprocess.image import normalize
from edgeinfer.preprocess.text import PAD_ID, UNK_ID, CharTokenizer, Tokenizer, words
from edgeinfer.spec import CharInput, ImageInput, TextInput
from train.data import DataMissingError, load_imdb, load_mnist
from train.loop import TensorData

DIGIT_LABELS = tuple(str(d) for d in range(10))


def digits_data(root: Path, split: str, limit: int = 0) -> TensorData:
    """MNIST as model inputs x (N, 28, 28) float32, normalised as the spec says, and labels (N,)."""
    images, labels = load_mnist(root, split)
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = normalize(images.astype(np.float32) / 255.0, ImageInput())
    return TensorData(torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)))


def shift_digits(max_px: int) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Augmentation: shift each image by up to max_px pixels in each direction, zero-filled."""
    background = float(normalize(np.zeros(1, np.float32), ImageInput())[0])

    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, rows, cols = x.shape
        pad = torch.nn.functional.pad(x, (max_px, max_px, max_px, max_px), value=background)
        dy = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
        r = (dy[:, None] + torch.arange(rows)[None, :])[:, :, None]
        c = (dx[:, None] + torch.arange(cols)[None, :])[:, None, :]
        return pad[torch.arange(b)[:, None, None], r, c]

    return apply


SENTIMENT_LABELS = ("negative", "positive")
HOLDOUT_SEED = 20111  # the held-out training reviews (--holdout) are the same whatever --seed says


def holdout_pick(size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (the rest, `count` held out) of `size` examples: a fixed random pick, sorted."""
    if not 0 < count < size:
        raise ValueError(f"--holdout must be between 1 and {size - 1}, got {count}")
    pick = np.random.default_rng(HOLDOUT_SEED).permutation(size)
    return np.sort(pick[count:]), np.sort(pick[:count])


class TokenData:
    """Variable-length token id sequences and labels, batched by similar length (less padding)."""

    def __init__(self, seqs: list[np.ndarray], y: np.ndarray) -> None:
        self.seqs = list(seqs)
        self.seqs = [s if len(s) else np.array([UNK_ID], np.int64) for s in self.seqs]  # never empty
        self.lengths = torch.tensor([len(s) for s in self.seqs])
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.seqs)

    def subset(self, idx: np.ndarray) -> TokenData:
        """The examples at `idx`, in that order."""
        return TokenData([self.seqs[i] for i in idx], self.y.numpy()[idx])

    def split_holdout(self, count: int) -> tuple[TokenData, TokenData]:
        """(the rest, `count` held-out examples): a fixed random pick, the same in every run."""
        rest, held = holdout_pick(len(self), count)
        return self.subset(rest), self.subset(held)

    def concat(self, other: TokenData) -> TokenData:
        """These examples, then `other`'s."""
        return TokenData(self.seqs + other.seqs, np.concatenate([self.y.numpy(), other.y.numpy()]))

    def batch(self, idx: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Right-padded ids (B, T) with their lengths (B,), and labels."""
        lengths = self.lengths[idx]
        x = torch.zeros(len(idx), int(lengths.max()), dtype=torch.int64)
        for row, i in enumerate(idx.tolist()):
            x[row, : lengths[row]] = torch.from_numpy(self.seqs[i])
        return {"x": x, "lengths": lengths}, self.y[idx]

    def batches(self, batch: int, gen: torch.Generator | None) -> list[torch.Tensor]:
        """Shuffled pools of 50 batches, each pool sorted by length; batch order shuffled too."""
        if gen is None:
            return list(torch.argsort(self.lengths, stable=True).split(batch))
        order = torch.randperm(len(self), generator=gen)
        out: list[torch.Tensor] = []
        for pool in order.split(batch * 50):
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]
            out.extend(pool.split(batch))
        return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]


def build_vocab(texts: list[list[str]], max_size: int, min_count: int) -> tuple[str, ...]:
    """The most frequent words of the training split (ties broken alphabetically)."""
    counts: Counter[str] = Counter()
    for tokens in texts:
        counts.update(tokens)
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return tuple(ranked[:max_size])


def sentiment_data(root: Path, max_vocab: int, min_count: int, limit: int = 0,
                   vocab: tuple[str, ...] | None = None) -> tuple[TextInput, TokenData, TokenData]:
    """IMDB train/test tokenized with a vocabulary built from the training split only.

    `vocab` reuses a given vocabulary instead (e.g. the one a pretrained language model used).
    """
    train_texts, train_y = load_imdb(root, "train")
    if limit:
        pick = np.random.default_rng(0).permutation(len(train_y))[:limit]
        train_texts, train_y = [train_texts[i] for i in pick], train_y[pick]
    train_words = [words(t) for t in train_texts]
    spec = TextInput(vocab=vocab if vocab is not None else build_vocab(train_words, max_vocab, min_count))
    tok = Tokenizer(spec)
    train = TokenData([np.array(tok.encode_words(w), np.int64) for w in train_words], train_y)
    return spec, train, sentiment_test_data(root, spec, limit)


def short_data(root: Path, spec: TextInput, per_review: int, flip: bool, seed: int, holdout: int = 0,
               limit: int = 0, critic_name: str = ""
               ) -> tuple[TokenData, TokenData | None, int]:
    """Short texts of the IMDB training reviews (train.short): (those of the training reviews,
    those of the `holdout` pick or None, the number of negation flips). Reviews are picked as
    `sentiment_data` and `TokenData.split_holdout` pick them, so no held-out review leaks."""
    from train.critic import critic
    from train.short import short_texts

    texts, labels = load_imdb(root, "train")
    if limit:
        pick = np.random.default_rng(0).permutation(len(labels))[:limit]
        texts, labels = [texts[i] for i in pick], labels[pick]
    rest, held = holdout_pick(len(texts), holdout) if holdout else (np.arange(len(texts)), None)
    tok = Tokenizer(spec)
    known = frozenset(spec.vocab)
    flips = 0
    judge = critic(critic_name) if critic_name else None

    def build(idx: np.ndarray, offset: int) -> TokenData:
        nonlocal flips
        got, y, count = short_texts([texts[i] for i in idx], labels[idx].tolist(), per_review, flip,
                                    seed + offset, known, judge)
        flips += count
        return TokenData([np.array(tok.encode_words(w), np.int64) for w in got], np.array(y, np.int64))

    return build(rest, 0), (build(held, 1) if held is not None else None), flips


def composed_data(spec: TextInput, count: int, seed: int, expectations: float = 0.2) -> TokenData:
    """`count` short texts composed from sentiment lexicons (train.compose) in `spec`'s vocabulary,
    `expectations` of the clauses an expectation met or not (train.functions)."""
    from train.compose import composed_texts

    texts, labels = composed_texts(count, spec.vocab, seed, function_share=expectations)  # vocab: commonest first
    tok = Tokenizer(spec)
    return TokenData([np.array(tok.encode_words(w), np.int64) for w in texts], np.array(labels, np.int64))


def lm_corpus(root: Path, spec: TextInput, unsup: bool = True, max_tokens: int = 0,
              seed: int = 0) -> np.ndarray:
    """Token stream for language-model pretraining: the unlabelled and training reviews, shuffled.

    The test split is never read. Reviews are joined with the padding id as a boundary.
    """
    texts = load_imdb(root, "train")[0] + (load_imdb(root, "unsup")[0] if unsup else [])
    order = np.random.default_rng(seed).permutation(len(texts))
    tok = Tokenizer(spec)
    parts: list[np.ndarray] = []
    size = 0
    for i in order:
        ids = [*tok.encode(texts[i]), PAD_ID]
        parts.append(np.array(ids, np.int64))
        size += len(ids)
        if max_tokens and size >= max_tokens:
            break
    return np.concatenate(parts)


def sentiment_test_data(root: Path, spec: TextInput, limit: int = 0) -> TokenData:
    """The IMDB test split tokenized with a model's own vocabulary (whole reviews)."""
    texts, labels = load_imdb(root, "test")
    if limit:
        pick = np.random.default_rng(1).permutation(len(labels))[:limit]
        texts, labels = [texts[i] for i in pick], labels[pick]
    tok = Tokenizer(spec)
    return TokenData([np.array(tok.encode(t), np.int64) for t in texts], labels)


def load_vectors(path: Path, vocab: tuple[str, ...], width: int) -> tuple[torch.Tensor, int]:
    """Word vectors in the word2vec/GloVe text format for the vocabulary's words.

    Returns a (len(vocab) + 2, width) tensor (rows 0 and 1, padding and unknown, stay zero; words
    without a vector get small random values) and the number of words found. A first line of two
    integers (word2vec's header) is skipped.
    """
    index = {w: i + 2 for i, w in enumerate(vocab)}
    table = torch.randn(len(vocab) + 2, width, generator=torch.Generator().manual_seed(0)) * 0.1
    table[:2] = 0.0
    found = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) != width + 1:
                raise ValueError(f"{path}:{number}: {len(parts) - 1} values; expected {width} (the --embed width)")
            row = index.get(parts[0])
            if row is not None:
                table[row] = torch.tensor([float(v) for v in parts[1:]])
                found += 1
    return table, found


def char_corpus(path: Path) -> tuple[CharInput, np.ndarray, np.ndarray]:
    """A UTF-8 text as character ids: vocabulary from the first 90%, the last 10% for validation."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataMissingError(f"{path}: no such text file; give --text FILE or put "
                               "tinyshakespeare.txt in DATA/text/") from None
    if len(text) < 100:
        raise ValueError(f"{path}: {len(text)} characters; expected a text of at least 100")
    cut = int(len(text) * 0.9)
    spec = CharInput(vocab=tuple(sorted(set(text[:cut]))))
    ids = np.array(CharTokenizer(spec).encode(text), np.int64)
    return spec, ids[:cut], ids[cut:]
