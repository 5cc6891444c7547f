"""The built-in digits model on real inputs (issue 17), through the CLI's preprocessing.

A fast, fixed subset of benchmarks/digits_robustness.py (which measures the full sets): image
files written to a temporary folder and read back with `load_digit`, as `edgeinfer classify
image` reads them, predicted in batches of 250 (as at export: the int8 LSTM quantizes each step
with one scale per batch). The floors sit a few images under today's measurement, so the test
fails if the model or the preprocessing gets worse; raise them when the retrained model ships.

Runtime only (no torch, no train/): Pillow, the system's fonts, and tests/datasets.py.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from edgeinfer import Model
from edgeinfer.preprocess.image import load_digit
from edgeinfer.spec import ImageInput

ROOT = Path(__file__).resolve().parents[1]
FONTS_JSON = ROOT / "benchmarks" / "digits_fonts.json"
BATCH = 250

# (b) the first 500 MNIST test digits, dark on light, upscaled 4x (bicubic) to 112x112, JPEG q90.
# Measured: 495/500 (99.0%); all 10,000 read 99.25% (benchmarks/digits_robustness.py; issue 17
# reported 98.6%, not reproduced with today's preprocessing). Issue 17's target: >= 99.2% on all 10,000.
JPEG_N = 500
BASELINE_JPEG = 0.986  # passes at 493/500, fails at 492 or fewer
# (c) the held-out half of benchmarks/digits_fonts.json (19 files: DejaVu, Liberation), digits
# 0-9 on a 64 px canvas, black on white and white on black. Measured: 376/380 (98.95%; the
# misses: DejaVuSans-Bold 6 -> 5, DejaVuSerif-Bold 4 -> 9). Issue 17's target: >= 98% on the
# held-out fonts (all sizes), already met on these two families; raise with the retrained model.
FONT_CANVAS = 64
# (e) the first 500 MNIST test digits as phone photos on unevenly lit, grainy paper (tests/photos.py,
# the benchmark's seed), JPEG q85. Measured: 497/500; all 10,000 read 99.41% (before the background
# was flattened: 13.4% on a set like it). The target: >= 99% on such photos.
PAPER_N = 500
BASELINE_PAPER = 0.99  # passes at 495/500, fails at 494 or fewer
BASELINE_FONTS = 0.984  # passes at 374/380, fails at 373 or fewer
# (d) the unseen families of benchmarks/digits_fonts.json (97 files of 25 families in neither half,
# from the eleven packages below) are split in two BY DEBIAN PACKAGE (held-out when the SHA-256 of
# the package name is odd; each entry's "half"): `train digits --font-share` prints the train side
# too (fonts-crosextra-caladea, -freefont-ttf, -go, -inconsolata, -noto-mono, -roboto-unhinted:
# 52 files, 13 families), so only the held-out side (fonts-comic-neue, -courier-prime,
# -crosextra-carlito, -linuxlibertine, -open-sans: 45 files, 12 families: Carlito, Comic Neue,
# Courier Prime/Code/Sans, Linux Biolinum/Libertine/Display/Initials/Mono, Open Sans/Condensed)
# measures families and packages never trained on. 64 px canvas, both polarities: 900 images.
# Measured with the built-in model (trained on the DejaVu/Liberation train half only): 888/900
# (98.67%; all three canvases 98.74%, benchmarks/digits_robustness.py); the misses: Open Sans's and
# Linux Biolinum's 1 (long flag, no foot) read as 7. Issue 17's target: >= 98% on fonts not used in
# training.
BASELINE_UNSEEN = 0.980  # passes at 882/900, fails at 881 or fewer
HELDOUT_PACKAGES = "fonts-dejavu-core fonts-dejavu-extra fonts-liberation"  # Debian packages of both halves
UNSEEN_PACKAGES = ("fonts-comic-neue fonts-courier-prime fonts-crosextra-caladea fonts-crosextra-carlito "
                   "fonts-freefont-ttf fonts-go fonts-inconsolata fonts-linuxlibertine fonts-noto-mono "
                   "fonts-open-sans fonts-roboto-unhinted")  # Debian packages of the unseen families
FONT_PACKAGES = f"{HELDOUT_PACKAGES} {UNSEEN_PACKAGES}"  # as .ci/run and the README install them


def font_half(file_name: str) -> str:
    """As benchmarks/digits_robustness.py: held-out when the name's SHA-256 is odd."""
    return "heldout" if int(hashlib.sha256(file_name.encode("utf-8")).hexdigest(), 16) % 2 else "train"


