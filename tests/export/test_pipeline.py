"""The export pipeline: one-line failures, evaluation from the checkpoint's own settings, outputs by name."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import export.gates as gates
import export.pipeline as pipeline
from edgeinfer import Model
from edgeinfer.preprocess.image import normalize
from edgeinfer.preprocess.text import CharTokenizer
from edgeinfer.spec import CharInput, ImageInput
from edgeinfer_export.quantize import head_nodes
from export.__main__ import main
from export.graphs import export_graphs
from export.parity import FP32_TOLERANCE, padding_error, parity_error
from tests.export.checkpoints import (
    characters_checkpoint,
    characters_net,
    digits_checkpoint,
    digits_net,
    write_checkpoint,
    write_mnist_test,
)
from tests.nets import tiny_sentiment_net, tiny_spec
from train.tasks import char_corpus

ROOT = Path(__file__).resolve().parents[2]


def failure(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `python -m export ARGS` in-process; it must fail with exit code 1 and one `error:` line,
    the last on stderr, and no traceback. Returns that line."""
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize("kind", ["random", "directory"])
def test_cli_failure_is_one_line_and_exit_1(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "random.bin"
    if kind == "random":
        target.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:
        target.mkdir()
    out = subprocess.run([sys.executable, "-m", "export", str(target), "--out", str(tmp_path / "x"), "--name", "y"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"error: {target}: "), out.stderr
    assert "a directory" in out.stderr if kind == "directory" else "not a checkpoint" in out.stderr
    assert not (tmp_path / "x").exists()


def test_bad_checkpoints_and_data_are_one_line_errors(tmp_path: Path, capsys) -> None:
    out = ["--out", tmp_path / "m", "--name", "t", "--data", tmp_path / "data"]
    assert "no such checkpoint" in failure(capsys, tmp_path / "missing.pt", *out)
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "not a checkpoint" in failure(capsys, tmp_path / "empty.pt", *out)
    good = digits_checkpoint(tmp_path / "good.pt", digits_net())
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "not a checkpoint" in failure(capsys, tmp_path / "truncated.pt", *out)
    lm = write_checkpoint(tmp_path / "lm.pt", characters_net(("a", "b")), "sentiment-lm", ("negative", "positive"),
                          asdict(CharInput(vocab=("a", "b"))))
    assert "task 'sentiment-lm' cannot be exported" in failure(capsys, lm, *out)
    # weights of another shape than the configuration says
    other = write_checkpoint(tmp_path / "other.pt", digits_net(), "digits", tuple("0123456789"),
                             asdict(ImageInput()), config={**digits_net().config.to_dict(), "hidden": 8})
    assert "the weights do not fit" in failure(capsys, other, *out)
    # a checkpoint whose input spec the runtime refuses
    odd = write_checkpoint(tmp_path / "odd.pt", digits_net(), "digits", tuple("0123456789"), {"kind": "video"})
    assert "does not describe a valid model" in failure(capsys, odd, *out)
    (tmp_path / "file").write_text("")
    assert "not a folder" in failure(capsys, good, "--out", tmp_path / "file", "--name", "t")
    # no data: fails before anything is exported or written
    assert "MNIST files missing" in failure(capsys, good, *out)
    assert not (tmp_path / "m").exists()


def test_digits_are_evaluated_with_the_checkpoints_normalisation(tmp_path: Path, capsys) -> None:
    """The test images are scaled and normalised as the checkpoint's input spec says: labelled with
    what the net predicts under that normalisation, the export measures 100%."""
    image = ImageInput(scale=1 / 255, mean=0.6, std=0.15)
    net = digits_net(seed=3)
    images = np.random.default_rng(0).integers(0, 256, (48, 28, 28)).astype(np.uint8)
    with torch.no_grad():
        own = net(torch.from_numpy(normalize(images / 255, image)))[0].argmax(1).numpy()
        default = net(torch.from_numpy(normalize(images / 255, ImageInput())))[0].argmax(1).numpy()
    assert (own != default).mean() > 0.2  # the defaults would give another accuracy
    write_mnist_test(tmp_path / "data", images, own)
    data = gates.digits_test_data(tmp_path / "data", image)
    np.testing.assert_allclose(data.x.numpy(), (images / 255 - 0.6) / 0.15, rtol=1e-5, atol=1e-5)

    ckpt = digits_checkpoint(tmp_path / "c.pt", net, image)
    assert main([str(ckpt), "--out", str(tmp_path / "m"), "--name", "d", "--data", str(tmp_path / "data"),
                 "--no-int8"]) == 0
    spec = Model(tmp_path / "m" / "d-fp32.onnx").spec
    assert spec.input == image
    assert spec.metrics["test_accuracy"] == 1.0 and spec.metrics["test_images"] == 48
    assert "fp32 test accuracy 100.0000% on 48 examples" in capsys.readouterr().err


TEXT_ALPHABET = "abcdefgh ,.\n"


def _text(path: Path, n: int = 2400) -> Path:
    rng = np.random.default_rng(0)
    path.write_text("".join(rng.choice(list(TEXT_ALPHABET), n)), encoding="utf-8")
    return path


def _reference_loss(net: torch.nn.Module, ids: np.ndarray, rows: int = 16) -> float:
    """Validation loss as the gate defines it, computed by torch: `rows` slices from the initial state."""
    n = len(ids) // rows
    grid = torch.from_numpy(ids[: n * rows].reshape(rows, n))
    with torch.no_grad():
        logits = net.every_step(grid[:, :-1])
    return float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), grid[:, 1:].reshape(-1)))


