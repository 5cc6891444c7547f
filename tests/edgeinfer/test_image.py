"""Image preprocessing: every mode and format, polarity, cropping, scaling and centring."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeinfer import ImageError
from edgeinfer.preprocess.image import MAX_PIXELS, mnist_frame, read_gray
from edgeinfer.spec import ImageInput

SPEC = ImageInput()


def digit_canvas(h: int = 120, w: int = 90) -> np.ndarray:
    """A dark-on-light 'digit': an off-centre thick bar on white paper. # (h, w) uint8"""
    img = np.full((h, w), 240, np.uint8)
    img[20:100, 10:30] = 20
    return img


def test_frame_is_cropped_scaled_and_centred() -> None:
    frame = mnist_frame(digit_canvas() / 255.0, SPEC)
    assert frame.shape == (28, 28)
    ys, xs = np.nonzero(frame > 0.2)
    assert ys.max() - ys.min() + 1 == 20  # longest side fitted to 20 px
    assert 4 <= xs.max() - xs.min() + 1 <= 6  # 20/80 of 20 px wide, aspect kept
    cy = (frame.sum(1) * np.arange(28)).sum() / frame.sum()
    cx = (frame.sum(0) * np.arange(28)).sum() / frame.sum()
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5  # centre of mass in the middle
    assert frame.max() == pytest.approx(1.0, abs=0.02) and frame[0].max() == 0.0  # ink bright, background 0


def test_light_on_dark_and_dark_on_light_agree() -> None:
    dark_on_light = digit_canvas() / 255.0
    a = mnist_frame(dark_on_light, SPEC)
    b = mnist_frame(1.0 - dark_on_light, SPEC)
    assert np.abs(a - b).max() < 1e-5


@pytest.mark.parametrize("mode,suffix", [("L", ".png"), ("RGB", ".jpg"), ("RGBA", ".png"), ("P", ".gif"),
                                         ("P", ".png"), ("I;16", ".png"), ("RGB", ".bmp"), ("L", ".tif")])
def test_every_mode_and_format_reads_the_same(tmp_path, mode: str, suffix: str) -> None:
    base = digit_canvas()
    if mode == "I;16":
        img = Image.fromarray(base.astype(np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = Image.fromarray(base, "L").convert(mode)
    path = tmp_path / f"digit{suffix}"
    img.save(path)
    frame = mnist_frame(read_gray(path), SPEC)
    want = mnist_frame(base / 255.0, SPEC)
    if suffix == ".jpg":  # lossy: the centre of mass may round to the next pixel
        best = min(np.abs(np.roll(frame, (dy, dx), (0, 1)) - want).max()
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        assert best < 0.15
    else:
        assert np.abs(frame - want).max() < 0.02


def test_transparent_background_png(tmp_path) -> None:
    rgba = np.zeros((60, 60, 4), np.uint8)  # fully transparent...
    rgba[10:50, 25:35] = (0, 0, 0, 255)  # ...with a black opaque stroke
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    frame = mnist_frame(read_gray(tmp_path / "t.png"), SPEC)
    assert frame[14, 14] > 0.9 and frame[14, 2] == 0.0


def test_gif_first_frame(tmp_path) -> None:
    first = Image.fromarray(digit_canvas(), "L").convert("P")
    second = Image.fromarray(np.full((120, 90), 240, np.uint8), "L").convert("P")
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second])
    assert mnist_frame(read_gray(tmp_path / "anim.gif"), SPEC).max() > 0.9


def test_blank_image_is_an_error() -> None:
    with pytest.raises(ImageError, match="no digit found"):
        mnist_frame(np.full((40, 40), 0.9, np.float32), SPEC, name="blank.png")


@pytest.mark.parametrize("content,match", [
    (b"", "empty file"),
    (b"GIF89a\x00\x01garbage", "not an image|corrupt"),
    (b"hello, I am a text file\n", "not an image Pillow can read"),
])
def test_bad_files(tmp_path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=match):
        read_gray(path)


def test_truncated_png(tmp_path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png: corrupt or truncated"):
        read_gray(tmp_path / "cut.png")


def test_decompression_bomb(tmp_path) -> None:
    side = int(MAX_PIXELS ** 0.5) + 100
    Image.new("1", (side, side)).save(tmp_path / "bomb.png")  # small file, huge image
    assert (tmp_path / "bomb.png").stat().st_size < 2_000_000
    with pytest.raises(ImageError, match="over the limit"):
        read_gray(tmp_path / "bomb.png")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_gray(tmp_path / "nope.png")