def system_fonts() -> dict[str, Path]:
    """Font file name -> path, for the TrueType/OpenType fonts on this machine."""
    paths: list[Path] = []
    if shutil.which("fc-list"):
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=True)
        paths = [Path(line) for line in out.stdout.splitlines()]
    paths += list(Path("/usr/share/fonts").rglob("*")) if Path("/usr/share/fonts").is_dir() else []
    return {p.name: p for p in sorted(paths) if p.suffix.lower() in (".ttf", ".otf")}


def render_digits(font_path: Path, canvas: int, dark_on_light: bool) -> list[Image.Image]:
    """As benchmarks/digits_robustness.py: the tallest digit takes 70% of the canvas, each centred."""
    def ink_box(font: ImageFont.FreeTypeFont, text: str) -> tuple[float, float, float, float]:
        return ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)

    probe = ImageFont.truetype(str(font_path), 100)
    tallest = max(ink_box(probe, str(d))[3] - ink_box(probe, str(d))[1] for d in range(10))
    font = ImageFont.truetype(str(font_path), max(1, round(100 * 0.7 * canvas / tallest)))
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    images = []
    for d in range(10):
        left, top, right, bottom = (int(v) for v in ink_box(font, str(d)))
        img = Image.new("L", (canvas, canvas), paper)
        ImageDraw.Draw(img).text(((canvas - (right - left)) / 2 - left, (canvas - (bottom - top)) / 2 - top),
                                 str(d), fill=ink, font=font)
        images.append(img)
    return images


def correct_through_files(model: Model, images: list[Image.Image], labels: np.ndarray, folder: Path,
                          suffix: str, **save: object) -> int:
    """Digits read right when each image is saved as a file and read back with load_digit."""
    spec = model.spec.require_input(ImageInput)
    inputs = []
    for i, img in enumerate(images):
        path = folder / f"{i:05d}{suffix}"
        img.save(path, **save)
        inputs.append(load_digit(path, spec))
    x = np.stack(inputs)
    predicted = np.concatenate([model.predict(x[i : i + BATCH]).argmax(1) for i in range(0, len(x), BATCH)])
    return int((predicted == labels).sum())


def test_font_split_follows_the_hash_rule() -> None:
    split = json.loads(FONTS_JSON.read_text(encoding="utf-8"))
    held = [e["file"] for e in split["heldout"]]
    train = [e["file"] for e in split["train"]]
    assert held and train and not set(held) & set(train)
    assert all(font_half(f) == "heldout" for f in held)
    assert all(font_half(f) == "train" for f in train)


def package_half(package: str) -> str:
    """As benchmarks/digits_robustness.py: an unseen family's package is held out when its name's SHA-256 is odd."""
    return "heldout" if int(hashlib.sha256(package.encode("utf-8")).hexdigest(), 16) % 2 else "train"


def test_unseen_families_share_nothing_with_the_halves() -> None:
    split = json.loads(FONTS_JSON.read_text(encoding="utf-8"))
    unseen = split["unseen_families"]
    halves = split["heldout"] + split["train"]
    assert unseen and not {e["file"] for e in unseen} & {e["file"] for e in halves}
    assert not {e["family"] for e in unseen} & {e["family"] for e in halves}
    assert {e["package"] for e in unseen} == set(split["unseen_packages"]) == set(UNSEEN_PACKAGES.split())


