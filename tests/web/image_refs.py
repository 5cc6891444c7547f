"""Reference data for the JavaScript image preprocessing (web/src/image.js): real MNIST test
digits written as PNG files, their RGBA pixels as Pillow decodes them (what a canvas would hold),
and Python's `load_digit` of each file.

    .venv/bin/python -m tests.web.image_refs OUT_DIR [--count 500]
    EDGEINFER_IMAGE_REFS=OUT_DIR node --test web/test/image.test.js

Written to OUT_DIR: manifest.json (the spec's image input and, per image, its name, size, byte
offset into rgba.bin, whether Python found the image unclear, and Python's error message when
it refused it), rgba.bin (all RGBA pixels, row by row) and python.bin (float32 little-endian,
rows x cols per image, zeros for refused images). The node test writes js.bin beside them, in the same layout.

The images: each digit at 28 px as published (light on dark) and inverted (dark on light), and
both upscaled with Pillow to 56 (bilinear) and 112 px (bicubic); every tenth digit as a photo
on unevenly lit, grainy paper (tests/photos.py: the background flattening); every fifth digit also as ink in
the alpha channel over transparency (black, and a colour), as a drawing canvas exports it; a few
images larger than MAX_SIDE (Python box-reduces them first); and blank or contrast-less images
that both sides must refuse with the same message.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

import edgeinfer
from edgeinfer import ImageError
from edgeinfer.preprocess.image import normalize, read_digit
from edgeinfer.spec import ImageInput
from tests import datasets
from tests.photos import paper_photo

SIZES = {56: Image.Resampling.BILINEAR, 112: Image.Resampling.BICUBIC}
PHOTO_EVERY = 10  # every tenth digit also as a photo on unevenly lit paper (tests/photos.py)
LARGE = ((1100, 1100), (2100, 1500), (3100, 200), (5200, 64))  # reduce factors 2, 3, 4 (x 1), 6


def variants(digits: np.ndarray, alpha_every: int = 5) -> Iterator[tuple[str, Image.Image]]:
    """(name, image) of every test image made from `digits` (N, 28, 28) uint8."""
    for i, digit in enumerate(digits):
        for polarity, pixels in (("light", digit), ("dark", 255 - digit)):
            img = Image.fromarray(pixels, mode="L")
            yield f"{i:04d}-{polarity}-28", img
            for size, resample in SIZES.items():
                yield f"{i:04d}-{polarity}-{size}", img.resize((size, size), resample)
        if i % alpha_every == 0:
            ink = np.zeros((28, 28, 4), np.uint8)
            ink[..., 3] = digit
            yield f"{i:04d}-alpha-black-28", Image.fromarray(ink, mode="RGBA")
            ink[..., :3] = (30, 90, 200)
            yield f"{i:04d}-alpha-blue-56", Image.fromarray(ink, mode="RGBA").resize((56, 56))
    rng = np.random.default_rng(17)
    for i in range(0, len(digits), PHOTO_EVERY):
        yield f"{i:04d}-photo", paper_photo(digits[i], rng)
    for j, (w, h) in enumerate(LARGE):
        yield f"large-{w}x{h}", Image.fromarray(255 - digits[j], mode="L").resize((w, h), Image.Resampling.BILINEAR)
    yield "blank-black", Image.new("L", (40, 30), 0)
    yield "blank-white", Image.new("RGB", (30, 40), (255, 255, 255))
    faint = np.full((28, 28), 120, np.uint8)
    faint[10:18, 12:15] = 140  # a contrast of 20/255 < 0.1
    yield "faint", Image.fromarray(faint, mode="L")
    yield "transparent", Image.new("RGBA", (20, 20), (0, 0, 0, 0))


def write_refs(out: Path, digits: np.ndarray, spec: ImageInput) -> dict[str, object]:
    """Write the reference files for `digits` (N, 28, 28) uint8 into `out`; the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    pngs = out / "png"
    pngs.mkdir(exist_ok=True)
    images: list[dict[str, object]] = []
    offset = 0
    with open(out / "rgba.bin", "wb") as rgba_file, open(out / "python.bin", "wb") as py_file:
        for name, img in variants(digits):
            path = pngs / f"{name}.png"
            img.save(path)
            with Image.open(path) as decoded:
                rgba = np.asarray(decoded.convert("RGBA"), dtype=np.uint8)
            entry: dict[str, object] = {"name": str(path), "width": rgba.shape[1], "height": rgba.shape[0],
                                        "offset": offset}
            try:
                got = read_digit(path, spec)
                frame = normalize(got.frame, spec)
                entry["unclear"] = got.unclear
            except ImageError as exc:
                entry["error"] = str(exc)
                frame = np.zeros((spec.rows, spec.cols), np.float32)
            rgba_file.write(rgba.tobytes())
            py_file.write(frame.astype("<f4").tobytes())
            offset += rgba.nbytes
            images.append(entry)
    manifest: dict[str, object] = {"spec": {"input": dataclasses.asdict(spec)}, "images": images}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    digits, _ = datasets.mnist_test()
    manifest = write_refs(args.out, digits[: args.count], edgeinfer.load("digits").spec.input)
    print(f"{len(manifest['images'])} images written to {args.out}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
