"""Users' own modules, defined here (nothing from train/), exported through the public API and run.

Each module is exported with `edgeinfer_export.export`, loaded with `edgeinfer.load`, and checked
against PyTorch: whole sequences (`predict`), every step (`Stream.step`), `feed`, `StreamBatch`
and snapshots, fp32 within 1e-5 (answers: probabilities or values), in Python and in node with
the JavaScript runtime.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import edgeinfer
import edgeinfer_export as ee
from edgeinfer_export.errors import ExportError
from tests.conftest import ROOT

TOL = 1e-5
RNNS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
VOCAB = ["good", "bad", "not", "very", "movie", "plot", "!"]
MEAN, STD = [0.5, -1.0, 2.0, 0.0], [2.0, 0.5, 1.0, 3.0]


class FeatureNet(nn.Module):
    """Float features -> RNN/LSTM/GRU -> (ReLU-Linear ->) Linear, at the last step or every step."""

    def __init__(self, cell: str, layers: int, batch_first: bool, per: str, outputs: int, deep_head: bool = False,
                 nonlinearity: str = "tanh") -> None:
        super().__init__()
        kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = RNNS[cell](4, 12, num_layers=layers, batch_first=batch_first, **kwargs)
        self.head = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, outputs)) if deep_head else \
            nn.Linear(12, outputs)
        self.batch_first, self.per = batch_first, per

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x if self.batch_first else x.transpose(0, 1))
        out = out if self.batch_first else out.transpose(0, 1)
        return self.head(out) if self.per == "step" else self.head(out[:, -1])


class TokenNet(nn.Module):
    """Token ids -> Embedding -> RNN/LSTM/GRU -> Linear."""

    def __init__(self, cell: str, layers: int, per: str, outputs: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(len(VOCAB) + 2, 6)
        self.rnn = RNNS[cell](6, 10, num_layers=layers, batch_first=True)
        self.out = nn.Linear(10, outputs)
        self.per = per

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(x))
        return self.out(out) if self.per == "step" else self.out(out[:, -1])


class ProtocolNet(nn.Module):
    """A module following the streaming protocol: initial_state and forward(x, state) -> (y, state)."""

    state_names = ("h1", "h2")

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.GRU(4, 8, batch_first=True)
        self.b = nn.GRU(8, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        return [torch.zeros(1, batch, 8), torch.zeros(1, batch, 6)]

    def forward(self, x: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out, h1 = self.a(x, state[0])
        out, h2 = self.b(out, state[1])
        return self.fc(out[:, -1]), [h1, h2]


CASES = [  # id, cell, layers, input, per, output, batch_first, deep head
    ("rnn1-features-seq-classes", "rnn", 1, "features", "sequence", "classes", True, False),
    ("rnn2-tokens-step-values", "rnn", 2, "tokens", "step", "values", True, False),
    ("rnn1-relu-features-step-classes", "rnn-relu", 1, "features", "step", "classes", False, False),
    ("lstm1-tokens-seq-classes", "lstm", 1, "tokens", "sequence", "classes", True, False),
    ("lstm2-features-step-values", "lstm", 2, "features", "step", "values", False, True),
    ("lstm1-features-seq-values", "lstm", 1, "features", "sequence", "values", True, False),
    ("gru1-features-step-classes", "gru", 1, "features", "step", "classes", True, True),
    ("gru2-features-seq-classes", "gru", 2, "features", "sequence", "classes", False, False),
    ("gru2-tokens-seq-values", "gru", 2, "tokens", "sequence", "values", True, False),
    ("gru1-tokens-step-classes", "gru", 1, "tokens", "step", "classes", True, False),
]


def build(case: tuple) -> tuple[nn.Module, ee.Features | ee.Words, ee.Classes | ee.Values]:
    _, cell, layers, kind, per, out, batch_first, deep = case
    torch.manual_seed(len(case[0]))
    n_out = 3 if out == "classes" else 2
    output = ee.Classes(["walk", "run", "sit"]) if out == "classes" else ee.Values(["speed", "heading"])
    if kind == "features":
        base, nl = (cell.split("-")[0], "relu") if cell.endswith("relu") else (cell, "tanh")
        module: nn.Module = FeatureNet(base, layers, batch_first, per, n_out, deep, nl)
        return module, ee.Features(4, mean=MEAN, std=STD, names=["ax", "ay", "az", "g"]), output
    return TokenNet(cell, layers, per, n_out), ee.Words(VOCAB), output


def raw_features(rng: np.random.Generator, n: int, t: int) -> np.ndarray:
    return (rng.standard_normal((n, t, 4)) * np.array(STD) + np.array(MEAN)).astype(np.float32)


def torch_answers(module: nn.Module, x: np.ndarray, tokens: bool, classes: bool) -> np.ndarray:
    """The module's answers on raw inputs (normalised as the file says), probabilities or values."""
    arr = x if tokens else ((x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).astype(np.float32)
    with torch.no_grad():
        y = module(torch.from_numpy(arr))
    return (torch.softmax(y, -1) if classes else y).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, nn.Module, tuple]]:
    folder = tmp_path_factory.mktemp("user-models")
    rng = np.random.default_rng(0)
    out = {}
    for case in CASES:
        module, inp, output = build(case)
        example = raw_features(rng, 6, 9) if isinstance(inp, ee.Features) else rng.integers(2, len(VOCAB) + 2, (6, 9))
        got = ee.export(module, folder / f"{case[0]}.onnx", input=inp, output=output, example=example)
        assert got.parity_max_abs_err <= TOL
        out[case[0]] = (got.path, module, case)
    return out


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_runs_like_pytorch(exported: dict, case: str) -> None:
    path, module, spec_case = exported[case]
    tokens, classes, per_step = spec_case[3] == "tokens", spec_case[5] == "classes", spec_case[4] == "step"
    model = edgeinfer.load(path)
    spec = model.spec
    assert (spec.input.kind, spec.output.kind, spec.output.per) == (
        "words" if tokens else "features", spec_case[5], spec_case[4])
    assert spec.format_version == 8 and spec.labels == (("walk", "run", "sit") if classes else ("speed", "heading"))
    rng = np.random.default_rng(1)
    x = rng.integers(2, len(VOCAB) + 2, (3, 7)) if tokens else raw_features(rng, 3, 7)
    want = torch_answers(module, x, tokens, classes)  # (3, C) or (3, 7, C)

    # whole sequences: the sequence graph
    got = model.predict_logits(x) if tokens else model.predict(x)
    if tokens:
        got = spec.answers(got)
    assert got.shape == want.shape and np.abs(got - want).max() <= TOL

    # every step, one row at a time: the step graph, against PyTorch on each prefix
    stream = model.stream()
    steps = np.stack([stream.step(int(v) if tokens else v) for v in x[0]])  # (7, C)
    prefix = want[0] if per_step else np.stack([torch_answers(module, x[:1, : t + 1], tokens, classes)[0]
                                                 for t in range(7)])
    assert np.abs(steps - prefix).max() <= TOL

    # feed: the sequence graph with the stream's state, in two chunks
    fed = model.stream()
    fed.feed(x[0, :3])
    assert np.abs(fed.feed(x[0, 3:]) - prefix[-1]).max() <= TOL
    assert np.abs(fed.trace(x[0, :2]) - stream.trace(x[0, :2])).max() <= TOL  # both continue alike

    # snapshots: half way, restored into a new stream, the rest read there
    half = model.stream()
    for v in x[1, :4]:
        half.step(int(v) if tokens else v)
    resumed = model.stream()
    resumed.restore(edgeinfer.Snapshot.from_bytes(half.snapshot().to_bytes()))
    last = [resumed.step(int(v) if tokens else v) for v in x[1, 4:]][-1]
    want_last = want[1, -1] if per_step else want[1]
    assert np.abs(last - want_last).max() <= TOL

    # StreamBatch: three streams stepped together equal each alone
    batch = model.stream_batch()
    streams = [batch.open() for _ in range(3)]
    for t in range(7):
        together = batch.step(streams, x[:, t])
    want_rows = want[:, -1] if per_step else want
    assert np.abs(together - want_rows).max() <= TOL


