"""Image preprocessing for the digits task, following the MNIST recipe.

Any image Pillow reads becomes a (rows, cols) float array: grayscale, the paper's uneven light
flattened and the ink made bright (edgeinfer.preprocess.background), cropped to the ink, scaled
to fit `fit_px` keeping the aspect ratio, and pasted into the frame centred on its centre of
mass, like the MNIST digits themselves.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from edgeinfer.errors import ImageError
from edgeinfer.preprocess.background import extract_ink, median
from edgeinfer.spec import ImageInput

MAX_PIXELS = 40_000_000  # larger images are refused as possible decompression bombs
MAX_DECODE_SIDE = 32_768  # and images longer than this on a side (a 1 x 39,999,999 strip took 1.2 GB to reduce)
MAX_DECODED_BYTES = 256 << 20  # an image whose decoded pixels would take more is refused
MAX_SIDE = 1024  # larger images are reduced (integer box filter) right after decoding
INK_THRESHOLD = 0.2  # after contrast stretch, ink is what lies above this
NOISE_K = 7.0  # ... and above this many of the paper's grain deviations (measured: docs/models.md)
MIN_SEPARATION = 8.0  # ink fainter than this many grain deviations above the paper: unclear (photos: >= 10.9)
MAX_INK_SHARE = 0.4  # "ink" over more of the image than this: unclear (MNIST test digits: at most 0.33)
_BYTES_PER_BAND = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}
# EXIF orientation tag value -> the transposition that shows the image upright (as ImageOps.exif_transpose)
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112

ImageFile.LOAD_TRUNCATED_IMAGES = False


def normalize(pixels01: np.ndarray, spec: ImageInput) -> np.ndarray:
    """Pixels in [0, 1] -> the model's input scale. Shared by training and the runtime."""
    return ((pixels01 - spec.mean) / spec.std).astype(np.float32)


def read_gray(path: str | os.PathLike[str], scale: float = 1.0 / 255.0) -> np.ndarray:
    """Read any image Pillow opens as a float32 grayscale array: 8-bit values times `scale`
    (the default, 1/255, gives [0, 1]; 16-bit and float images are first brought to 0..255). # (H, W)

    The EXIF orientation is applied. Memory stays bounded: images of more than MAX_PIXELS pixels
    or MAX_DECODED_BYTES decoded bytes are refused before decoding, JPEGs are decoded at a
    reduced size, and anything larger than MAX_SIDE on a side is reduced right after decoding.
    """
    name = str(path)
    file = Path(name)
    if file.is_dir():
        raise ImageError(f"{name}: a directory; expected an image file")
    if not file.is_file():
        raise ImageError(f"{name}: no such file")
    if file.stat().st_size == 0:
        raise ImageError(f"{name}: empty file; expected an image (PNG, JPEG, BMP, GIF, ...)")
    return _read(name, name, scale)


def read_gray_bytes(data: bytes, name: str, scale: float = 1.0 / 255.0) -> np.ndarray:
    """`read_gray` for an image file's bytes (e.g. read from stdin); `name` names it in errors."""
    if not data:
        raise ImageError(f"{name}: empty input; expected an image (PNG, JPEG, BMP, GIF, ...)")
    return _read(io.BytesIO(data), name, scale)


def _read(source: str | io.BytesIO, name: str, scale: float) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                gray: np.ndarray = _decode(img, name) * np.float32(255.0 * scale)
                return gray
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: not an image Pillow can read; expected PNG, JPEG, BMP, GIF, ...") from None
    except Exception as exc:  # Pillow's decoders raise many types (OSError, zlib.error, struct.error...)
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ImageError(f"{name}: corrupt or truncated image ({detail})") from None


def _decode(img: Image.Image, name: str) -> np.ndarray:
    """An opened image decoded within the memory bounds, upright, as grayscale in [0, 1]."""
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name}: {width}x{height} pixels is over the limit of {MAX_PIXELS:,}; resize the image first")
    if max(width, height) > MAX_DECODE_SIDE:
        raise ImageError(f"{name}: {width}x{height} pixels is longer than {MAX_DECODE_SIDE:,} on a side; "
                         "resize the image first")
    decoded = width * height * len(img.getbands()) * _BYTES_PER_BAND.get(img.mode, 1)
    if decoded > MAX_DECODED_BYTES:
        raise ImageError(f"{name}: {width}x{height} {img.mode} pixels would take {decoded >> 20} MB to decode "
                         f"(limit {MAX_DECODED_BYTES >> 20} MB); resize the image first")
    img.seek(0)  # first frame of an animation
    orientation = img.getexif().get(_EXIF_ORIENTATION)
    if img.format == "JPEG":
        img.draft(img.mode, (MAX_SIDE, MAX_SIDE))  # the decoder itself scales by 1/2, 1/4 or 1/8
    img.load()
    sixteen_bit = img.mode.startswith("I;16")
    small = _reduced(img)
    if orientation in _ORIENTATION:
        small = small.transpose(_ORIENTATION[orientation])
    gray = _to_gray01(small, sixteen_bit)
    if not np.isfinite(gray).all():
        raise ImageError(f"{name}: the image holds NaN or infinite pixel values; expected finite pixels")
    return gray


