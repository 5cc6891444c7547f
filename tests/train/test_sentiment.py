"""IMDB loading (folder and archive), vocabulary, word vectors, and sentiment training/export."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import torch

from edgeinfer import Model
from train.__main__ import main as train_main
from train.checkpoint import load_checkpoint
from train.data import DataMissingError, data_dir, load_imdb
from train.models import build
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


def test_word_vectors_initialise_and_freeze(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data", copies=2)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 8\ngreat " + " ".join(["0.5"] * 8) + "\nawful " + " ".join(["-0.5"] * 8)
                       + "\nunseen " + " ".join(["9"] * 8) + "\n")
    _train(tmp_path / "data", tmp_path / "run", "--epochs", "1", "--vectors", str(vectors), "--freeze-vectors")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    table = ckpt.state_dict["inp.0.weight"]
    vocab = ckpt.input["vocab"]
    assert torch.equal(table[vocab.index("great") + 2], torch.full((8,), 0.5))
    assert torch.equal(table[vocab.index("awful") + 2], torch.full((8,), -0.5))
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


def test_lm_pretraining_then_fine_tuning(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data")
    lm_out = tmp_path / "lm"
    assert train_main(["sentiment-lm", "--data", str(tmp_path / "data"), "--out", str(lm_out), "--embed", "8",
                       "--hidden", "8", "--batch", "4", "--bptt", "8", "--threads", "1", "--min-count", "1",
                       "--epochs", "3", "--lr", "0.01", "--cell", "gru"]) == 0
    lm = load_checkpoint(lm_out / "checkpoint.pt")
    lines = (lm_out / "metrics.jsonl").read_text().splitlines()
    import json
    losses = [json.loads(x)["train_loss"] for x in lines]
    assert losses[-1] < losses[0]  # it learns the tiny corpus
    _train(tmp_path / "data", tmp_path / "clf", "--cell", "gru", "--epochs", "1",
           "--init", str(lm_out / "checkpoint.pt"))
    clf = load_checkpoint(tmp_path / "clf" / "checkpoint.pt")
    assert clf.input["vocab"] == lm.input["vocab"]
    # fine-tuning started from the LM's weights: the head is new, the recurrent layer moved little
    diff = (clf.state_dict["rnn.weight_hh_l0"] - lm.state_dict["rnn.weight_hh_l0"]).abs().max()
    assert float(diff) < 0.2
    assert float(diff) > 0  # ... but it did move
    # --init-lr-scale 0 freezes every pretrained tensor while the new head learns; --head-dropout
    # is recorded in the config and adds no weights, so the export is unchanged
    _train(tmp_path / "data", tmp_path / "frozen", "--cell", "gru", "--epochs", "1", "--init",
           str(lm_out / "checkpoint.pt"), "--init-lr-scale", "0", "--head-dropout", "0.5", "--anytime", "0.5")
    frozen = load_checkpoint(tmp_path / "frozen" / "checkpoint.pt")
    assert frozen.config["head_dropout"] == 0.5
    assert frozen.train_args["anytime"] == 0.5 and frozen.train_args["pretrained_lr_scale"] == 0
    for name in ("inp.0.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_hh_l0"):
        assert torch.equal(frozen.state_dict[name], lm.state_dict[name]), name
    assert set(frozen.state_dict) == set(clf.state_dict)
    torch.manual_seed(0)
    start = build({**frozen.config, "head_dropout": 0.5})
    assert not torch.equal(start.head.weight, frozen.state_dict["head.weight"])
