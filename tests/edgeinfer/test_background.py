"""The paper under a digit: background flattening, the ink's side, grain, the unclear flag."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

import edgeinfer
from edgeinfer import ImageError
from edgeinfer.preprocess.background import extract_ink, median
from edgeinfer.preprocess.image import MAX_INK_SHARE, MIN_SEPARATION, digit_frame, is_unclear, read_digit

SPEC = edgeinfer.load("digits").spec.require_input(edgeinfer.spec.ImageInput)


def written_digit(side: int = 160) -> np.ndarray:
    """A hand-drawn-looking 7 in dark ink on white paper, (side, side) reflectance in [0, 1]."""
    img = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(img)
    s = side / 160
    draw.line([(50 * s, 45 * s), (110 * s, 45 * s), (70 * s, 125 * s)], fill=30, width=max(2, round(10 * s)))
    return np.asarray(img, np.float32) / 255.0


def test_a_clean_scan_is_only_inverted() -> None:
    paper = written_digit()
    ink = extract_ink(paper)
    assert ink.dark_on_light and ink.noise_sigma == 0.0
    assert np.array_equal(ink.pixels, np.float32(1.0) - paper)
    light = 1.0 - paper  # light ink on dark: kept as it is
    got = extract_ink(light.astype(np.float32))
    assert not got.dark_on_light and np.array_equal(got.pixels, light.astype(np.float32))


@pytest.mark.parametrize("angle", [0, 45, 90, 135, 180, 225, 270, 315])
def test_a_gradient_in_any_direction_is_flattened(angle: int) -> None:
    paper = written_digit()
    yy, xx = np.mgrid[0:160, 0:160] / 160.0
    ramp = np.cos(np.radians(angle)) * (xx - 0.5) + np.sin(np.radians(angle)) * (yy - 0.5) + 0.5
    lit = (paper * (1.0 - 0.6 * ramp)).astype(np.float32)  # 60% of the light gone at the far side
    ink = extract_ink(lit)
    assert ink.dark_on_light
    strokes = paper < 0.5
    assert float(np.percentile(ink.pixels[~strokes], 99)) < 0.05  # the paper is flat again
    assert float(ink.pixels[strokes].min()) > 0.2  # the strokes stand out everywhere
    frame = digit_frame(lit, SPEC)
    assert not frame.unclear and frame.separation > 1000  # a smooth ramp: no grain


def test_a_dim_photo_is_read_as_dark_ink_on_paper() -> None:
    """Paper at 0.3 (under the old rule's 0.5) with ink at 0.08: still dark ink on paper."""
    dim = (written_digit() * 0.3).astype(np.float32)
    assert extract_ink(dim).dark_on_light


def test_grain_raises_the_ink_threshold_and_is_measured() -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(0.85 * written_digit() + rng.normal(0, 0.03, (160, 160)), 0, 1).astype(np.float32)
    ink = extract_ink(noisy)
    assert 0.02 < ink.noise_sigma < 0.04  # sigma 0.03, measured within a third
    frame = digit_frame(noisy, SPEC)
    clean = digit_frame(written_digit(), SPEC)
    assert not frame.unclear and 15 < frame.separation < 40
    assert np.abs(frame.frame - clean.frame).mean() < 0.05  # no stray grain moved the crop


def test_ink_barely_above_the_grain_is_unclear() -> None:
    rng = np.random.default_rng(1)
    faint = 0.8 - 0.15 * (1.0 - written_digit())  # contrast 0.15 (over the 0.1 floor)
    noisy = np.clip(faint + rng.normal(0, 0.03, faint.shape), 0, 1).astype(np.float32)
    frame = digit_frame(noisy, SPEC)
    assert frame.unclear and frame.separation < MIN_SEPARATION


def test_the_unclear_rule() -> None:
    assert is_unclear(MIN_SEPARATION - 0.1, 0.1) and is_unclear(np.inf, MAX_INK_SHARE + 0.01)
    assert not is_unclear(MIN_SEPARATION, 0.2) and not is_unclear(np.inf, MAX_INK_SHARE)


def test_nothing_out_of_the_grain_is_no_digit() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        with pytest.raises(ImageError, match="no digit found"):
            read_digit((rng.random((64, 64)) * 255).astype(np.uint8), SPEC, "noise")


def test_read_digit_takes_what_the_user_has(tmp_path) -> None:
    pixels = (written_digit() * 255).astype(np.uint8)
    path = tmp_path / "seven.png"
    Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    frames = [read_digit(path, SPEC).frame, read_digit(str(path), SPEC).frame, read_digit(data, SPEC).frame,
              read_digit(Image.open(io.BytesIO(data)), SPEC).frame, read_digit(pixels, SPEC).frame,
              read_digit(np.stack([pixels] * 3, axis=2), SPEC).frame,
              read_digit(pixels.astype(np.float32) / 255.0, SPEC).frame]
    for frame in frames[1:]:
        assert np.array_equal(frame, frames[0])
    for bad, why in ((np.zeros((4, 4, 2), np.uint8), "shape 4x4x2"), (np.full((8, 8), 2.0), r"in \[0, 1\]"),
                     (np.zeros((8, 8), np.int64), "type int64"), ([1, 2, 3], "a list")):
        with pytest.raises(ImageError, match=why):
            read_digit(bad, SPEC)  # type: ignore[arg-type]


def test_median_is_numpys_bit_for_bit() -> None:
    """`median` (which spares a cold start numpy.ma's import) equals np.median in value and dtype,
    odd and even counts, ties, float32 and float64, over the whole array or one axis: 3,000 draws."""
    rng = np.random.default_rng(7)
    for _ in range(3000):
        shape = tuple(int(n) for n in rng.integers(1, 9, size=int(rng.integers(1, 4))))
        a = (rng.random(shape) * rng.choice([1.0, 255.0, 1e-3])).astype(rng.choice([np.float32, np.float64]))
        if rng.random() < 0.3:
            a = np.round(a * 4) / 4  # ties
        axis = None if rng.random() < 0.5 else int(rng.integers(0, a.ndim))
        want, got = np.asarray(np.median(a, axis=axis)), np.asarray(median(a, axis=axis))
        assert got.dtype == want.dtype and np.array_equal(got, want), (shape, axis)
