"""Digits augmentation for real inputs (train.augment, `train digits --augment-robust --font-share`)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import train.augment as augment
from edgeinfer.spec import ImageInput
from tests.train.test_data import write_tiny_mnist
from train.__main__ import main as train_main
from train.__main__ import parser
from train.augment import affine_thetas, font_digits, robust_digits, warp, with_font_digits
from train.checkpoint import load_checkpoint

SPEC = ImageInput()


def _digits(n: int = 32, seed: int = 0) -> torch.Tensor:
    """Normalised images with a bright blob of ink each, on the zero background."""
    g = torch.Generator().manual_seed(seed)
    p = torch.zeros(n, 28, 28)
    p[:, 8:20, 10:18] = torch.rand(n, 12, 8, generator=g)
    return (p - SPEC.mean) / SPEC.std


def test_robust_augmentation_is_deterministic_for_a_seed_and_keeps_shapes() -> None:
    x = _digits()
    aug = robust_digits()
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, x)
    pixels = a * SPEC.std + SPEC.mean  # still in [0, 1] with the background at 0, the peak at 1
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6
    assert torch.allclose(pixels.amax(dim=(1, 2)), torch.ones(len(x)), atol=1e-5)


def test_affine_at_identity_is_the_identity() -> None:
    p = torch.rand(5, 28, 28)
    ones, zeros = torch.ones(5), torch.zeros(5)
    theta = affine_thetas(ones, ones, zeros, torch.zeros(5, 2))
    assert torch.allclose(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(5, 2, 3))
    assert (warp(p, theta) - p).abs().max() < 1e-5
    # a one-pixel shift to the right is a shift by one column
    moved = warp(p, affine_thetas(ones, ones, zeros, torch.tensor([[1.0, 0.0]] * 5)))
    assert (moved[:, :, 1:] - p[:, :, :-1]).abs().max() < 1e-5 and moved[:, :, 0].abs().max() < 1e-6
    # with every change switched off the augmentation leaves a clean frame as it is
    x = _digits()
    x = torch.where(x * SPEC.std + SPEC.mean > 0.1, x, (0 - SPEC.mean) / SPEC.std)
    x[:, 10, 12] = (1 - SPEC.mean) / SPEC.std  # peak 1, as mnist_frame gives
    off = robust_digits(p_affine=0, p_dilate=0, p_erode=0, p_blur=0)
    assert (off(x, torch.Generator().manual_seed(0)) - x).abs().max() < 1e-5


def _font() -> str:
    fonts = augment.train_fonts()
    if not fonts:
        pytest.skip("none of the train-half fonts of benchmarks/digits_fonts.json is installed")
    return str(fonts[0])


@pytest.mark.training
def test_printed_digits_are_frames_with_their_labels(tmp_path) -> None:
    font = _font()
    x, y = font_digits([font], canvases=(28, 64), heights=(0.7,))
    assert x.shape == (40, 28, 28) and y.tolist() == list(range(10)) * 4
    pixels = x.numpy() * SPEC.std + SPEC.mean
    assert np.allclose(pixels.max(axis=(1, 2)), 1, atol=1e-5)  # contrast stretched, light on dark
    assert np.allclose(pixels[:, 0, :], 0, atol=1e-6)  # background at the border
    split = tmp_path / "fonts.json"
    split.write_text(json.dumps({"train": [{"path": font}], "heldout": [{"path": "/nowhere/held.ttf"}]}))
    mx, my = _digits(200), torch.arange(200) % 10
    ax, ay = with_font_digits(mx, my, 0.1, split)
    assert torch.equal(ax[:200], mx) and torch.equal(ay[:200], my)  # the originals, in order
    assert len(ay) > 200 and sorted(set(ay[200:].tolist())) == list(range(10))
    assert with_font_digits(mx, my, 0.0, split)[0] is mx
    # all printed digits once (320: 8 canvases x 2 heights x 2 polarities x 10) would be far more
    # than 10% of 200: a fixed sample of 22 (0.1 * 200 / 0.9), the same every time
    assert len(ay) == 200 + 22 and torch.equal(with_font_digits(mx, my, 0.1, split)[0], ax)
    _big_x, big_y = with_font_digits(mx, my, 0.7, split)  # 467 wanted: all 320, once
    assert len(big_y) == 200 + 320 and sorted(big_y[200:].tolist()) == sorted(list(range(10)) * 32)


def test_train_fonts_reads_the_train_halves_only(tmp_path) -> None:
    files = {name: tmp_path / f"{name}.ttf" for name in ("train", "held", "unseen_train", "unseen_held")}
    for f in files.values():
        f.write_bytes(b"")
    split = tmp_path / "fonts.json"
    split.write_text(json.dumps({
        "train": [{"path": str(files["train"])}, {"path": str(tmp_path / "not_installed.ttf")}],
        "heldout": [{"path": str(files["held"])}],
        "unseen_families": [{"path": str(files["unseen_train"]), "half": "train"},
                            {"path": str(files["unseen_held"]), "half": "heldout"},
                            {"path": str(files["unseen_held"])}],  # no half: never trained on
    }))
    assert augment.train_fonts(split) == [files["train"], files["unseen_train"]]  # default: both train halves
    assert augment.train_fonts(split, ("train",)) == [files["train"]]  # the earlier recipe
    assert augment.train_fonts(split, ("unseen_train",)) == [files["unseen_train"]]
    for half in ("heldout", "unseen_heldout"):
        with pytest.raises(ValueError, match="unknown font half"):
            augment.train_fonts(split, (half,))


def test_no_held_out_family_is_trained_on() -> None:
    """In the recorded split: the fonts training prints are of no family or package of a held-out side."""
    split = json.loads(augment.FONTS_JSON.read_text(encoding="utf-8"))
    trained = [e for half in augment.FONT_HALVES for e in augment.font_half_entries(split, half)]
    unseen_held = [e for e in split["unseen_families"] if e["half"] == "heldout"]
    assert len(trained) == len(split["train"]) + len(split["unseen_families"]) - len(unseen_held)
    assert not {e["file"] for e in trained} & {e["file"] for e in split["heldout"] + unseen_held}
    assert not {e["family"] for e in trained} & {e["family"] for e in unseen_held}
    assert not {e.get("package") for e in trained} & {e["package"] for e in unseen_held}


@pytest.mark.training
def test_cli_option_parses_and_is_recorded(tmp_path, monkeypatch) -> None:
    a = parser().parse_args(["digits", "--augment-robust", "--font-share", "0.05", "--out", "o"])
    assert a.augment_robust and a.font_share == 0.05 and a.font_halves == "train,unseen_train"
    b = parser().parse_args(["digits", "--out", "o"])
    assert not b.augment_robust and b.font_share == 0.0
    assert parser().parse_args(["digits", "--font-halves", "train", "--out", "o"]).font_halves == "train"
    with pytest.raises(SystemExit):
        parser().parse_args(["digits", "--font-halves", "train,unseen_heldout", "--out", "o"])
    monkeypatch.setattr(augment, "FONT_CANVASES", (28,))
    monkeypatch.setattr(augment, "FONT_HEIGHTS", (0.7,))
    write_tiny_mnist(tmp_path / "data", n_train=64, n_test=16)
    extra = ["--font-share", "0.1"] if augment.train_fonts() else []
    args = ["digits", "--data", str(tmp_path / "data"), "--hidden", "8", "--batch", "16", "--threads", "1",
            "--epochs", "1", "--augment-robust", "--anytime", "1", *extra]
    assert train_main([*args, "--out", str(tmp_path / "a")]) == 0
    assert train_main([*args, "--out", str(tmp_path / "b")]) == 0
    ca, cb = (load_checkpoint(tmp_path / x / "checkpoint.pt") for x in "ab")
    assert ca.train_args["augment_robust"] is True and ca.train_args["anytime"] == 1.0
    assert ca.train_args["font_share"] == (0.1 if extra else 0.0)
    assert ca.train_args["font_halves"] == ("train,unseen_train" if extra else "")
    assert ca.train_args["font_files"] == (len(augment.train_fonts()) if extra else 0)
    for key in ca.state_dict:  # same seed, same augmented batches, same weights
        assert torch.equal(ca.state_dict[key], cb.state_dict[key]), key