def _reduced(img: Image.Image) -> Image.Image:
    """The image, box-reduced by an integer factor to at most MAX_SIDE on its longer side."""
    factor = -(-max(img.size) // MAX_SIDE)
    if factor <= 1:
        return img
    if img.mode.startswith("I;16") or img.mode == "1":
        img = img.convert("I" if img.mode != "1" else "L")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        has_alpha = img.mode in ("PA",) or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    if img.mode in ("RGBA", "LA"):  # Pillow's own reduce would copy the whole image to premultiply alpha
        return Image.merge(img.mode, [img.getchannel(band).reduce(factor) for band in img.getbands()])
    return img.reduce(factor)


def _to_gray01(img: Image.Image, sixteen_bit: bool = False) -> np.ndarray:
    """Convert any Pillow mode to grayscale [0, 1], compositing transparency sensibly."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if sixteen_bit or img.mode.startswith("I;16") else max(float(np.nanmax(arr)), 1.0)
        return np.clip(arr / top, 0.0, 1.0).astype(np.float32)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
        if alpha.min() < 1.0:
            opaque = gray[alpha > 0.5]
            background = 1.0 if opaque.size and float(opaque.mean()) < 0.5 else 0.0
            gray = gray * alpha + background * (1.0 - alpha)
        return gray.astype(np.float32)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def mnist_frame(gray: np.ndarray, spec: ImageInput, name: str = "image") -> np.ndarray:
    """A grayscale image in [0, 1] -> an MNIST-like (rows, cols) frame in [0, 1], ink bright."""
    return digit_frame(gray, spec, name).frame


@dataclass(frozen=True)
class DigitFrame:
    """An image made ready for the digits model, and how clearly it showed a digit."""

    frame: np.ndarray  # (rows, cols) float32 in [0, 1], ink bright, as MNIST
    dark_on_light: bool  # the ink was darker than the paper
    contrast: float  # the ink's brightest level above the paper, in [0, 1] gray levels
    separation: float  # that contrast over the paper's grain (standard deviations); inf for a clean image
    ink_share: float  # the share of the image's pixels that are ink

    @property
    def unclear(self) -> bool:
        """True when the image does not look like one digit on plain paper (`is_unclear`)."""
        return is_unclear(self.separation, self.ink_share)


def is_unclear(separation: float, ink_share: float) -> bool:
    """Ink barely above the paper's grain, or "ink" over so much of the image that it is no digit
    on paper: an answer on such an image is a guess, and is flagged."""
    return separation < MIN_SEPARATION or ink_share > MAX_INK_SHARE


def digit_frame(gray: np.ndarray, spec: ImageInput, name: str = "image") -> DigitFrame:
    """A grayscale image in [0, 1] -> the MNIST-like frame and how clearly it shows a digit.

    The background is flattened first (edgeinfer.preprocess.background: uneven light, shadows
    and grain), then the ink is stretched to [0, 1], cropped to its bounding box (pixels above
    INK_THRESHOLD, or above NOISE_K grain deviations where the paper is grainy), scaled to fit
    `fit_px` and centred on its centre of mass.
    """
    ink = extract_ink(gray)
    img = ink.pixels
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    background = float(median(border))
    peak = float(img.max())
    if peak - background < 0.1:
        raise ImageError(f"{name}: no digit found (the image is blank or has no contrast)")
    contrast = peak - background
    threshold = max(INK_THRESHOLD, NOISE_K * ink.noise_sigma / contrast)
    img = np.clip((img - background) / contrast, 0.0, 1.0)
    mask = img > threshold
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ImageError(f"{name}: no digit found (nothing stands out of the paper's grain)")
    ink_share = len(ys) / mask.size
    img = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    img = np.where(img > threshold * 0.5, img, 0.0).astype(np.float32)

    height, width = img.shape
    scale = spec.fit_px / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = Image.fromarray(img, mode="F").resize((new_w, new_h), Image.Resampling.LANCZOS)
    patch = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)

    total = float(patch.sum())
    cy = float((patch.sum(axis=1) * np.arange(new_h)).sum() / total)
    cx = float((patch.sum(axis=0) * np.arange(new_w)).sum() / total)
    top = round((spec.rows - 1) / 2 - cy)
    left = round((spec.cols - 1) / 2 - cx)
    top = min(max(top, 0), spec.rows - new_h)
    left = min(max(left, 0), spec.cols - new_w)
    frame = np.zeros((spec.rows, spec.cols), dtype=np.float32)
    frame[top : top + new_h, left : left + new_w] = patch
    separation = contrast / ink.noise_sigma if ink.noise_sigma > 0 else math.inf
    return DigitFrame(frame, ink.dark_on_light, contrast, separation, ink_share)


def read_digit(source: str | os.PathLike[str] | bytes | np.ndarray | Image.Image, spec: ImageInput,
               name: str | None = None) -> DigitFrame:
    """What the user has -> the digit's frame and how clearly it shows a digit.

    `source`: an image file's path or bytes, a Pillow image, or pixels: (H, W) grayscale or
    (H, W, 3|4) RGB(A) uint8 (0..255), or (H, W) float in [0, 1]. `name` names it in errors.
    """
    if isinstance(source, (str, os.PathLike)):
        label = name or str(source)
        return digit_frame(read_gray(source, spec.scale), spec, label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "image bytes"
        return digit_frame(read_gray_bytes(bytes(source), label, spec.scale), spec, label)
    if isinstance(source, Image.Image):
        label = name or "image"
        try:
            gray = _decode(source, label) * np.float32(255.0 * spec.scale)
        except ImageError:
            raise
        except Exception as exc:
            detail = type(exc).__name__
            raise ImageError(f"{label}: {detail} while reading the image; expected a readable image") from None
        return digit_frame(gray, spec, label)
    if isinstance(source, np.ndarray):
        label = name or "image array"
        return digit_frame(gray_from_array(source, label), spec, label)
    raise ImageError(f"{name or 'image'}: a {type(source).__name__}; expected an image file's path or bytes, "
                     "a Pillow image, or pixels as a numpy array")


def gray_from_array(pixels: np.ndarray, name: str = "image array") -> np.ndarray:
    """(H, W) uint8 or float in [0, 1], or (H, W, 3|4) uint8 RGB(A) -> grayscale in [0, 1]. # (H, W)"""
    arr = pixels
    shape = "x".join(map(str, arr.shape))
    expected = "expected (H, W) grayscale or (H, W, 3|4) RGB(A) pixels, uint8 0..255 or float 0..1"
    if arr.ndim not in (2, 3) or 0 in arr.shape or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: pixels of shape {shape}; {expected}")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS or max(arr.shape[:2]) > MAX_DECODE_SIDE:
        raise ImageError(f"{name}: {arr.shape[1]}x{arr.shape[0]} pixels is over the limits ({MAX_PIXELS:,} pixels, "
                         f"{MAX_DECODE_SIDE:,} a side); resize the image first")
    if arr.dtype == np.uint8:
        mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
        img = Image.fromarray(np.ascontiguousarray(arr), mode=mode)
        return _to_gray01(_reduced(img))
    if arr.ndim == 2 and arr.dtype.kind == "f":
        gray = arr.astype(np.float32)
        if not np.isfinite(gray).all() or float(gray.min()) < 0.0 or float(gray.max()) > 1.0:
            raise ImageError(f"{name}: float pixels must be finite and in [0, 1]; {expected}")
        return gray if max(gray.shape) <= MAX_SIDE else _to_gray01(_reduced(Image.fromarray(gray, mode="F")))
    raise ImageError(f"{name}: pixels of type {arr.dtype} and shape {shape}; {expected}")


def load_digit(path: str | os.PathLike[str], spec: ImageInput) -> np.ndarray:
    """Read an image file and return the model input, normalised. # (rows, cols)"""
    return normalize(read_digit(path, spec).frame, spec)


def load_digit_bytes(data: bytes, spec: ImageInput, name: str = "stdin") -> np.ndarray:
    """`load_digit` for an image file's bytes. # (rows, cols)"""
    return normalize(read_digit(data, spec, name).frame, spec)
