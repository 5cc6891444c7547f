"""What cannot be streamed cell by cell is refused with an ExportError naming the part, and nothing
is written; so is a module whose forward the exporter cannot reproduce, and bad arguments."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import edgeinfer_export as ee
from edgeinfer_export.errors import ExportError

FEATURES = ee.Features(3)
CLASSES = ee.Classes(["a", "b"])


class Bidirectional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(3, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(x)[0][:, -1])


class Projected(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, proj_size=4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0][:, -1])


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.rnn(x)[0]
        return self.fc(self.attn(h, h, h)[0][:, -1])


class ConvFront(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 3, 3, padding=1)
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(self.conv(x.transpose(1, 2)).transpose(1, 2))[0][:, -1])


class FlatHead(nn.Module):
    """The head reads every step's output at once (T x H flattened)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.classifier = nn.Linear(8 * 11, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.rnn(x)[0].flatten(1))


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.mixer = Mixer()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.mixer(self.rnn(x)[0])[:, -1])


class Mixer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(1)


class MeanPool(nn.Module):
    """Its parts look streamable, but its forward averages every step: not what the parts say."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0].mean(1))


class NoRecurrence(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x[:, -1])


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0][:, -1])


REFUSED = [
    (Bidirectional, r"part 'encoder' \(GRU\) is bidirectional: its backward direction reads the sequence from its end"),
    (Projected, r"part 'lstm' \(LSTM\) has proj_size=4"),
    (Attention, r"part 'attn' \(MultiheadAttention\) cannot be streamed cell by cell: attention reads the whole"),
    (ConvFront, r"part 'conv' \(Conv1d\) cannot be streamed cell by cell: a convolution over time"),
    (FlatHead, r"head part 'classifier' \(Linear\) reads 88 features: all 11 steps' outputs flattened together"),
    (Custom, r"part 'mixer' \(Mixer\) is not one of the parts an exported stream is made of"),
    (MeanPool, r"the module's forward does not compute its parts in order"),
    (NoRecurrence, r"the module has no nn.RNN, nn.LSTM or nn.GRU"),
]


@pytest.mark.parametrize(("cls", "message"), REFUSED, ids=[c[0].__name__ for c in REFUSED])
def test_refused_with_the_part_named_and_nothing_written(tmp_path: Path, cls: type[nn.Module], message: str) -> None:
    out = tmp_path / "m.onnx"
    x = np.random.default_rng(0).standard_normal((2, 11, 3)).astype(np.float32)
    with pytest.raises(ExportError, match=message):
        ee.export(cls(), out, input=FEATURES, output=CLASSES, example=x)
    assert list(tmp_path.iterdir()) == []


def test_parts_named_when_the_children_do_not_show_them(tmp_path: Path) -> None:
    """Named parts replace discovery: a module whose children are registered head first."""

    class HeadFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)
            self.rnn = nn.GRU(3, 8, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.rnn(x)[0][:, -1])

    module = HeadFirst()
    with pytest.raises(ExportError, match=r"part 'fc' \(Linear\) is registered before the recurrent part and nothing"):
        ee.export(module, tmp_path / "a.onnx", input=FEATURES, output=CLASSES)
    got = ee.export(module, tmp_path / "b.onnx", input=FEATURES, output=CLASSES,
                    parts=ee.Parts(recurrent=module.rnn, head=module.fc))
    assert got.parity_max_abs_err <= 1e-5 and got.spec.provenance["contract"] == "parts named"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input": ee.Words(["x", "y"])}, "token input needs an nn.Embedding"),
    ({"input": ee.Features(4)}, r"forward failed on the example input of shape \(3, 11, 4\)"),
    ({"per": "token"}, "per='token'; expected 'sequence'"),
    ({"example": np.zeros((2, 5, 3), np.float32) + np.nan}, r"expected finite \(N, T, 3\) features"),
    ({"output": ee.Classes(["a", "a"])}, "output.names' must hold 1 to"),
    ({"output": ee.Classes(["a", "b", "c"])}, "the model gives 2 outputs per answer but 3 names were given"),
])
def test_bad_arguments_are_one_line_export_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"input": FEATURES, "output": CLASSES, **kwargs}
    with pytest.raises(ExportError, match=message) as info:
        ee.export(Plain(), tmp_path / "m.onnx", **args)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.onnx").exists()


def test_a_trailing_softmax_is_left_to_the_runtimes(tmp_path: Path) -> None:
    """A head ending in Softmax exports its logits; the runtime's probabilities equal the forward's."""
    import edgeinfer

    module = _SoftmaxHead()
    x = np.random.default_rng(1).standard_normal((3, 7, 3)).astype(np.float32)
    ee.export(module, tmp_path / "s.onnx", input=FEATURES, output=CLASSES, example=x)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert np.abs(edgeinfer.load(tmp_path / "s.onnx").predict(x) - want).max() <= 1e-5


class _SoftmaxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.out = nn.Sequential(nn.Linear(8, 2), nn.Softmax(dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0][:, -1])


def test_a_folder_is_not_a_model_path(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="a folder; give the model file's path"):
        ee.export(Plain(), tmp_path, input=FEATURES, output=CLASSES)
