"""`train ngrams`: the count matrix is the readout's own hashing, the NB ratios and the logistic
fit are what they claim, and the stage writes a model that exports and streams."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from edgeinfer.spec import Readout
from tests.conftest import run_cli
from tests.train.test_readout import export_and_check
from tests.train.test_sentiment import _train, write_tiny_imdb
from train.checkpoint import load_checkpoint, save_checkpoint
from train.models import NetConfig, build
from train.ngrams import count_matrix, fit_logistic, log_count_ratio
from train.tasks import TokenData

VOCAB, BUCKETS = 40, 53


def _sum_net():
    torch.manual_seed(0)
    net = build(NetConfig("gru", 8, 6, 1, 2, vocab=VOCAB, ngram_buckets=BUCKETS, ngram_pool="sum")).eval()
    with torch.no_grad():
        net.ngram.weight.normal_()
        net.ngram_head.weight.copy_(torch.tensor([[-0.5], [0.5]]))
    return net


def test_count_matrix_is_what_the_readout_sums() -> None:
    """counts @ table equals the summed readout of each review, read padded in a batch or streamed."""
    net = _sum_net()
    gen = np.random.default_rng(0)
    seqs = [gen.integers(1, VOCAB, size=n) for n in (1, 2, 7, 30)] + [np.array([5, 5, 5, 5])]  # repeats count
    data = TokenData(seqs, np.array([0, 1, 0, 1, 1]))
    counts = count_matrix(net, data)
    assert counts.shape == (5, VOCAB + 2 * BUCKETS)
    assert counts.to_dense().sum(1).tolist() == [3.0 * len(s) for s in seqs]  # 3 n-grams end at each word
    assert counts.to_dense()[4, 5] == 4.0  # the unigram 5, four times
    want = (counts @ net.ngram.weight.detach().double())[:, 0]
    inputs, _ = data.batch(torch.arange(5))
    with torch.no_grad():
        alone = net.ngram_logits(**inputs)
    assert (alone[:, 1] - alone[:, 0]).double().tolist() == pytest.approx(want.tolist(), abs=1e-4)
    with torch.no_grad():
        state = net.initial_state(1)
        for word in seqs[3]:
            _, state = net.step(torch.tensor([int(word)]), state)
    assert float(state[-2][0, 0, 0]) == pytest.approx(float(want[3]), abs=1e-4)  # ngram_sum, streamed


def test_log_count_ratio_by_hand() -> None:
    """Each review counts once per n-gram, add-one smoothed, normalised per class."""
    counts = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 1.0]]).to_sparse_csr()
    labels = torch.tensor([1, 1, 0])
    p = torch.tensor([1 + 1, 1 + 2, 1 + 0], dtype=torch.float64)  # positive reviews containing each column
    q = torch.tensor([1 + 0, 1 + 1, 1 + 1], dtype=torch.float64)
    want = torch.log(p / p.sum()) - torch.log(q / q.sum())
    assert torch.allclose(log_count_ratio(counts.double(), labels), want)


def test_fit_logistic_reaches_the_regularised_optimum() -> None:
    """At the returned weights the objective's gradient vanishes, and labels follow the telling columns."""
    gen = torch.Generator().manual_seed(0)
    dense = (torch.rand(400, 30, generator=gen) < 0.2).double() * torch.randint(1, 3, (400, 30), generator=gen)
    truth = torch.zeros(30, dtype=torch.float64)
    truth[:3], truth[3:6] = 2.0, -2.0
    labels = ((dense @ truth + 0.3 * torch.randn(400, generator=gen, dtype=torch.float64)) > 0).long()
    counts = dense.to_sparse_csr()
    scale = log_count_ratio(counts, labels)
    weights, bias, report = fit_logistic(counts, labels, scale, c=0.5)
    v = weights / scale
    sign = labels.double() * 2 - 1
    margin = sign * (dense @ weights + bias)
    g = -0.5 * sign * torch.sigmoid(-margin)
    assert (v + scale * (dense.t() @ g)).abs().max() <= 1e-4 and abs(float(g.sum())) <= 1e-4
    assert report["evaluations"] >= 2
    clear = (dense @ truth).abs() >= 2  # the reviews whose label the telling columns decide
    assert ((dense @ weights + bias > 0).long() == labels)[clear].double().mean() >= 0.97
    assert weights[:3].min() > 0 > weights[3:6].max()


@pytest.mark.training
def test_ngrams_stage_then_stack_then_export(tmp_path) -> None:
    """`train ngrams` keeps the classifier, fits a summed n-gram readout; stack and export take it."""
    from train.__main__ import main as train_main
    write_tiny_imdb(tmp_path / "data")
    hold = ["--holdout", "16"]
    _train(tmp_path / "data", tmp_path / "a", "--cell", "gru", "--epochs", "1", *hold)
    stage = ["ngrams", "--data", str(tmp_path / "data"), "--threads", "1", *hold]
    assert train_main([*stage, "--init", str(tmp_path / "a" / "checkpoint.pt"), "--ngram-buckets", "1009",
                       "--out", str(tmp_path / "b")]) == 0
    a, b = (load_checkpoint(tmp_path / s / "checkpoint.pt") for s in "ab")
    assert b.config["ngram_pool"] == "sum" and b.config["ngram_buckets"] == 1009
    for name, tensor in a.state_dict.items():
        if name != "head.bias":  # the regression's intercept is added to the head's bias
            assert torch.equal(b.state_dict[name], tensor), name
    shift = b.state_dict["head.bias"] - a.state_dict["head.bias"]
    assert float(shift[1] + shift[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(shift[1] - shift[0]) == pytest.approx(b.ngrams["intercept"], abs=1e-5)
    m = b.metrics
    assert m["ngram_test_accuracy"] >= 0.95 and m["ngram_train_accuracy"] >= 0.95 and "ngram_holdout_accuracy" in m
    assert b.ngrams["reviews"] == 64 and b.ngrams["holdout_reviews"] == 16
    assert train_main(["stack", "--data", str(tmp_path / "data"), "--init", str(tmp_path / "b" / "checkpoint.pt"),
                       *hold, "--out", str(tmp_path / "c")]) == 0
    export_and_check(tmp_path / "c" / "checkpoint.pt", tmp_path, Readout(False, 1009, 3, "sum"))
    info = run_cli("info", str(tmp_path / "m" / "s-int8.onnx"))
    assert "the head also reads the summed weights of the hashed word 1-3-grams (1,009 buckets" in info.stdout
    # clear errors (exit 2): a missing checkpoint, a checkpoint of another task, no buckets
    assert train_main([*stage, "--init", str(tmp_path / "none.pt"), "--ngram-buckets", "7",
                       "--out", str(tmp_path / "x")]) == 2
    lm = tmp_path / "lm.pt"
    save_checkpoint(lm, replace(a, task="sentiment-lm"))
    assert train_main([*stage, "--init", str(lm), "--ngram-buckets", "7", "--out", str(tmp_path / "x")]) == 2
    assert train_main([*stage, "--init", str(tmp_path / "a" / "checkpoint.pt"), "--ngram-buckets", "0",
                       "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
