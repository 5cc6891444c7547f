"""The short-text branch (issue 17): a second cell and head gated by the steps read. It streams
exactly, pads exactly, leaves long texts to the main model, trains on top of a frozen classifier
and exports with parity in both graphs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgeinfer import Model
from edgeinfer.cli.render import describe_readout
from edgeinfer.errors import SpecError
from edgeinfer.preprocess.text import Tokenizer
from edgeinfer.spec import ModelSpec
from export.graphs import export_graphs
from export.parity import FP32_TOLERANCE, padding_error, parity_error
from tests.nets import tiny_sentiment_net, write_model
from tests.train.test_sentiment import _train, write_tiny_imdb
from train.checkpoint import load_checkpoint
from train.models import NetConfig, build

VOCAB = 40


def _net(cell: str, buckets: int, words: float = 3.0) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build(NetConfig(cell, 8, 6, 1, 2, vocab=VOCAB, ngram_buckets=buckets, ngram_pool="sum", short_hidden=5,
                          short_words=words)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.5)
    return net


@pytest.mark.parametrize("cell", ["gru", "rnn"])
@pytest.mark.parametrize("buckets", [0, 101])
def test_steps_padding_and_every_step_agree(cell: str, buckets: int) -> None:
    net = _net(cell, buckets)
    assert net.state_names[-1] == "h_short" and "count" in net.state_names
    x = torch.randint(2, VOCAB, (3, 9))
    lengths = torch.tensor([9, 4, 1])
    with torch.no_grad():
        packed, _ = net(x, None, lengths, exact_state=True)
        padded, _ = net(x, None, lengths)
        every = net.every_step(x)  # (B, T, C)
        for i in range(3):
            alone, state = net(x[i:i + 1, :lengths[i]])
            steps = net.initial_state(1)
            for t in range(int(lengths[i])):
                y, steps = net.step(x[i:i + 1, t], steps)
                assert torch.allclose(y[0], every[i, t], atol=1e-6)
            assert torch.allclose(packed[i], alone[0], atol=1e-6) and torch.allclose(padded[i], alone[0], atol=1e-6)
            assert torch.allclose(y, alone, atol=1e-6)
            assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(steps, state, strict=True))


def test_the_gate_hands_short_texts_to_the_branch_and_long_ones_to_the_main_head() -> None:
    net = _net("gru", 101, words=8.0)
    counts = torch.tensor([1.0, 4.0, 8.0, 12.0, 40.0])
    gate = net.short_gate(counts)
    expected = [1 / (1 + math.exp(-(c - 8.0) * 4.0 / 8.0)) for c in counts.tolist()]
    assert gate.tolist() == pytest.approx(expected, abs=1e-6)
    assert gate[2].item() == pytest.approx(0.5) and gate[0] < 0.03 and gate[-1] > 1 - 1e-6
    # the logits are gate * main + (1 - gate) * branch: zeroing the branch's head moves a
    # 40-word text by almost nothing and a 1-word text by almost all of the branch's logits
    x = torch.randint(2, VOCAB, (1, 40))
    with torch.no_grad():
        long_before, short_before = net(x)[0], net(x[:, :1])[0]
        branch_one = net.short_head(net.short_rnn(net.inp(x[:, :1]), net.initial_state(1)[-1])[0][:, -1])
        net.short_head.weight.zero_()
        net.short_head.bias.zero_()
        long_after, short_after = net(x)[0], net(x[:, :1])[0]
    assert (long_before - long_after).abs().max() < 1e-5
    assert torch.allclose(short_before - short_after, (1 - gate[0]) * branch_one, atol=1e-5)


def test_config_and_spec_refuse_a_branch_they_cannot_run() -> None:
    with pytest.raises(ValueError, match="short-text branch"):
        build(NetConfig("lstm", 8, 6, 1, 2, vocab=VOCAB, short_hidden=4, short_words=3.0))
    with pytest.raises(ValueError, match="short_words"):
        build(NetConfig("gru", 8, 6, 1, 2, vocab=VOCAB, short_hidden=4))
    _, spec = tiny_sentiment_net(True, layers=1, short=True)
    raw = spec.to_dict()  # format 7: the readout is an extra, checked for its own rules
    readout = raw["extras"]["readout"]
    for change, message in (({"short_words": 0.0}, "short_words' must be between 1"),
                            ({"short_hidden": 0}, "short_words' is set without a short-text branch"),
                            ({"short_hidden": -1}, "short_hidden' must be between 0")):
        with pytest.raises(SpecError, match=message):
            ModelSpec.from_dict({**raw, "extras": {"readout": {**readout, **change}}})
    with pytest.raises(SpecError, match="needs a rnn or gru model"):
        ModelSpec.from_dict({**raw, "cell": "lstm"})
    # formats 1-6: the state also follows from the readout
    old = {k: v for k, v in raw.items() if k not in ("output", "extras")}
    old |= {"format_version": 6, "task": "sentiment", "labels": raw["output"]["names"]}
    assert ModelSpec.from_dict({**old, "readout": readout}).readout.short_hidden == 6
    with pytest.raises(SpecError, match="state 'h_short' must be"):
        ModelSpec.from_dict({**old, "readout": {**readout, "short_hidden": 7}})


def test_export_parity_and_the_runtime_read_the_branch(tmp_path) -> None:
    net, spec = tiny_sentiment_net(True, layers=1, short=True)
    seq, step = export_graphs(net, spec)
    assert parity_error(net, seq, step, spec, steps=11) <= FP32_TOLERANCE
    assert padding_error(seq, spec, vocab=15) <= FP32_TOLERANCE
    model = Model(write_model(net, spec, tmp_path / "s.onnx"))
    assert model.spec.readout.short_hidden == 6 and model.spec.state[-1].name == "h_short"
    assert describe_readout(model.spec).endswith(
        "; a short-text branch (gru x1, hidden 6) answers texts of a few words, the main head from about 4 words on")
    texts = ["good", "the movie was not good", " ".join(["bad movie"] * 12)]
    probs = model.predict(texts)
    for text, p in zip(texts, probs, strict=True):
        fed, stepped = model.text_stream(), model.text_stream()
        fed.feed(text)
        assert np.abs(fed.finish() - p).max() <= 1e-5  # the sequence graph, in chunks
        last = [probs for _, probs in stepped.trace(text)][-1]  # the step graph, word by word
        assert np.abs(last - p).max() <= 1e-5
        ids = torch.tensor([Tokenizer(spec.input).encode(text)])  # type: ignore[arg-type]
        with torch.no_grad():
            want = torch.softmax(net(ids)[0], -1)[0].numpy()
        assert np.abs(p - want).max() <= 1e-5


def test_short_branch_trains_on_a_frozen_classifier(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data")
    _train(tmp_path / "data", tmp_path / "base", "--cell", "gru", "--epochs", "2", "--lr", "0.02")
    base = load_checkpoint(tmp_path / "base" / "checkpoint.pt")
    _train(tmp_path / "data", tmp_path / "branch", "--init", str(tmp_path / "base" / "checkpoint.pt"),
           "--short-branch", "6", "--short-words", "5", "--short", "2", "--flip", "--epochs", "2", "--lr", "0.02")
    ckpt = load_checkpoint(tmp_path / "branch" / "checkpoint.pt")
    cfg = ckpt.net_config()
    assert (cfg.short_hidden, cfg.short_words, cfg.hidden) == (6, 5.0, base.net_config().hidden)
    for name, tensor in base.state_dict.items():  # the classifier is frozen: only the branch learnt
        assert torch.equal(ckpt.state_dict[name], tensor), name
    torch.manual_seed(0)  # the branch as the run built it, before training (--seed 0)
    fresh = build(cfg).state_dict()
    learnt = [n for n, t in ckpt.state_dict.items() if n.startswith("short_") and not torch.equal(fresh[n], t)]
    assert len(learnt) == 6  # the branch cell's 4 tensors and its head's 2
    assert ckpt.train_args["short"] == 2 and ckpt.train_args["flip"]
    # the epochs measured the branch alone; the recorded accuracy is the gated model's, measured again
    assert 0.0 <= ckpt.metrics["branch_test_accuracy"] <= 1.0 and 0.0 <= ckpt.metrics["test_accuracy"] <= 1.0
    net = build(cfg)
    net.load_state_dict(ckpt.state_dict)
    from train.loop import accuracy
    from train.tasks import sentiment_data
    _, _, test = sentiment_data(tmp_path / "data", 0, 0, vocab=tuple(ckpt.input["vocab"]))
    assert ckpt.metrics["test_accuracy"] == accuracy(net, test)
    from train.__main__ import main as train_main
    assert train_main(["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x"),
                       "--short-branch", "4", "--short", "2"]) == 2  # no --init
    assert train_main(["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x"), "--init",
                       str(tmp_path / "branch" / "checkpoint.pt"), "--short-branch", "4", "--short", "2"]) == 2
