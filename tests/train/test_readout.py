"""The readout (pooled states, hashed n-grams): streams exactly, pads exactly, hashes as documented,
trains on top of a frozen classifier, exports with parity."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeinfer import Model
from edgeinfer.spec import Readout, state_for
from edgeinfer_export.quantize import quantize
from export.graphs import export_graphs
from export.parity import FP32_TOLERANCE, padding_error, parity_error
from tests.nets import tiny_sentiment_net
from tests.train.test_sentiment import _train, write_tiny_imdb
from train.checkpoint import load_checkpoint
from train.models import NetConfig, build

CASES = [(cell, layers) for cell in ("rnn", "lstm", "gru") for layers in (1, 2)]
VOCAB, BUCKETS = 50, 97


def _net(cell: str, layers: int, pool: bool = True, buckets: int = BUCKETS, ngram_pool: str = "mean"):
    torch.manual_seed(0)
    net = build(NetConfig(cell, 8, 6, layers, 2, vocab=VOCAB, pool=pool, ngram_buckets=buckets,
                          ngram_pool=ngram_pool)).eval()
    if buckets:
        with torch.no_grad():
            net.ngram.weight.normal_()
    return net


@pytest.mark.parametrize("ngram_pool", ["mean", "sum"])
@pytest.mark.parametrize("cell,layers", CASES)
def test_chunks_steps_and_padding_equal_whole_rows(cell: str, layers: int, ngram_pool: str) -> None:
    net = _net(cell, layers, ngram_pool=ngram_pool)
    x = torch.randint(2, VOCAB, (3, 11))
    lengths = torch.tensor([11, 4, 7])
    with torch.no_grad():
        y_all, s_all = net(x, lengths=lengths, exact_state=True)
        y_train, _ = net(x, lengths=lengths)  # the padded training path gives the same logits
        assert (y_train - y_all).abs().max() <= 1e-6
        for b in range(3):
            row = x[b:b + 1, :lengths[b]]
            _, first = net(row[:, :3])
            y_two, s_two = net(row[:, 3:], first)  # two chunks, the state carried between them
            state = stepped = net.initial_state(1)
            for t in range(row.shape[1]):
                y_step, state = net(row[:, t:t + 1], state)
                y_one, stepped = net.step(row[:, t], stepped)  # the step graph's own path
                assert (y_one - y_step).abs().max() <= 1e-5
                assert all((a - b).abs().max() <= 1e-5 for a, b in zip(state, stepped, strict=True))
            for y in (y_two, y_step, net.every_step(row)[:, -1]):
                assert (y[0] - y_all[b]).abs().max() <= 1e-5
            for whole, two, stepped in zip(s_all, s_two, state, strict=True):
                assert (whole[:, b] - two[:, 0]).abs().max() <= 1e-5
                assert (whole[:, b] - stepped[:, 0]).abs().max() <= 1e-5
    names = [s.name for s in state_for(cell, layers, 6, net.config.readout)]
    assert names[-5:] == ["count", "pool_sum", "pool_max", "ngram_sum", "prev"]
    assert [tuple(s.shape) for s in s_all[-5:]] == [(1, 3, 1), (1, 3, 6), (1, 3, 6), (1, 3, 1), (2, 3, 1)]
    assert s_all[-5][0, :, 0].tolist() == [11, 4, 7]  # count: the real steps of each row
    assert s_all[-1][:, 1, 0].tolist() == x[1, 2:4].tolist()  # prev: the last two ids, oldest first


def test_ngram_buckets_are_the_documented_hash() -> None:
    net = _net("gru", 1, pool=False)
    table = net.ngram.weight[:, 0].detach()
    ids = [5, 7, 9, 7]
    p2, p1, want = 0, 0, []
    for x in ids:  # uni, bi, tri: ((p2 * V + p1) * V + x) mod buckets, start padded with id 0
        bi = (p1 * VOCAB + x) % BUCKETS
        tri = ((p2 * VOCAB + p1) * VOCAB + x) % BUCKETS
        want.append(float(table[x] + table[VOCAB + bi] + table[VOCAB + BUCKETS + tri]))
        p2, p1 = p1, x
    got, prev = net._ngram_weights(torch.tensor([ids]), torch.zeros(2, 1, 1), None)
    assert got[0].tolist() == pytest.approx(want, abs=1e-6)
    assert prev[:, 0, 0].tolist() == [9, 7]
    with torch.no_grad():  # the head reads the mean weight of the n-grams read
        _, state = net(torch.tensor([ids]))
    assert float(state[-2][0, 0, 0]) == pytest.approx(sum(want), abs=1e-5)
    summed = _net("gru", 1, pool=False, ngram_pool="sum")
    with torch.no_grad():  # ... or their sum: logits move by ngram_head * sum, not * sum / 4
        summed.load_state_dict(net.state_dict())
        summed.ngram_head.weight.copy_(torch.tensor([[0.0], [1.0]]))
        net.ngram_head.weight.copy_(torch.tensor([[0.0], [1.0]]))
        gap = summed(torch.tensor([ids]))[0] - net(torch.tensor([ids]))[0]
    assert gap[0].tolist() == pytest.approx([0.0, sum(want) * (1 - 1 / len(ids))], abs=1e-5)


@pytest.mark.parametrize("cell,layers,ngram_pool", [(c, n, "mean") for c, n in CASES] + [("gru", 1, "sum"),
                                                                                           ("lstm", 2, "sum")])
def test_readout_export_parity(cell: str, layers: int, ngram_pool: str) -> None:
    net, spec = tiny_sentiment_net(True, layers, cell, ngram_pool)
    assert spec.readout == Readout(True, 101, 3, ngram_pool)
    seq, step = export_graphs(net, spec)
    assert parity_error(net, seq, step, spec, steps=40) <= FP32_TOLERANCE
    assert padding_error(seq, spec, net.config.vocab) <= 1e-6


def test_int8_readout_keeps_heads_fp32_and_rows_independent() -> None:
    net, spec = tiny_sentiment_net(True, 1, "gru")
    seq, _ = export_graphs(net, spec)
    seq8 = quantize(seq, "gru")
    quantized = {i for n in seq8.graph.node if n.op_type == "DequantizeLinear" for i in n.input}
    assert any("ngram" in name for name in quantized)  # the n-gram table is int8
    assert not any("head" in n.name for n in seq8.graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeLinear"))
    assert padding_error(seq8, spec, net.config.vocab) <= 1e-6  # no batch-wide activation scale


@pytest.mark.training
def test_readout_trains_on_a_frozen_classifier(tmp_path) -> None:
    write_tiny_imdb(tmp_path / "data")
    _train(tmp_path / "data", tmp_path / "base", "--cell", "gru", "--epochs", "1")
    base = load_checkpoint(tmp_path / "base" / "checkpoint.pt")
    _train(tmp_path / "data", tmp_path / "ngram", "--cell", "gru", "--epochs", "4", "--lr", "0.02",
           "--init", str(tmp_path / "base" / "checkpoint.pt"), "--init-lr-scale", "0", "--ngram-buckets", "1009")
    run = load_checkpoint(tmp_path / "ngram" / "checkpoint.pt")
    for name in ("inp.0.weight", "rnn.weight_hh_l0", "head.weight", "head.bias"):  # the head came along, frozen
        assert torch.equal(run.state_dict[name], base.state_dict[name]), name
    assert run.state_dict["ngram.weight"].abs().max() > 0  # the readout learnt
    assert run.metrics["test_accuracy"] >= 0.95
    export_and_check(tmp_path / "ngram" / "checkpoint.pt", tmp_path, Readout(False, 1009, 3))
    # a checkpoint of another shape is one clear error
    assert _fails(tmp_path, "--hidden", "16")


def export_and_check(checkpoint, tmp_path, readout: Readout) -> None:
    """Export a tiny sentiment checkpoint (data in tmp_path/data, files in tmp_path/m); both
    files carry `readout`, tell the tiny reviews apart, and stream as they predict."""
    import export.__main__ as ex
    assert ex.main([str(checkpoint), "--out", str(tmp_path / "m"), "--name", "s",
                    "--data", str(tmp_path / "data")]) == 0
    for precision in ("fp32", "int8"):
        model = Model(tmp_path / "m" / f"s-{precision}.onnx")
        assert model.spec.readout == readout
        texts = ["a great movie , loved it", "awful acting , hated it"]
        probs = model.predict(texts)
        assert probs[0, 1] > 0.5 > probs[1, 1]
        stream = model.text_stream()
        stream.feed(texts[0])
        assert np.abs(stream.finish() - probs[0]).max() <= 1e-5


def _fails(tmp_path, *extra: str) -> bool:
    from train.__main__ import main as train_main
    return train_main(["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "bad"), "--embed", "8",
                       "--min-count", "1", "--init", str(tmp_path / "base" / "checkpoint.pt"), *extra]) == 2


def test_stacking_stages_train_one_part_each(tmp_path) -> None:
    """--holdout, then --ngram-alone, then `train stack`: each stage changes only its own tensors."""
    from train.__main__ import main as train_main
    write_tiny_imdb(tmp_path / "data")
    hold = ["--holdout", "16"]
    _train(tmp_path / "data", tmp_path / "a", "--cell", "gru", "--epochs", "1", *hold)
    _train(tmp_path / "data", tmp_path / "b", "--cell", "gru", "--epochs", "3", "--lr", "0.02", *hold,
           "--init", str(tmp_path / "a" / "checkpoint.pt"), "--ngram-buckets", "1009", "--ngram-alone")
    assert train_main(["stack", "--data", str(tmp_path / "data"), "--init", str(tmp_path / "b" / "checkpoint.pt"),
                       *hold, "--out", str(tmp_path / "c")]) == 0
    a, b, c = (load_checkpoint(tmp_path / s / "checkpoint.pt") for s in "abc")
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)  # b kept a ...
    assert b.state_dict["ngram.weight"].abs().max() > 0  # ... and trained the n-grams alone
    assert b.metrics["test_accuracy"] >= 0.95  # the n-grams alone separate the tiny reviews
    heads = {"head.weight", "head.bias", "ngram_head.weight"}
    assert all(torch.equal(b.state_dict[k], c.state_dict[k]) for k in b.state_dict if k not in heads)
    w = c.stack
    assert w["holdout_reviews"] == 16 and w["alpha"] > 0 and w["beta"] > 0
    assert torch.allclose(c.state_dict["head.weight"], w["alpha"] * b.state_dict["head.weight"])
    assert torch.allclose(c.state_dict["ngram_head.weight"], w["beta"] * b.state_dict["ngram_head.weight"])
    assert c.metrics["test_accuracy"] >= 0.95 and c.config == b.config
    bad = ["sentiment", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x"), "--min-count", "1"]
    assert train_main([*bad, "--ngram-alone"]) == 2  # needs --ngram-buckets
    assert train_main([*bad, "--ngram-alone", "--ngram-buckets", "7", "--anytime", "0.5"]) == 2
    assert train_main([*bad, "--holdout", "100000"]) == 2  # more than the training split
    assert train_main(["stack", "--data", str(tmp_path / "data"), "--init", str(tmp_path / "a" / "checkpoint.pt"),
                       *hold, "--out", str(tmp_path / "y")]) == 2  # no n-gram readout to stack
    # the fitted weights applied as they are to another model with a readout (the refit on every review)
    stack_cmd = ["stack", "--data", str(tmp_path / "data"), "--init", str(tmp_path / "b" / "checkpoint.pt")]
    assert train_main([*stack_cmd, "--weights", str(tmp_path / "c" / "checkpoint.pt"),
                       "--out", str(tmp_path / "d")]) == 0
    d = load_checkpoint(tmp_path / "d" / "checkpoint.pt")
    assert all(torch.equal(c.state_dict[k], d.state_dict[k]) for k in c.state_dict)  # same fold as c
    assert d.stack["applied_from"] == str(tmp_path / "c" / "checkpoint.pt")
    assert train_main([*stack_cmd, "--out", str(tmp_path / "e")]) == 2  # neither --holdout nor --weights
    assert train_main([*stack_cmd, "--weights", str(tmp_path / "none.pt"), "--out", str(tmp_path / "e")]) == 2
    assert train_main([*bad, "--init", str(tmp_path / "none.pt")]) == 2  # a missing checkpoint: one line
    assert train_main([*stack_cmd, "--weights", str(tmp_path / "b" / "checkpoint.pt"),
                       "--out", str(tmp_path / "e")]) == 2


def test_holdout_is_a_fixed_pick() -> None:
    from train.tasks import TokenData
    data = TokenData([np.array([i + 2]) for i in range(10)], np.arange(10) % 2)
    rest, held = data.split_holdout(3)
    _, again_held = data.split_holdout(3)
    assert len(rest) == 7 and len(held) == 3
    ids = sorted(int(s[0]) for s in rest.seqs + held.seqs)
    assert ids == list(range(2, 12))  # a partition of the examples
    assert [s.tolist() for s in held.seqs] == [s.tolist() for s in again_held.seqs]


def test_stack_weights_recover_a_known_mixture() -> None:
    """Labels drawn from softmax(2 * head + 0.5 * ngrams + bias): the fit finds those weights."""
    from train.stack import fit_weights
    gen = torch.Generator().manual_seed(0)
    head, ngrams = torch.randn(40_000, 2, generator=gen), torch.randn(40_000, 2, generator=gen)
    bias = torch.tensor([0.3, -0.3])
    probs = torch.softmax(2.0 * head + 0.5 * ngrams + bias, 1)
    labels = torch.multinomial(probs, 1, generator=gen)[:, 0]
    alpha, beta, fitted = fit_weights(head, ngrams, labels)
    assert alpha == pytest.approx(2.0, abs=0.1) and beta == pytest.approx(0.5, abs=0.05)
    assert float(fitted[0] - fitted[1]) == pytest.approx(0.6, abs=0.06)  # only the difference is identified
