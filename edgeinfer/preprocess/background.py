"""The paper under a digit: which way the ink goes, and a flat background under uneven light.

A photo of a digit on paper is lit unevenly: one side darker, a vignette, off-white paper,
grain. Taking the border's median as "the background" then reads the shadowed paper as ink and
the digit is lost in it. Here the background is estimated locally instead:

1. The image is cut into square blocks (about GRID_BLOCKS a side, at least MIN_BLOCK_PX pixels);
   each block's median is the paper there, unless ink covers most of the block.
2. Which way the ink goes (dark on light, or light on dark) is decided against a background that
   ignores the blocks ink covers: a median of the block medians over OPEN_RADIUS blocks around
   each one. The side with more pixels far (over half the largest deviation) from that
   background is the ink.
3. With the ink made bright, the background is a morphological opening of the block medians
   (the minimum, then the maximum, over (2 * OPEN_RADIUS + 1)^2 blocks; the grid extended by
   repeating its edges first, so a gradient running into an edge is followed to the edge): it
   removes anything brighter than the paper narrower than the opening, the ink, and follows
   gradients and vignettes exactly where they are linear. Both backgrounds are interpolated
   bilinearly between block centres (extrapolated linearly past the outer ones).
4. The ink is what lies above that background; the grain's level (noise_sigma) is estimated
   from the residual's median absolute deviation, robust to the ink.

A clean scan or an MNIST digit has a flat background: the result equals the plain inversion
(or the image itself), so MNIST, JPEG scans and printed fonts read exactly as before.

Every step is min, max, a median, a float32 subtraction or a float64 interpolation written out
in a fixed order, so the JavaScript port (web/src/background.js) gives the same bits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

GRID_BLOCKS = 16  # blocks along the longer side, about
MIN_BLOCK_PX = 4  # a block's side is at least this
OPEN_RADIUS = 3  # blocks: the opening and the median filter reach this far around a block
MAD_TO_SIGMA = 1.4826  # a normal distribution's sigma over its median absolute deviation


@dataclass(frozen=True)
class Ink:
    """An image's ink, bright on a flat dark background."""

    pixels: np.ndarray  # (H, W) float32 in [0, 1]: 0 is paper
    dark_on_light: bool  # True when the ink was darker than the paper (and has been inverted)
    noise_sigma: float  # the grain's standard deviation, in the pixels' units (0 for a clean image)


