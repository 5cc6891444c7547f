"""`train vectors`: skip-gram pairs stay inside a text, subsampling spares rare words, vectors of
words with the same contexts end up close, and the written file is what --vectors reads."""
from __future__ import annotations

import numpy as np

from tests.train.test_sentiment import write_tiny_imdb
from train.tasks import build_vocab, load_vectors
from train.vectors import VECTORS, keep_probability, skipgram_pairs, train_vectors, write_vectors


def test_pairs_never_cross_a_text_boundary() -> None:
    tokens = np.array([5, 6, 7, 0, 8, 9, 0, 10, 0])
    keep = np.ones(11)
    keep[:2] = 0.0
    centre, context = skipgram_pairs(tokens, keep, window=2, rng=np.random.default_rng(0))
    text = {5: 0, 6: 0, 7: 0, 8: 1, 9: 1, 10: 2}
    pairs = list(zip(centre.tolist(), context.tolist(), strict=True))
    assert all(text[a] == text[b] for a, b in pairs)
    assert {(5, 6), (6, 5), (6, 7), (7, 6), (8, 9), (9, 8)} <= set(pairs)  # distance 1: always kept
    assert set(pairs) <= {(5, 6), (6, 5), (6, 7), (7, 6), (8, 9), (9, 8), (5, 7), (7, 5)}
    assert 0 not in centre and 10 not in centre  # padding never; 10 has no neighbour in its text


def test_subsampling_spares_rare_words() -> None:
    counts = np.array([50.0, 30.0, 1e6, 1.0, 100.0])
    keep = keep_probability(counts, threshold=1e-4)
    assert keep[0] == keep[1] == 0.0  # padding and unknown
    assert keep[3] == 1.0 and keep[4] == 1.0  # rare words always kept
    assert 0.0 < keep[2] < 0.05  # a word that is most of the corpus, mostly dropped


def test_words_with_the_same_contexts_get_close_vectors() -> None:
    """good/great appear before "fun", bad/awful before "mess": each pair ends up closer."""
    gen = np.random.default_rng(0)
    ids = {w: i + 2 for i, w in enumerate(["the", "film", "was", "good", "great", "bad", "awful", "fun", "mess"])}
    texts = []
    for _ in range(600):
        word = ["good", "great", "bad", "awful"][gen.integers(4)]
        tail = "fun" if word in ("good", "great") else "mess"
        texts += [ids["the"], ids["film"], ids["was"], ids[word], ids[tail], 0]
    table = train_vectors(np.array(texts), 11, 8, epochs=10, window=2, batch=256, lr=0.02, subsample=1.0, log=False)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True).clip(1e-9)
    cos = lambda a, b: float(unit[ids[a]] @ unit[ids[b]])  # noqa: E731
    assert cos("good", "great") > cos("good", "awful") + 0.3
    assert cos("bad", "awful") > cos("bad", "great") + 0.3
    assert abs(float(table[2:].std()) - 1.0) <= 1e-4  # scaled to unit standard deviation


def test_cli_writes_what_sentiment_reads(tmp_path) -> None:
    from train.__main__ import main as train_main
    write_tiny_imdb(tmp_path / "data")
    out = tmp_path / "vec"
    assert train_main(["vectors", "--data", str(tmp_path / "data"), "--embed", "8", "--min-count", "1",
                       "--epochs", "2", "--batch", "64", "--threads", "1", "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == [VECTORS]  # no temporary file left behind
    header = (out / VECTORS).read_text().splitlines()[0]
    from edgeinfer.preprocess.text import words
    from train.data import load_imdb
    vocab = build_vocab([words(t) for t in load_imdb(tmp_path / "data", "train")[0]], 20000, 1)
    assert header == f"{len(vocab)} 8"
    table, found = load_vectors(out / VECTORS, vocab, 8)
    assert found == len(vocab) and table.shape == (len(vocab) + 2, 8)
    write_vectors(tmp_path / "again.txt", vocab, table.numpy())
    again, _ = load_vectors(tmp_path / "again.txt", vocab, 8)
    assert np.abs(again.numpy() - table.numpy()).max() <= 1e-5  # the text format round-trips
    assert train_main(["vectors", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