def test_unseen_families_are_split_by_package() -> None:
    """No package and no family of the held-out side is on the train side; both sides hold several
    families of several packages, and the split follows the package-name hash."""
    split = json.loads(FONTS_JSON.read_text(encoding="utf-8"))
    unseen = split["unseen_families"]
    assert all(e["half"] == package_half(e["package"]) for e in unseen)
    sides = {h: [e for e in unseen if e["half"] == h] for h in ("heldout", "train")}
    assert len(sides["heldout"]) + len(sides["train"]) == len(unseen)
    packages = {h: {e["package"] for e in es} for h, es in sides.items()}
    families = {h: {e["family"] for e in es} for h, es in sides.items()}
    assert not packages["heldout"] & packages["train"] and not families["heldout"] & families["train"]
    assert packages["heldout"] == set(split["unseen_heldout_packages"])
    assert packages["train"] == set(split["unseen_train_packages"])
    assert all(len(packages[h]) >= 4 and len(families[h]) >= 8 for h in sides)


def test_dark_on_light_upscaled_jpeg_mnist_digits(mnist_test, tmp_path: Path) -> None:
    images, labels = mnist_test
    side = images.shape[1] * 4
    pictures = [ImageOps.invert(Image.fromarray(a, mode="L")).resize((side, side), Image.Resampling.BICUBIC)
                for a in images[:JPEG_N]]
    correct = correct_through_files(Model("digits"), pictures, labels[:JPEG_N], tmp_path, ".jpg", quality=90)
    assert correct / JPEG_N >= BASELINE_JPEG, f"{correct}/{JPEG_N} dark-on-light JPEG digits read right"


def test_digits_photographed_on_unevenly_lit_paper(mnist_test, tmp_path: Path) -> None:
    from benchmarks.digits_robustness import PAPER_QUALITY, paper_set

    images, labels = mnist_test
    photos = paper_set(images[:PAPER_N])
    correct = correct_through_files(Model("digits"), photos, labels[:PAPER_N], tmp_path, ".jpg", quality=PAPER_QUALITY)
    assert correct / PAPER_N >= BASELINE_PAPER, f"{correct}/{PAPER_N} photographed digits read right"


def test_digits_printed_in_the_held_out_fonts(tmp_path: Path) -> None:
    held = [e["file"] for e in json.loads(FONTS_JSON.read_text(encoding="utf-8"))["heldout"]]
    found = system_fonts()
    missing = [f for f in held if f not in found]
    if missing:
        pytest.fail(f"held-out fonts missing: {', '.join(missing)}; install the Debian packages {HELDOUT_PACKAGES}")
    pictures: list[Image.Image] = []
    for name in held:
        for dark_on_light in (True, False):
            pictures += render_digits(found[name], FONT_CANVAS, dark_on_light)
    labels = np.tile(np.arange(10), len(held) * 2)
    correct = correct_through_files(Model("digits"), pictures, labels, tmp_path, ".png")
    assert correct / len(labels) >= BASELINE_FONTS, f"{correct}/{len(labels)} held-out font digits read right"


def test_digits_printed_in_font_families_never_seen_in_training(tmp_path: Path) -> None:
    """The held-out side of the unseen families only: the train side may be trained on."""
    split = json.loads(FONTS_JSON.read_text(encoding="utf-8"))
    unseen = [e for e in split["unseen_families"] if e["half"] == "heldout"]
    found = system_fonts()
    missing = [e for e in unseen if e["file"] not in found]
    if missing:
        packages = " ".join(sorted({e["package"] for e in missing}))
        pytest.fail(f"{len(missing)} fonts of the unseen families missing ({', '.join(e['file'] for e in missing[:5])}"
                    f"{', ...' if len(missing) > 5 else ''}); install the Debian packages {packages} "
                    f"(all of them: {UNSEEN_PACKAGES})")
    pictures: list[Image.Image] = []
    for entry in unseen:
        for dark_on_light in (True, False):
            pictures += render_digits(found[entry["file"]], FONT_CANVAS, dark_on_light)
    labels = np.tile(np.arange(10), len(unseen) * 2)
    correct = correct_through_files(Model("digits"), pictures, labels, tmp_path, ".png")
    assert correct / len(labels) >= BASELINE_UNSEEN, (
        f"{correct}/{len(labels)} digits printed in held-out font families (never trained on) read right")