def extract_ink(gray: np.ndarray) -> Ink:
    """A grayscale image in [0, 1] -> its ink, bright on a flat background. # (H, W) float32"""
    img = np.ascontiguousarray(gray, dtype=np.float32)
    height, width = img.shape
    side = max(MIN_BLOCK_PX, -(-max(height, width) // GRID_BLOCKS))
    rows, cols = _edges(height, side), _edges(width, side)
    axes = _axis_weights(height, rows), _axis_weights(width, cols)

    medians = _block_medians(img, rows, cols)
    smooth = _interpolate(_median_filter(medians, OPEN_RADIUS), *axes)
    deviation = img - smooth
    far = np.float32(0.5) * np.abs(deviation).max()
    dark = int(np.count_nonzero(deviation < -far)) > int(np.count_nonzero(deviation > far))

    ink = np.float32(1.0) - img if dark else img
    opened = _opening(_block_medians(ink, rows, cols), OPEN_RADIUS) if dark else _opening(medians, OPEN_RADIUS)
    residual = ink - _interpolate(opened, *axes)
    centre = median(residual)
    mad = float(median(np.abs(residual - centre)))
    pixels = np.clip(residual, np.float32(0.0), np.float32(1.0))
    return Ink(pixels.astype(np.float32, copy=False), dark, MAD_TO_SIGMA * mad)


def median(a: np.ndarray, axis: int | None = None) -> Any:
    """np.median's value, bit for bit (for an even count the two middle values' mean, in a's own
    dtype: their sum, then halved), without np.median, whose NaN check imports numpy.ma: 10 ms of
    `edgeinfer classify image`'s start. The values hold no NaN (the image was checked)."""
    if axis is None:
        a, axis = a.ravel(), 0
    n = a.shape[axis]
    ordered = np.sort(a, axis=axis)
    upper = np.take(ordered, n // 2, axis=axis)
    if n % 2:
        return upper
    return (np.take(ordered, n // 2 - 1, axis=axis) + upper) / a.dtype.type(2)


def _edges(n: int, side: int) -> list[int]:
    """Block boundaries along an axis of n pixels: 0, side, 2 side, ..., n (the last block may be short)."""
    return [min(i * side, n) for i in range(-(-n // side) + 1)]


def _block_medians(img: np.ndarray, rows: list[int], cols: list[int]) -> np.ndarray:
    """The median of each block. # (len(rows) - 1, len(cols) - 1) float32"""
    out = np.empty((len(rows) - 1, len(cols) - 1), np.float32)
    for i in range(len(rows) - 1):
        band = img[rows[i] : rows[i + 1]]
        for j in range(len(cols) - 1):
            out[i, j] = median(band[:, cols[j] : cols[j + 1]])
    return out


def _median_filter(grid: np.ndarray, radius: int) -> np.ndarray:
    """The median over (2 radius + 1)^2 blocks around each block, the grid's edges repeated."""
    height, width = grid.shape
    padded = np.pad(grid, radius, mode="edge")
    size = 2 * radius + 1
    stack = np.stack([padded[dy : dy + height, dx : dx + width] for dy in range(size) for dx in range(size)])
    out: np.ndarray = median(stack, axis=0).astype(np.float32)
    return out


def _shifted_extreme(grid: np.ndarray, radius: int, op: np.ufunc) -> np.ndarray:
    """`op` (minimum or maximum) over a (2 radius + 1)^2 square, rows then columns; indices
    clamped at the edges (the callers pad the grid first where that matters)."""
    out = grid
    for axis in (0, 1):
        n = grid.shape[axis]
        index = np.arange(n)
        result = out
        for d in range(1, radius + 1):
            result = op(result, np.take(out, np.minimum(index + d, n - 1), axis=axis))
            result = op(result, np.take(out, np.maximum(index - d, 0), axis=axis))
        out = result
    return out


def _opening(grid: np.ndarray, radius: int) -> np.ndarray:
    """Minimum then maximum over (2 radius + 1)^2 blocks, on the grid extended by 2 radius
    repeated edge blocks (so a slope into an edge is kept), cropped back."""
    pad = 2 * radius
    padded = np.pad(grid, pad, mode="edge")
    opened = _shifted_extreme(_shifted_extreme(padded, radius, np.minimum), radius, np.maximum)
    return opened[pad:-pad, pad:-pad]


def _axis_weights(n: int, edges: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pixel along an axis: the two block centres it lies between (or the two outer ones
    beyond which it lies) and its weight towards the second. # (n,), (n,), (n,) float64"""
    centres = np.array([(edges[i] + edges[i + 1] - 1) / 2 for i in range(len(edges) - 1)], np.float64)
    if len(centres) == 1:
        zero = np.zeros(n, np.int64)
        return zero, zero, np.zeros(n, np.float64)
    pos = np.arange(n, dtype=np.float64)
    first = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, len(centres) - 2)
    second = first + 1
    weight = (pos - centres[first]) / (centres[second] - centres[first])
    return first, second, weight


def _interpolate(grid: np.ndarray, y_axis: tuple[np.ndarray, np.ndarray, np.ndarray],
                 x_axis: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Block values -> one value per pixel, bilinear in float64, rounded to float32 once. # (H, W)"""
    y0, y1, wy = y_axis
    x0, x1, wx = x_axis
    g = grid.astype(np.float64)
    rows = g[y0] * (1.0 - wy)[:, None] + g[y1] * wy[:, None]
    out: np.ndarray = (rows[:, x0] * (1.0 - wx) + rows[:, x1] * wx).astype(np.float32)
    return out


__all__ = ["GRID_BLOCKS", "MIN_BLOCK_PX", "OPEN_RADIUS", "Ink", "extract_ink"]