def test_characters_export_uses_the_checkpoint_vocabulary(tmp_path: Path, capsys) -> None:
    text = _text(tmp_path / "text.txt")
    vocab = tuple(sorted(set(TEXT_ALPHABET), reverse=True))  # not the order a rebuild from the file gives
    net = characters_net(vocab, cell="lstm")
    ckpt = characters_checkpoint(tmp_path / "c.pt", net, vocab, text)
    assert main([str(ckpt), "--out", str(tmp_path / "m"), "--name", "c"]) == 0
    assert "warning" not in capsys.readouterr().err

    raw = text.read_text(encoding="utf-8")
    ids = np.array(CharTokenizer(CharInput(vocab=vocab)).encode(raw[int(len(raw) * 0.9):]), np.int64)
    assert not np.array_equal(ids, char_corpus(text)[2])  # a vocabulary rebuilt from the file differs
    fp32, int8 = (Model(tmp_path / "m" / f"c-{p}.onnx").spec for p in ("fp32", "int8"))
    assert set(fp32.metrics) == {"val_loss", "val_chars", "parity_max_abs_err"}
    assert set(int8.metrics) == {"val_loss", "val_chars", "fp32_val_loss", "parity_max_abs_err",
                                 "seq_per_s_b256_fused", "seq_per_s_b256_decomposed"}  # export.regime measured
    assert fp32.metrics["val_chars"] == len(ids) and fp32.input.vocab == vocab
    assert fp32.metrics["val_loss"] == pytest.approx(_reference_loss(net, ids), abs=1e-5)
    assert int8.metrics["fp32_val_loss"] == fp32.metrics["val_loss"]
    assert abs(int8.metrics["val_loss"] - fp32.metrics["val_loss"]) <= gates.MAX_INT8_LOSS_RISE


def test_characters_refuses_a_changed_text_and_warns_when_unverifiable(tmp_path: Path, capsys) -> None:
    text = _text(tmp_path / "text.txt")
    vocab = tuple(sorted(set(TEXT_ALPHABET)))
    net = characters_net(vocab)
    verified = characters_checkpoint(tmp_path / "v.pt", net, vocab, text)
    older = characters_checkpoint(tmp_path / "o.pt", net, vocab, text, verified=False)
    text.write_text(text.read_text(encoding="utf-8") + "XYZ!?", encoding="utf-8")  # 5 unknown characters
    line = failure(capsys, verified, "--out", tmp_path / "m", "--name", "c")
    assert "the text changed since training" in line and str(text) in line
    assert not (tmp_path / "m").exists()

    assert main([str(older), "--out", str(tmp_path / "m"), "--name", "c", "--no-int8"]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "could not be verified" in err and "(5 characters outside it)" in err
    ids = gates.validation_ids(pipeline.read_checkpoint(older), CharInput(vocab=vocab))
    assert (ids == 1).sum() == 5  # the unknown id
    capsys.readouterr()

    text.unlink()
    assert "cannot read the checkpoint's training text" in failure(capsys, verified, "--out", tmp_path / "m",
                                                                   "--name", "c")


def test_a_failing_int8_gate_leaves_only_the_fp32_file(tmp_path: Path, capsys, monkeypatch) -> None:
    text = _text(tmp_path / "text.txt")
    vocab = tuple(sorted(set(TEXT_ALPHABET)))
    ckpt = characters_checkpoint(tmp_path / "c.pt", characters_net(vocab), vocab, text)
    monkeypatch.setattr(gates, "MAX_INT8_LOSS_RISE", -1.0)  # no int8 model can pass this gate
    line = failure(capsys, ckpt, "--out", tmp_path / "m", "--name", "c")
    assert line.endswith("(limit -1.0); int8 model not written")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["c-fp32.onnx"]


def _reversed_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` that lists its outputs in reverse order (the nodes are unchanged)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    outputs = list(out.graph.output)
    del out.graph.output[:]
    out.graph.output.extend(reversed(outputs))
    return out


def test_graph_outputs_are_read_by_name() -> None:
    net = digits_net("lstm")
    spec = tiny_spec(net)
    seq, step = export_graphs(net, spec)
    seq_r, step_r = _reversed_outputs(seq), _reversed_outputs(step)
    assert [o.name for o in step_r.graph.output] == ["p", "c_next", "h_next", "y"]
    err = parity_error(net, seq, step, spec, steps=12)
    assert parity_error(net, seq_r, step_r, spec, steps=12) == err <= FP32_TOLERANCE
    assert head_nodes(step_r, spec.io.output) == head_nodes(step, spec.io.output) != []

    token_net, token_spec = tiny_sentiment_net(readout=True, layers=1)
    tseq, _ = export_graphs(token_net, token_spec)
    assert padding_error(_reversed_outputs(tseq), token_spec, token_net.config.vocab) == padding_error(
        tseq, token_spec, token_net.config.vocab) <= 1e-6


def test_export_with_reordered_outputs_gives_the_same_metrics(tmp_path: Path, monkeypatch) -> None:
    text = _text(tmp_path / "text.txt")
    vocab = tuple(sorted(set(TEXT_ALPHABET)))
    ckpt = characters_checkpoint(tmp_path / "c.pt", characters_net(vocab, cell="lstm"), vocab, text)
    told = ["--sequence-graph", "fused"]  # measured throughputs would differ between the two runs
    assert main([str(ckpt), "--out", str(tmp_path / "a"), "--name", "c", *told]) == 0

    def reordered(net, spec):
        return tuple(_reversed_outputs(g) for g in export_graphs(net, spec))

    monkeypatch.setattr(pipeline, "export_graphs", reordered)
    assert main([str(ckpt), "--out", str(tmp_path / "b"), "--name", "c", *told]) == 0
    for precision in ("fp32", "int8"):
        a, b = (Model(tmp_path / d / f"c-{precision}.onnx").spec.metrics for d in "ab")
        assert a == pytest.approx(b, abs=1e-6)
