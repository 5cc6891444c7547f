"""Digits as phone photos of ink on paper: the uneven-light set of benchmarks/digits_robustness.py.

`paper_photo` turns an MNIST digit (28x28, light on dark) into what a phone sees of it written
on paper: dark ink (reflectance 0.05-0.3) on off-white paper (0.78-0.97), upscaled to 96-199 px
(bicubic) somewhere on a page 1.3-2.2 times larger, lit by a linear gradient in a random
direction that takes 30-65% of the light away at its far side, half the time a vignette too
(up to 30% less light away from a random centre), a warm tint, Gaussian grain (sigma 0.01-0.04),
half the time a slight blur (radius 0.3-1 px). The caller saves it (JPEG). Seeded: one
`numpy.random.Generator` draws everything.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def paper_photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit (28, 28) uint8, light on dark -> an RGB photo of it on unevenly lit paper."""
    side = int(rng.integers(96, 200))
    canvas = int(side * rng.uniform(1.3, 2.2))
    ink = Image.fromarray(digit, mode="L").resize((side, side), Image.Resampling.BICUBIC)
    cover = np.zeros((canvas, canvas), np.float32)
    oy, ox = rng.integers(0, canvas - side + 1, size=2)
    cover[oy : oy + side, ox : ox + side] = np.asarray(ink, np.float32) / 255.0
    paper = rng.uniform(0.78, 0.97)
    ink_level = rng.uniform(0.05, 0.3)
    reflect = paper + (ink_level - paper) * cover
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float32) / canvas
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5)) + 0.5
    dark = rng.uniform(0.3, 0.65)
    light = 1.0 - dark * np.clip(ramp, 0, 1)
    if rng.random() < 0.5:
        cy, cx = rng.uniform(0.2, 0.8, size=2)
        light *= 1.0 - 0.3 * np.clip(((yy - cy) ** 2 + (xx - cx) ** 2) / 0.5, 0, 1)
    tint = rng.uniform(0.9, 1.0, size=3)
    gray = reflect * light
    noise = rng.normal(0, rng.uniform(0.01, 0.04), size=gray.shape)
    rgb = np.clip((gray + noise)[..., None] * tint * 255.0, 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, mode="RGB")
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return img