def test_protocol_module_and_int8(tmp_path: Path) -> None:
    """A module following the streaming protocol exports as it is (its own state names), and int8
    with the user's validation data passes the default accuracy gate."""
    torch.manual_seed(3)
    module = ProtocolNet().eval()
    rng = np.random.default_rng(2)
    x = raw_features(rng, 64, 12)
    got = ee.export(module, tmp_path / "p.onnx", input=ee.Features(4, mean=MEAN, std=STD),
                    output=ee.Classes(["no", "yes"]), example=x[:4])
    model = edgeinfer.load(got.path)
    assert [s.name for s in model.spec.state] == ["h1", "h2"]
    norm = ((x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).astype(np.float32)
    with torch.no_grad():
        y, _ = module(torch.from_numpy(norm), module.initial_state(64))
    want = torch.softmax(y, -1).numpy()
    assert np.abs(model.predict(x) - want).max() <= TOL
    labels = want.argmax(1)
    q = ee.export(module, tmp_path / "p8.onnx", input=ee.Features(4, mean=MEAN, std=STD),
                  output=ee.Classes(["no", "yes"]), example=x[:4], int8=ee.Int8((x, labels), max_drop=0.05))
    m8 = edgeinfer.load(q.path)
    assert m8.spec.precision == "int8" and q.metrics["accuracy"] >= 0.95 and q.metrics["fp32_accuracy"] == 1.0
    assert np.abs(m8.predict(x) - want).max() <= 0.05


@pytest.mark.parametrize(("cell", "form"), [("lstm", "measure"), ("gru", "decomposed")])
def test_int8_values_gate_refuses_and_writes_nothing(tmp_path: Path, cell: str, form: str) -> None:
    """int8 of a values model is gated on mean squared error; a gate it cannot meet writes nothing
    and says by how much it missed. (A GRU is int8 only in the decomposed form: onnxruntime has no
    int8 GRU kernel.)"""
    torch.manual_seed(4)
    module = FeatureNet(cell, 1, True, "sequence", 2).eval()
    rng = np.random.default_rng(5)
    x = raw_features(rng, 32, 10)
    targets = torch_answers(module, x, False, False)
    inp, out = ee.Features(4, mean=MEAN, std=STD), ee.Values(["a", "b"])
    ok = ee.export(module, tmp_path / "ok.onnx", input=inp, output=out,
                   int8=ee.Int8((x, targets), max_drop=1e-3, sequence_graph=form))
    assert ok.metrics["mean_squared_error"] > 0
    assert ok.metrics["fp32_mean_squared_error"] <= 1e-10 and ok.metrics["mean_squared_error"] <= 1e-3
    with pytest.raises(ExportError, match=r"int8 mean_squared_error .* worse than fp32's .* by .* more than max_drop"):
        ee.export(module, tmp_path / "no.onnx", input=inp, output=out,
                  int8=ee.Int8((x, targets), max_drop=0.0, sequence_graph=form))
    assert not (tmp_path / "no.onnx").exists()


def test_the_javascript_runtime_gives_pytorchs_numbers(exported: dict, tmp_path: Path) -> None:
    """Every exported file in node (web/, onnxruntime-web): whole sequences, every step, feed and a
    snapshot restored into a new stream, against PyTorch within 1e-5."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the JavaScript runtime's tests need Node.js >= 20")
    if not (ROOT / "web" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.fail("web/node_modules is missing: run `cd web && npm ci`")
    rng = np.random.default_rng(7)
    manifest, wants = [], []
    for path, module, case in exported.values():
        tokens, classes = case[3] == "tokens", case[5] == "classes"
        if tokens:
            x = rng.integers(2, len(VOCAB) + 2, (3, 8))
            lengths = [8, 5, 1]
        else:
            x, lengths = raw_features(rng, 3, 8), None
        manifest.append({"file": str(path), "inputs": x.tolist(), "lengths": lengths})
        wants.append((module, x, lengths, tokens, classes, case[4] == "step"))
    (tmp_path / "manifest.json").write_text(json.dumps({"models": manifest}))
    got = subprocess.run([node, str(ROOT / "web" / "test" / "user" / "roundtrip.mjs"), str(tmp_path / "manifest.json"),
                          str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    for result, (module, x, lengths, tokens, classes, per_step) in zip(results, wants, strict=True):
        for n in range(len(x)):
            t = lengths[n] if lengths else x.shape[1]
            row = x[n : n + 1, :t]
            every = torch_answers(module, row, tokens, classes)[0]  # (C,) or (t, C)
            prefixes = every if per_step else np.stack([torch_answers(module, row[:, : k + 1], tokens, classes)[0]
                                                        for k in range(t)])
            assert np.abs(np.array(result["steps"][n]) - prefixes).max() <= TOL, result["file"]
            assert np.abs(np.array(result["feed"][n]) - prefixes[-1]).max() <= TOL, result["file"]
            whole = np.array(result["predict"][n])
            assert np.abs((whole[:t] if per_step else whole) - every).max() <= TOL, result["file"]
        first = lengths[0] if lengths else x.shape[1]
        last = torch_answers(module, x[:1, :first], tokens, classes)[0]
        assert np.abs(np.array(result["snapshot"]) - (last[-1] if per_step else last)).max() <= TOL, result["file"]
