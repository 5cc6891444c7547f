"""Digits augmentation for real inputs (issue 17): how people write and scan, per batch, in torch.

`robust_digits()` changes a batch of normalised (B, 28, 28) images, drawing everything from the
loop's seeded generator (the same seed gives the same images):

- stroke thickness: a soft dilation (3x3 max-pool blended with the image by a random weight) or
  a soft erosion (3x3 min-pool likewise), sub-pixel to 1 px at MNIST's scale;
- a random affine: scale 0.85-1.15, aspect 0.9-1.1, rotation within +-12 degrees, shift within
  +-2 px (`affine_grid` / `grid_sample`, bilinear, zero ink outside);
- blur: a 3x3 Gaussian with a random sigma;
- then what `mnist_frame` does to a file: the contrast stretched so the brightest ink is 1, and
  faint ink (below INK_THRESHOLD / 2) cleared.

Polarity and JPEG artefacts are not simulated: `mnist_frame` inverts dark-on-light images and its
contrast stretch and faint-ink threshold remove most JPEG ringing, so the model only ever sees
light-on-dark frames. Printed digits are added as training examples instead (`font_digits`):
the digits 0-9 of the train-half fonts of benchmarks/digits_fonts.json, rendered on canvases of
several sizes in both polarities and put through `mnist_frame` + `normalize`, exactly as a file
would be. The train halves (`FONT_HALVES`, `train_fonts`): "train", the DejaVu/Liberation files
the name hash put on the train side, and "unseen_train", the files of the unseen families whose
Debian package's name hash puts it on the train side (`half: "train"`; the rule is the json's
"unseen_split_rule"). The default trains on both; `halves=("train",)` (`train digits
--font-halves train`) is the earlier recipe, the DejaVu/Liberation train half alone. The held-out
fonts (both held-out halves) are never read.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from edgeinfer.preprocess.image import INK_THRESHOLD, mnist_frame, normalize
from edgeinfer.spec import ImageInput

FONTS_JSON = Path(__file__).resolve().parents[1] / "benchmarks" / "digits_fonts.json"
FONT_CANVASES = (24, 28, 32, 40, 48, 64, 96, 128)  # square canvas sides, px
FONT_HEIGHTS = (0.6, 0.8)  # the tallest digit's share of the canvas height
TRAIN_HALVES = ("train", "unseen_train")  # the font halves training may read (see font_half_entries)
FONT_HALVES = TRAIN_HALVES  # what --font-share trains on by default: both train halves

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def affine_thetas(scale: torch.Tensor, aspect: torch.Tensor, angle_deg: torch.Tensor, shift_px: torch.Tensor,
                  size: int = 28) -> torch.Tensor:
    """(B, 2, 3) `affine_grid` matrices that scale (x by scale*sqrt(aspect), y by scale/sqrt(aspect)),
    rotate by angle_deg and shift by shift_px (B, 2: x, y) each image; identity at (1, 1, 0, 0)."""
    a = torch.deg2rad(angle_deg)
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    cos, sin = torch.cos(a), torch.sin(a)
    # forward map M = R @ S; affine_grid wants the inverse (output coords -> input coords)
    inv = torch.stack([torch.stack([cos / sx, sin / sx], -1), torch.stack([-sin / sy, cos / sy], -1)], -2)
    t = shift_px * (2.0 / size)  # px -> normalised coordinates (align_corners=False)
    return torch.cat([inv, -(inv @ t[:, :, None])], dim=2)


def warp(p: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(B, H, W) pixels warped by (B, 2, 3) thetas, bilinear, zero outside."""
    grid = torch.nn.functional.affine_grid(theta, [p.shape[0], 1, *p.shape[1:]], align_corners=False)
    return torch.nn.functional.grid_sample(p[:, None], grid, mode="bilinear", padding_mode="zeros",
                                           align_corners=False)[:, 0]


