"""IMDB loading (folder and archive), vocabulary, word vectors, and sentiment training/export."""
from __future__ import annotations

import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from edgeinfer import Model
from train.__main__ import main as train_main
from train.checkpoint import load_checkpoint, save_checkpoint
from train.data import DataMissingError, data_dir, load_imdb
from train.tasks import build_vocab

POS = ["a great movie", "great acting, loved it", "wonderful<br />great fun", "loved every great minute"]
NEG = ["an awful movie", "awful acting, hated it", "boring<br />awful mess", "hated every awful minute"]


def write_tiny_imdb(root: Path, copies: int = 10, archive: bool = False) -> None:
    """A tiny aclImdb tree (train/test, pos/neg, unsup), as a folder or as the published archive."""
    base = root / "imdb" / "aclImdb"
    for split in ("train", "test"):
        for cls, texts in (("pos", POS), ("neg", NEG)):
            folder = base / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(copies):
                for j, text in enumerate(texts):
                    (folder / f"{k * 10 + j}_{8 if cls == 'pos' else 2}.txt").write_text(f"{text} number {k}")
    (base / "train" / "unsup").mkdir(parents=True)
    (base / "train" / "unsup" / "0_0.txt").write_text("no label here")
    if archive:
        with tarfile.open(root / "imdb" / "aclImdb_labelled.tar.gz", "w:gz") as tar:
            tar.add(base, arcname="aclImdb")
        for path in sorted(base.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        base.rmdir()


def test_folder_and_archive_read_the_same(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "a")
    write_tiny_imdb(tmp_path / "b", archive=True)
    texts_a, y_a = load_imdb(tmp_path / "a", "test")
    texts_b, y_b = load_imdb(tmp_path / "b", "test")
    assert texts_a == texts_b and y_a.tolist() == y_b.tolist()
    assert len(texts_a) == 80 and y_a.sum() == 40
    assert load_imdb(tmp_path / "a", "unsup")[1].tolist() == [-1]


def test_missing_imdb_is_clear(tmp_path) -> None:
    with pytest.raises(DataMissingError, match="IMDB archive missing"):
        load_imdb(tmp_path, "train")


def test_build_vocab_by_count_then_alphabet() -> None:
    texts = [["b", "a", "c", "a"], ["b", "d", "a"]]
    assert build_vocab(texts, max_size=10, min_count=1) == ("a", "b", "c", "d")
    assert build_vocab(texts, max_size=10, min_count=2) == ("a", "b")
    assert build_vocab(texts, max_size=1, min_count=1) == ("a",)


@pytest.mark.data
def test_real_imdb_test_split() -> None:
    try:
        texts, labels = load_imdb(data_dir(), "test")
    except DataMissingError as exc:
        pytest.fail(f"real data needed: {exc}")
    assert len(texts) == 25000 and int(labels.sum()) == 12500
    assert sum("<br />" in t for t in texts) > 10000  # raw text, as published


def _train(root: Path, out: Path, *extra: str) -> None:
    assert train_main(["sentiment", "--data", str(root), "--out", str(out), "--embed", "8", "--hidden", "8",
                       "--batch", "8", "--threads", "1", "--min-count", "1", *extra]) == 0


def test_sentiment_trains_and_exports(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data")
    _train(tmp_path / "data", tmp_path / "run", "--cell", "gru", "--epochs", "6", "--lr", "0.02")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt.metrics["test_accuracy"] >= 0.95 and ckpt.task == "sentiment"
    assert "great" in ckpt.input["vocab"] and "<br" not in " ".join(ckpt.input["vocab"])
    import export.__main__ as ex
    assert ex.main([str(tmp_path / "run" / "checkpoint.pt"), "--out", str(tmp_path / "m"), "--name", "s",
                    "--data", str(tmp_path / "data"), "--no-int8"]) == 0
    model = Model(tmp_path / "m" / "s-fp32.onnx")
    assert model.spec.metrics["test_accuracy"] == pytest.approx(ckpt.metrics["test_accuracy"])
    assert model.spec.metrics["test_reviews"] == 80
    probs = model.predict(["what a great movie", "an awful mess"])
    assert probs[0, 1] > 0.5 > probs[1, 1]


def test_word_vectors_initialise_the_embedding(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data", copies=2)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 8\ngreat " + " ".join(["0.5"] * 8) + "\nawful " + " ".join(["-0.5"] * 8)
                       + "\nunseen " + " ".join(["9"] * 8) + "\n")
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "1", "--vectors", str(vectors), "--lr", "1e-9")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    table = ckpt.state_dict["inp.0.weight"]
    vocab = ckpt.input["vocab"]  # a learning rate of 1e-9 leaves the vectors as they were read
    assert torch.allclose(table[vocab.index("great") + 2], torch.full((8,), 0.5), atol=1e-6)
    assert torch.allclose(table[vocab.index("awful") + 2], torch.full((8,), -0.5), atol=1e-6)
    assert not table[0].any()  # padding stays zero
    bad = tmp_path / "bad.txt"
    bad.write_text("great 1 2 3\n")
    assert train_main(["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r2"),
                       "--embed", "8", "--vectors", str(bad)]) == 2


def test_tokenizer_ids_identical_to_training(tmp_path) -> None:
    """Training-time ids (words + vocabulary lookup) equal the runtime's (spec read from ONNX)."""
    from edgeinfer.preprocess.text import Tokenizer, words
    from edgeinfer.spec import ModelSpec
    write_tiny_imdb(tmp_path / "data")
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "1")
    import export.__main__ as ex
    ex.main([str(tmp_path / "run" / "checkpoint.pt"), "--out", str(tmp_path / "m"), "--name", "s",
             "--data", str(tmp_path / "data"), "--no-int8"])
    runtime = Tokenizer(ModelSpec.from_json(Model(tmp_path / "m" / "s-fp32.onnx").spec.to_json()).input)
    vocab = load_checkpoint(tmp_path / "run" / "checkpoint.pt").input["vocab"]
    index = {w: i + 2 for i, w in enumerate(vocab)}
    for text in load_imdb(tmp_path / "data", "test")[0]:
        assert runtime.encode(text) == [index.get(w, 1) for w in words(text)]


def test_init_continues_from_a_classifier(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data")
    _train(tmp_path / "data", tmp_path / "a", "--cell", "gru", "--epochs", "1")
    _train(tmp_path / "data", tmp_path / "b", "--cell", "gru", "--epochs", "1", "--lr", "0.001",
           "--init", str(tmp_path / "a" / "checkpoint.pt"), "--anytime", "0.5")
    a, b = (load_checkpoint(tmp_path / x / "checkpoint.pt") for x in "ab")
    assert b.input["vocab"] == a.input["vocab"] and set(b.state_dict) == set(a.state_dict)
    diff = (b.state_dict["rnn.weight_hh_l0"] - a.state_dict["rnn.weight_hh_l0"]).abs().max()
    assert 0 < float(diff) < 0.2  # started from a's weights and moved from them
    assert b.train_args["anytime"] == 0.5 and b.train_args["short"] == 0 and "pretrained_lr_scale" not in b.train_args
    # a checkpoint of another task, or of another shape, is one clear error
    chars = replace(a, task="characters")
    save_checkpoint(tmp_path / "chars.pt", chars)
    assert train_main(["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "c"), "--embed", "8",
                       "--hidden", "8", "--min-count", "1", "--init", str(tmp_path / "chars.pt")]) == 2
    assert train_main(["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "d"), "--embed", "8",
                       "--hidden", "16", "--min-count", "1", "--cell", "gru",
                       "--init", str(tmp_path / "a" / "checkpoint.pt")]) == 2
