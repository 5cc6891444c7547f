"""train.ensemble: short-text branches averaged, folded exactly into one wider branch."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.train.test_sentiment import _train, write_tiny_imdb
from train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from train.ensemble import BRANCH, fold_branches
from train.models import NetConfig, RecurrentNet, build

VOCAB = 40
INPUT = {"kind": "words", "vocab": [f"w{i}" for i in range(VOCAB - 2)]}


def _member(cell: str, short: int, seed: int) -> Checkpoint:
    """The same main model (seed 0) with a branch of `short` units drawn from `seed`."""
    torch.manual_seed(0)
    config = NetConfig(cell, 8, 6, 1, 2, vocab=VOCAB, ngram_buckets=101, ngram_pool="sum", short_hidden=short,
                       short_words=3.0)
    net = build(config)
    gen = torch.Generator().manual_seed(seed)
    main = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():  # the same order in every member
            p.copy_(torch.randn(p.shape, generator=gen if name in BRANCH else main) * 0.5)
    ckpt = Checkpoint.new("sentiment", ("negative", "positive"), INPUT, config.to_dict())
    return replace(ckpt, state_dict=net.state_dict(), train_args={"seed": seed}, train_seconds=1.0)


def _net(ckpt: Checkpoint) -> RecurrentNet:
    net = build(ckpt.net_config()).eval()
    net.load_state_dict(ckpt.state_dict)
    return net


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_the_folded_branch_gives_the_mean_of_the_members_logits(cell: str) -> None:
    members = [_member(cell, 5, 1), _member(cell, 3, 2), _member(cell, 5, 3)]
    folded = fold_branches(members, [Path(f"m{i}") for i in range(3)])
    assert folded.config["short_hidden"] == 13 and folded.train_args["ensemble"] == ["m0", "m1", "m2"]
    assert folded.train_seconds == 3.0 and folded.train_args["members"] == [{"seed": 1}, {"seed": 2}, {"seed": 3}]
    nets, one = [_net(m) for m in members], _net(folded)
    x = torch.randint(2, VOCAB, (4, 11))
    lengths = torch.tensor([11, 6, 2, 1])
    with torch.no_grad():
        mean = torch.stack([n(x, None, lengths)[0] for n in nets]).mean(0)
        got = one(x, None, lengths)[0]
        assert torch.allclose(got, mean, atol=1e-5), (got - mean).abs().max()
        assert not torch.allclose(nets[0](x, None, lengths)[0], mean, atol=1e-3)  # the members do differ
        every = torch.stack([n.every_step(x) for n in nets]).mean(0)  # (B, T, C): short texts, then long
        assert torch.allclose(one.every_step(x), every, atol=1e-5)
        state = one.initial_state(1)
        for t in range(11):  # the step graph's cell, one word at a time
            y, state = one.step(x[:1, t], state)
            assert torch.allclose(y[0], every[0, t], atol=1e-5)


def test_members_must_share_everything_but_their_branch() -> None:
    a, b = _member("gru", 5, 1), _member("gru", 5, 2)
    with pytest.raises(CheckpointError, match="two checkpoints or more"):
        fold_branches([a], [Path("a")])
    other = {**b.state_dict, "head.weight": b.state_dict["head.weight"] + 1e-3}
    with pytest.raises(CheckpointError, match=r"differ in head\.weight: give branches trained from the same --init"):
        fold_branches([a, replace(b, state_dict=other)], [Path("a"), Path("b")])
    with pytest.raises(CheckpointError, match="not the same model as a outside its branch"):
        fold_branches([a, replace(b, input={**INPUT, "vocab": INPUT["vocab"][::-1]})], [Path("a"), Path("b")])
    plain = replace(a, config={**a.config, "short_hidden": 0})
    with pytest.raises(CheckpointError, match="b has no short-text branch"):
        fold_branches([a, plain], [Path("a"), Path("b")])


def test_train_ensemble_writes_a_checkpoint_that_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import export.__main__ as ex
    from edgeinfer import Model
    from train.__main__ import main as train_main

    data = tmp_path / "data"
    write_tiny_imdb(data)
    _train(data, tmp_path / "base", "--cell", "gru", "--epochs", "2")
    for seed in (1, 2):
        _train(data, tmp_path / f"b{seed}", "--init", str(tmp_path / "base" / "checkpoint.pt"), "--short-branch", "4",
               "--short", "2", "--epochs", "1", "--seed", str(seed))
    runs = [str(tmp_path / f"b{seed}" / "checkpoint.pt") for seed in (1, 2)]
    assert train_main(["ensemble", "--init", *runs, "--data", str(data), "--out", str(tmp_path / "e")]) == 0
    assert "2 branches of [4, 4] units folded into 8" in capsys.readouterr().err
    folded = load_checkpoint(tmp_path / "e" / "checkpoint.pt")
    assert folded.config["short_hidden"] == 8 and 0.0 <= folded.metrics["test_accuracy"] <= 1.0
    assert ex.main([str(tmp_path / "e" / "checkpoint.pt"), "--out", str(tmp_path / "m"), "--name", "s",
                    "--data", str(data), "--no-int8"]) == 0  # the parity gate passes on the folded branch
    spec = Model(tmp_path / "m" / "s-fp32.onnx").spec
    assert spec.readout.short_hidden == 8
    assert spec.metrics["test_accuracy"] == pytest.approx(folded.metrics["test_accuracy"])  # the same measure
    # a member that is not one: one line, exit code 2
    save_checkpoint(tmp_path / "x.pt", replace(folded, config={**folded.config, "short_hidden": 0}))
    assert train_main(["ensemble", "--init", runs[0], str(tmp_path / "x.pt"), "--data", str(data),
                       "--out", str(tmp_path / "f")]) == 2
    assert "has no short-text branch" in capsys.readouterr().err and not (tmp_path / "f" / "checkpoint.pt").exists()