def gaussian_blur3(p: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """(B, H, W) pixels blurred by a 3x3 Gaussian of each image's own sigma (B,)."""
    d = torch.tensor([-1.0, 0.0, 1.0])
    k1 = torch.exp(-(d[None, :] ** 2) / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    k = (k1[:, :, None] * k1[:, None, :])[:, None]  # (B, 1, 3, 3)
    return torch.nn.functional.conv2d(p[None], k, padding=1, groups=p.shape[0])[0]


def robust_digits(spec: ImageInput | None = None, p_affine: float = 0.85, p_dilate: float = 0.3,
                  p_erode: float = 0.2, p_blur: float = 0.25, max_angle: float = 12.0,
                  scale: tuple[float, float] = (0.85, 1.15), aspect: tuple[float, float] = (0.9, 1.1),
                  max_shift: float = 2.0) -> Augment:
    """The augmentation (see the module's text) as a `fit(augment=...)` hook."""
    spec = spec or ImageInput()

    def uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=gen)

    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        p = x.float() * spec.std + spec.mean  # back to [0, 1], ink bright
        # stroke thickness: soft dilation or erosion
        pick = torch.rand(b, generator=gen)
        weight = torch.rand(b, generator=gen)[:, None, None]
        dil = torch.nn.functional.max_pool2d(p[:, None], 3, 1, 1)[:, 0]
        ero = -torch.nn.functional.max_pool2d(-p[:, None], 3, 1, 1)[:, 0]
        dilate = (pick < p_dilate)[:, None, None]
        erode = ((pick >= p_dilate) & (pick < p_dilate + p_erode))[:, None, None]
        p = torch.where(dilate, p + weight * (dil - p), p)
        p = torch.where(erode, p + weight * (ero - p), p)
        # affine: scale, aspect, rotation, shift
        on = torch.rand(b, generator=gen) < p_affine
        s = torch.where(on, uniform(b, *scale, gen), torch.ones(b))
        asp = torch.where(on, torch.exp(uniform(b, math.log(aspect[0]), math.log(aspect[1]), gen)), torch.ones(b))
        ang = torch.where(on, uniform(b, -max_angle, max_angle, gen), torch.zeros(b))
        sh = torch.where(on[:, None], (torch.rand(b, 2, generator=gen) * 2 - 1) * max_shift, torch.zeros(b, 2))
        p = warp(p, affine_thetas(s, asp, ang, sh, p.shape[-1]))
        # blur
        blur = torch.rand(b, generator=gen) < p_blur
        sigma = uniform(b, 0.4, 1.0, gen)
        p = torch.where(blur[:, None, None], gaussian_blur3(p, sigma), p)
        # what mnist_frame does: contrast stretch to a peak of 1, faint ink cleared
        peak = p.amax(dim=(1, 2), keepdim=True).clamp_min(1e-3)
        p = (p / peak).clamp(0.0, 1.0)
        p = torch.where(p > INK_THRESHOLD * 0.5, p, torch.zeros_like(p))
        return ((p - spec.mean) / spec.std).to(x.dtype)

    return apply


def font_half_entries(split: dict[str, Any], half: str) -> list[dict[str, Any]]:
    """The entries of one train half of a font split (the json's layout): "train" (its "train"
    list) or "unseen_train" (the "unseen_families" entries marked `half: "train"`). Only train
    halves can be asked for: a held-out font is never trained on."""
    if half == "train":
        return list(split.get("train", []))
    if half == "unseen_train":
        return [e for e in split.get("unseen_families", []) if e.get("half") == "train"]
    raise ValueError(f"unknown font half {half!r} (train halves: {', '.join(TRAIN_HALVES)})")


def train_fonts(path: Path | None = None, halves: Sequence[str] = FONT_HALVES) -> list[Path]:
    """The font files of the train halves `halves` (default FONT_HALVES: both) of the split in
    `path` (FONTS_JSON) that this machine has, in the json's order, each file once."""
    split = json.loads(Path(path or FONTS_JSON).read_text(encoding="utf-8"))
    paths = [Path(e["path"]) for half in halves for e in font_half_entries(split, half)]
    return [p for p in dict.fromkeys(paths) if p.is_file()]


def _ink_box(font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def render_font_digit(font_path: Path, digit: int, canvas: int, height: float, dark_on_light: bool) -> np.ndarray:
    """One digit printed in a font on a square canvas, as grayscale in [0, 1]."""
    probe = ImageFont.truetype(str(font_path), 100)
    tallest = max(_ink_box(probe, str(d))[3] - _ink_box(probe, str(d))[1] for d in range(10))
    font = ImageFont.truetype(str(font_path), max(1, round(100 * height * canvas / tallest)))
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    left, top, right, bottom = _ink_box(font, str(digit))
    img = Image.new("L", (canvas, canvas), paper)
    xy = ((canvas - (right - left)) / 2 - left, (canvas - (bottom - top)) / 2 - top)
    ImageDraw.Draw(img).text(xy, str(digit), fill=ink, font=font)
    return np.asarray(img, dtype=np.float32) / 255.0


def font_digits(fonts: Sequence[Path], spec: ImageInput | None = None, canvases: Sequence[int] | None = None,
                heights: Sequence[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Printed digits as model inputs (N, 28, 28), normalised as a file would be, and labels (N,):
    every font x canvas x height x polarity x digit (canvases and heights: FONT_CANVASES, FONT_HEIGHTS)."""
    spec = spec or ImageInput()
    canvases = FONT_CANVASES if canvases is None else canvases
    heights = FONT_HEIGHTS if heights is None else heights
    xs, ys = [], []
    for font in fonts:
        for canvas in canvases:
            for height in heights:
                for dark in (True, False):
                    for d in range(10):
                        gray = render_font_digit(font, d, canvas, height, dark)
                        xs.append(normalize(mnist_frame(gray, spec, name=str(font)), spec))
                        ys.append(d)
    if not xs:
        return torch.zeros(0, spec.rows, spec.cols), torch.zeros(0, dtype=torch.int64)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.int64)


def with_font_digits(x: torch.Tensor, y: torch.Tensor, share: float, fonts_json: Path | None = None,
                     halves: Sequence[str] = FONT_HALVES) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images with printed digits of the fonts of the train halves `halves` appended so
    that they make up about `share` of the result (0: none added): all of them, repeated a whole
    number of times (at least once) as near the share as that gets; but when all of them once
    would be more than twice the share's number, a fixed sample of that number (the same for
    every run: a permutation from seed 0, not the run's seed), so that more fonts give more
    variety, not a larger share."""
    if share <= 0:
        return x, y
    fonts = train_fonts(fonts_json, halves)
    fx, fy = font_digits(fonts)
    if not len(fy):
        print(f"augment: no font of the halves {'+'.join(halves)} of {fonts_json or FONTS_JSON} on this machine; "
              "no printed digits", file=sys.stderr)
        return x, y
    wanted = share * len(y) / (1 - share)
    source = f"{len(fy):,} printed digits from {len(fonts)} fonts of the halves {'+'.join(halves)}"
    if 2 * wanted < len(fy):
        pick = torch.randperm(len(fy), generator=torch.Generator().manual_seed(0))[: max(1, round(wanted))]
        print(f"augment: {len(pick):,} of {source} (a fixed sample)", file=sys.stderr)
        return torch.cat([x, fx[pick]]), torch.cat([y, fy[pick]])
    repeat = max(1, round(wanted / len(fy)))
    print(f"augment: {source}, x{repeat}", file=sys.stderr)
    return torch.cat([x, fx.repeat(repeat, 1, 1)]), torch.cat([y, fy.repeat(repeat)])
