"""The digits model on real inputs (issue 17): image files through the CLI's preprocessing.

    python benchmarks/digits_robustness.py [--model digits] [--data DIR] [--sets mnist,jpeg,paper,fonts,perturb]
                                           [--perturb-n 1000] [--fonts-json benchmarks/digits_fonts.json]

Every image is written to a temporary folder as a file and read back with `load_digit`, as
`edgeinfer classify image FILE...` reads it; the inputs are predicted with `model.predict` in
batches of 250 (as at export and in benchmarks/accuracy.py: the int8 LSTM quantizes each
step with one scale per batch). A file `load_digit` refuses (e.g. "no digit found") counts as
wrong and is counted in the `refused` column. Sets:

- mnist: the 10,000 MNIST test digits as published (28x28, light on dark), saved as PNG.
- jpeg: the same 10,000 dark on light (inverted), upscaled 4x to 112x112 (bicubic), saved as
  JPEG quality 90 (issue 17's report: 98.6%).
- paper: the 10,000 MNIST test digits as phone photos of ink on paper under uneven light
  (tests/photos.py: a gradient in a random direction taking 30-65% of the light away, half the
  time a vignette, off-white tinted paper, grain, slight blur), saved as JPEG quality 85;
  seeded (PAPER_SEED), drawn once, never tuned to: the preprocessing's constants were chosen on
  the first 2,000 digits of another seed (0). Also reported: how many the preprocessing flagged
  "unclear".
- fonts: the digits 0-9 printed in every TrueType/OpenType font on the machine (`fc-list`, else
  /usr/share/fonts/**/*.ttf|otf), black on white and white on black, on 28, 64 and 128 px square
  canvases (the tallest digit takes 70% of the height; margins around), saved as PNG. Each font
  file is a font here: the bold, italic, condensed... faces of a family are files of their own.
  The files are split in two by a hash of the file name (`font_half`: held-out when the SHA-256
  of the name is odd): "train" fonts for a future training run, "held-out" fonts for evaluating
  it. The rule looks at one name at a time, so installing more fonts never moves a font from
  one half to the other. Reported per half, and per held-out font.
  Once --fonts-json exists, its two halves are kept as recorded (the built-in model trained on
  its train half): a font file in neither half is listed under "unseen_families" when its family
  is in neither half either (the held-out half shares DejaVu and Liberation families with the
  train half, so only these measure fonts the model never saw anything of), with the Debian
  package it came from (`dpkg -S`); a new file of a recorded family is left out, with a note;
  recorded unseen fonts that this machine lacks stay listed.
  The unseen families are split in two BY DEBIAN PACKAGE (`package_half`, UNSEEN_SPLIT_RULE:
  held-out when the SHA-256 of the package name is odd), recorded as each entry's "half", so
  that no family, and no package, of the held-out side is ever trained on: `train digits
  --font-share` prints the train side too (train/augment.py, half "unseen_train"), and the
  held-out side ("unseen held-out") is the honest figure for fonts never seen in training,
  reported overall, per family and per font; the train side is reported per family, for
  information. A recorded file keeps its recorded half; a new one takes its package's (no
  package known: held out).
  Files in UNSEEN_EXCLUDED (keycaps: not printed digits) are left out of the list, measured on a
  row of their own.
- perturb: the first N (default 1,000) MNIST test digits, light on dark at 28x28, changed one
  way each: thicker strokes (MaxFilter 3 and 5: dilation by 1 and 2 px), thinner (MinFilter 3:
  erosion by 1 px), rotated by +12 and -12 degrees (bicubic), blurred (Gaussian, radius 1); and,
  upscaled 4x first (112x112, bicubic), thicker and thinner by 2 px there (MaxFilter/MinFilter 5:
  half a pixel at MNIST's scale, a slightly broader or finer pen).

Prints a markdown table (accuracy and the mean top probability per set) and writes the font
split, both halves and the unseen families with their halves, to --fonts-json
(benchmarks/accuracy.py evaluates the held-out half and the held-out unseen families).
Runtime only (numpy, Pillow, edgeinfer; the data is read by tests/datasets.py): no torch.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer
from edgeinfer.errors import ImageError
from edgeinfer.model import Model
from edgeinfer.preprocess.image import normalize, read_digit
from edgeinfer.spec import ImageInput
from tests import datasets
from tests.photos import paper_photo

BATCH = 250  # as at export: the int8 LSTM quantizes each step with one scale per batch
CANVASES = (28, 64, 128)  # font digits: square canvas sides, px
DIGIT_HEIGHT = 0.7  # the tallest digit of a font takes this share of the canvas height
JPEG_QUALITY = 90
PAPER_QUALITY = 85  # the paper photos' JPEG quality
PAPER_SEED = 2026  # the paper set's seed (the preprocessing was tuned on seed 0)
UPSCALE = 4  # MNIST 28x28 -> 112x112
FONT_SUFFIXES = (".ttf", ".otf")
FONTS_JSON = Path(__file__).resolve().parent / "digits_fonts.json"
SPLIT_RULE = "held-out when int(sha256(file name, UTF-8).hexdigest(), 16) is odd, else train"
UNSEEN_RULE = ("files in neither recorded half whose family is in neither half; halves kept as recorded; "
               "split in two by Debian package (unseen_split_rule)")
UNSEEN_SPLIT_RULE = ("unseen families: half 'heldout' when int(sha256(Debian package name, UTF-8).hexdigest(), 16) "
                     "is odd, else 'train' (trained on by train digits --font-share as 'unseen_train'); "
                     "a recorded file keeps its half; no package known: heldout")
# font files of the unseen families' packages whose digits are not printed digits: left out of the
# list (still measured, on a row of their own). Decorative faces whose digits are digits stay in
# (Linux Libertine Initials' outlined digits, Go Smallcaps).
UNSEEN_EXCLUDED = {
    "LinBiolinum_K.otf": "Linux Biolinum Keyboard: each digit is a small glyph drawn inside a keycap frame",
}


# ---------------------------------------------------------------- fonts


def find_fonts() -> tuple[list[Path], str]:
    """The machine's TrueType/OpenType font files, sorted, and how they were found."""
    files: set[Path] = set()
    how = "fc-list"
    if shutil.which("fc-list"):
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=True).stdout
        files = {Path(line) for line in out.splitlines() if line.lower().endswith(FONT_SUFFIXES)}
    if not files:
        how = "glob /usr/share/fonts"
        for suffix in FONT_SUFFIXES:
            files.update(Path(p) for p in glob.glob(f"/usr/share/fonts/**/*{suffix}", recursive=True))
    return sorted(files, key=lambda p: (p.name, str(p))), how


def font_half(file_name: str) -> str:
    """'heldout' or 'train' for a font file name (no folder), by SPLIT_RULE."""
    return "heldout" if int(hashlib.sha256(file_name.encode("utf-8")).hexdigest(), 16) % 2 else "train"


def package_half(package: str) -> str:
    """'heldout' or 'train' for an unseen family's Debian package name, by UNSEEN_SPLIT_RULE."""
    if not package:
        return "heldout"
    return "heldout" if int(hashlib.sha256(package.encode("utf-8")).hexdigest(), 16) % 2 else "train"


def font_entry(path: Path) -> dict[str, str]:
    family, style = ImageFont.truetype(str(path), 20).getname()
    return {"file": path.name, "family": family or "", "style": style or "", "path": str(path)}


def font_split(paths: Sequence[Path], how: str, recorded: dict[str, Any] | None = None,
               notes: list[str] | None = None) -> dict[str, Any]:
    """Both halves (by SPLIT_RULE, or as `recorded`) and the unseen families (by UNSEEN_RULE)."""
    entries = [font_entry(p) for p in paths]
    if recorded is None:
        held = [e for e in entries if font_half(e["file"]) == "heldout"]
        train = [e for e in entries if font_half(e["file"]) == "train"]
        found_with = how
    else:
        held, train = list(recorded["heldout"]), list(recorded["train"])
        found_with = str(recorded.get("found_with", how))
    known_files = {e["file"] for e in held + train}
    known_families = {e["family"] for e in held + train}
    unseen = []
    for e in entries:
        if e["file"] in known_files:
            continue
        if e["family"] in known_families:
            if notes is not None:
                notes.append(f"left out: {e['file']} (family {e['family']!r} is in a recorded half)")
        elif e["file"] not in UNSEEN_EXCLUDED:
            unseen.append(e)
    packages = debian_packages([Path(e["path"]) for e in unseen])
    recorded_unseen = {e["file"]: e for e in (recorded or {}).get("unseen_families", [])}
    for e in unseen:
        e["package"] = packages.get(e["path"], "") or recorded_unseen.get(e["file"], {}).get("package", "")
        e["half"] = recorded_unseen.get(e["file"], {}).get("half") or package_half(e["package"])
    if recorded is not None:  # recorded unseen fonts this machine lacks stay listed
        found = {e["file"] for e in unseen}
        for e in recorded.get("unseen_families", []):
            if e["file"] not in found:
                unseen.append({**e, "half": e.get("half") or package_half(e.get("package", ""))})
        unseen.sort(key=lambda e: (e["file"], e["path"]))
    return {
        "issue": 17,
        "rule": SPLIT_RULE,
        "found_with": found_with,
        "heldout": held,
        "train": train,
        "unseen_rule": UNSEEN_RULE,
        "unseen_packages": sorted({e["package"] for e in unseen if e["package"]}),
        "unseen_split_rule": UNSEEN_SPLIT_RULE,
        "unseen_train_packages": sorted({e["package"] for e in unseen if e["package"] and e["half"] == "train"}),
        "unseen_heldout_packages": sorted({e["package"] for e in unseen if e["package"] and e["half"] == "heldout"}),
        "unseen_excluded": [{"file": f, "reason": r} for f, r in UNSEEN_EXCLUDED.items()],
        "unseen_families": unseen,
    }


def debian_packages(paths: Sequence[Path]) -> dict[str, str]:
    """Path -> the Debian package that installed it (`dpkg -S`), for those dpkg knows."""
    if not paths or not shutil.which("dpkg"):
        return {}
    out = subprocess.run(["dpkg", "-S", *map(str, paths)], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        package, sep, path = line.partition(": ")
        if sep:
            found[path] = package.split(":")[0]
    return found


def render_digits(font_path: str | Path, canvas: int, dark_on_light: bool) -> list[Image.Image]:
    """The digits 0-9 in one font on square canvases of `canvas` px, each centred on its ink."""
    probe = ImageFont.truetype(str(font_path), 100)
    tallest = max(_ink_box(probe, str(d))[3] - _ink_box(probe, str(d))[1] for d in range(10))
    font = ImageFont.truetype(str(font_path), max(1, round(100 * DIGIT_HEIGHT * canvas / tallest)))
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    images = []
    for d in range(10):
        left, top, right, bottom = _ink_box(font, str(d))
        img = Image.new("L", (canvas, canvas), paper)
        xy = ((canvas - (right - left)) / 2 - left, (canvas - (bottom - top)) / 2 - top)
        ImageDraw.Draw(img).text(xy, str(d), fill=ink, font=font)
        images.append(img)
    return images


def _ink_box(font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def font_set(entries: Sequence[dict[str, str]], canvases: Sequence[int] = CANVASES,
             ) -> tuple[list[Image.Image], np.ndarray, list[str]]:
    """Images, labels and the font file of each, for every font x canvas x polarity x digit."""
    images: list[Image.Image] = []
    labels: list[int] = []
    fonts: list[str] = []
    for entry in entries:
        for canvas in canvases:
            for dark_on_light in (True, False):
                images += render_digits(entry["path"], canvas, dark_on_light)
                labels += range(10)
                fonts += [entry["file"]] * 10
    return images, np.array(labels, dtype=np.int64), fonts


# ---------------------------------------------------------------- MNIST variants


def mnist_png(images: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(a, mode="L") for a in images]


def mnist_dark_jpeg_size(images: np.ndarray) -> list[Image.Image]:
    """Dark on light, upscaled 4x (bicubic); saved as JPEG by the caller."""
    side = images.shape[1] * UPSCALE
    return [ImageOps.invert(Image.fromarray(a, mode="L")).resize((side, side), Image.Resampling.BICUBIC)
            for a in images]


PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "dilate 1 px (MaxFilter 3)": lambda im: im.filter(ImageFilter.MaxFilter(3)),
    "dilate 2 px (MaxFilter 5)": lambda im: im.filter(ImageFilter.MaxFilter(5)),
    "erode 1 px (MinFilter 3)": lambda im: im.filter(ImageFilter.MinFilter(3)),
    "rotate +12 deg": lambda im: im.rotate(12, resample=Image.Resampling.BICUBIC, fillcolor=0),
    "rotate -12 deg": lambda im: im.rotate(-12, resample=Image.Resampling.BICUBIC, fillcolor=0),
    "blur (Gaussian r=1)": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
    # the pen of a photographed digit: +-2 px at 112x112 is +-0.5 px at MNIST's scale
    "112x112, dilate 2 px (MaxFilter 5)": lambda im: _upscaled(im).filter(ImageFilter.MaxFilter(5)),
    "112x112, erode 2 px (MinFilter 5)": lambda im: _upscaled(im).filter(ImageFilter.MinFilter(5)),
}


def paper_set(images: np.ndarray, seed: int = PAPER_SEED) -> list[Image.Image]:
    """The digits as phone photos on unevenly lit paper (tests/photos.py), seeded."""
    rng = np.random.default_rng(seed)
    return [paper_photo(a, rng) for a in images]


def _upscaled(im: Image.Image) -> Image.Image:
    return im.resize((im.width * UPSCALE, im.height * UPSCALE), Image.Resampling.BICUBIC)


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Result:
    name: str
    n: int
    correct: np.ndarray  # (N,) bool
    top: np.ndarray  # (N,) top probability; 0 where refused
    predicted: np.ndarray  # (N,) -1 where refused
    refused: int
    seconds: float
    unclear: int = 0  # answered, flagged "unclear"

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def mean_top(self) -> float:
        kept = self.predicted >= 0
        return float(self.top[kept].mean()) if kept.any() else float("nan")


def evaluate(model: Model, name: str, images: Sequence[Image.Image], labels: np.ndarray, folder: Path,
             suffix: str = ".png", **save: object) -> Result:
    """Write each image to `folder` as a file, read it back with load_digit, predict in batches."""
    start = time.perf_counter()
    spec = model.spec.require_input(ImageInput)
    inputs, index, unclear = [], [], 0
    for i, img in enumerate(images):
        path = folder / f"{name.replace(' ', '_')[:24]}_{i:05d}{suffix}"
        img.save(path, **save)
        try:
            got = read_digit(path, spec)
            inputs.append(normalize(got.frame, spec))
            index.append(i)
            unclear += got.unclear
        except ImageError:
            pass
        path.unlink()
    n = len(images)
    predicted = np.full(n, -1, dtype=np.int64)
    top = np.zeros(n, dtype=np.float64)
    if inputs:
        x = np.stack(inputs)
        probs = np.concatenate([model.predict(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])
        predicted[index] = probs.argmax(1)
        top[index] = probs.max(1)
    return Result(name, n, predicted == labels, top, predicted, n - len(inputs), time.perf_counter() - start,
                  unclear)


def row(r: Result) -> str:
    return (f"| {r.name} | {r.n:,} | {100 * r.accuracy:.2f}% | {r.mean_top:.3f} | {r.refused} | {r.unclear} "
            f"| {r.seconds:.0f} s |")


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="digits", help="a built-in name or a model file (default: digits)")
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: $EDGEINFER_DATA or "
                                                                "../shared/data)")
    parser.add_argument("--sets", default="mnist,jpeg,paper,fonts,perturb", help="comma-separated sets to run")
    parser.add_argument("--perturb-n", type=int, default=1000, help="MNIST test digits per perturbation")
    parser.add_argument("--fonts-json", type=Path, default=FONTS_JSON, help="where to write the font split "
                                                                            "('-': do not write)")
    args = parser.parse_args(argv)
    sets = {s.strip() for s in args.sets.split(",") if s.strip()}
    unknown = sets - {"mnist", "jpeg", "paper", "fonts", "perturb"}
    if unknown:
        parser.error(f"unknown sets: {', '.join(sorted(unknown))}")

    model = edgeinfer.load(args.model)
    model.require_input(ImageInput)
    results: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="digits_robustness_") as tmp:
        if sets & {"mnist", "jpeg", "paper", "perturb"}:
            results += run_mnist(model, sets, args.data, args.perturb_n, Path(tmp))
        if "fonts" in sets:
            results += run_fonts(model, args.fonts_json, Path(tmp), notes)

    print(f"model: {args.model}\n")
    print("| set | images | accuracy | mean top probability | refused | unclear | time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(row(r))
    for note in notes:
        print(note)
    return 0


def run_mnist(model: Model, sets: set[str], data: Path | None, perturb_n: int, folder: Path) -> list[Result]:
    images, labels = datasets.mnist_test(data)
    results = []
    if "mnist" in sets:
        results.append(evaluate(model, "MNIST test, PNG 28x28 light on dark", mnist_png(images), labels, folder))
    if "jpeg" in sets:
        results.append(evaluate(model, "MNIST test, dark on light, 112x112 JPEG q90", mnist_dark_jpeg_size(images),
                                labels, folder, ".jpg", quality=JPEG_QUALITY))
    if "paper" in sets:
        results.append(evaluate(model, "MNIST test, photos on unevenly lit paper, JPEG q85", paper_set(images),
                                labels, folder, ".jpg", quality=PAPER_QUALITY))
    if "perturb" in sets:
        subset, sub_labels = images[:perturb_n], labels[:perturb_n]
        originals = mnist_png(subset)
        results.append(evaluate(model, f"MNIST first {len(subset):,}, unchanged", originals, sub_labels, folder))
        for pname, change in PERTURBATIONS.items():
            results.append(evaluate(model, f"MNIST first {len(subset):,}, {pname}", [change(im) for im in originals],
                                    sub_labels, folder))
    return results


def run_fonts(model: Model, fonts_json: Path, folder: Path, notes: list[str]) -> list[Result]:
    paths, how = find_fonts()
    recorded_at = FONTS_JSON if str(fonts_json) == "-" else fonts_json
    recorded = json.loads(recorded_at.read_text(encoding="utf-8")) if recorded_at.is_file() else None
    split = font_split(paths, how, recorded, notes)
    held, train, unseen = split["heldout"], split["train"], split["unseen_families"]
    unseen_held = [e for e in unseen if e["half"] == "heldout"]
    unseen_train = [e for e in unseen if e["half"] == "train"]
    notes.append(f"fonts: {len(paths)} files found with {how}; {len(held)} held out, {len(train)} train "
                 f"({'as recorded in ' + str(recorded_at) if recorded else 'split by the hash rule'}), "
                 f"{len(unseen)} of unseen families: {len(unseen_held)} held out "
                 f"({', '.join(split['unseen_heldout_packages'])}), {len(unseen_train)} train "
                 f"({', '.join(split['unseen_train_packages'])}); "
                 f"{len(CANVASES)} canvases {CANVASES} x 2 polarities x 10 digits each")
    if str(fonts_json) != "-":
        fonts_json.write_text(json.dumps(split, indent=2) + "\n", encoding="utf-8")
        notes.append(f"font split written to {fonts_json}")
    present = set(map(str, paths))
    results = []
    by_file = {e["file"]: e for e in map(font_entry, paths)}
    excluded = [by_file[f] for f in UNSEEN_EXCLUDED if f in by_file]
    groups = (("held-out", "held-out half", held), ("train", "train half", train),
              ("unseen held-out", "unseen families, held-out packages (never trained on)", unseen_held),
              ("unseen train", "unseen families, train packages", unseen_train),
              ("left out", "left out: digits on keycaps", excluded))
    for half, title, listed in groups:
        entries = [e for e in listed if e["path"] in present]
        if len(entries) < len(listed):
            notes.append(f"{half} fonts not installed, left out: "
                         f"{', '.join(e['file'] for e in listed if e['path'] not in present)}")
        if not entries:
            continue
        imgs, labs, files = font_set(entries)
        label = f"{len(entries)} files, {len({e['family'] for e in entries})} families"
        res = evaluate(model, f"fonts, {title} ({label})", imgs, labs, folder)
        results.append(res)
        by_size = np.array([c for _ in entries for c in CANVASES for _ in range(20)])
        for canvas in CANVASES:
            m = by_size == canvas
            notes.append(f"{half} fonts, {canvas} px canvas: {100 * res.correct[m].mean():.2f}%, "
                         f"mean top {res.top[m].mean():.3f}")
        if half.startswith("unseen"):
            notes += _per_family(res, labs, files, entries)
        if half not in ("train", "unseen train"):
            notes += _per_font(res, labs, files)
    return results


def _per_family(res: Result, labels: np.ndarray, files: list[str], entries: Sequence[dict[str, str]]) -> list[str]:
    """One line per family: accuracy over its images and how many of each misread digit."""
    family_of = {e["file"]: e["family"] for e in entries}
    package_of = {e["file"]: e.get("package", "") for e in entries}
    families = np.array([family_of[f] for f in files])
    lines = []
    for family in dict.fromkeys(family_of[e["file"]] for e in entries):
        m = families == family
        n_files = sum(1 for e in entries if e["family"] == family)
        wrong: dict[str, int] = {}
        for t, p in zip(labels[m], res.predicted[m], strict=True):
            if t != p:
                key = f"{t}->{p if p >= 0 else '?'}"
                wrong[key] = wrong.get(key, 0) + 1
        package = next(package_of[e["file"]] for e in entries if e["family"] == family)
        lines.append(f"  family {family} ({package}, {n_files} files): {100 * res.correct[m].mean():.2f}% "
                     f"({int(m.sum())}); wrong: {', '.join(f'{k} x{v}' for k, v in wrong.items()) or 'none'}")
    return lines


def _per_font(res: Result, labels: np.ndarray, files: list[str]) -> list[str]:
    """One line per font: accuracy over its 60 images and the digits it got wrong."""
    lines = []
    names = np.array(files)
    for name in dict.fromkeys(files):
        m = names == name
        wrong = [f"{t}->{p if p >= 0 else '?'}" for t, p in zip(labels[m], res.predicted[m], strict=True) if t != p]
        lines.append(f"  {name}: {100 * res.correct[m].mean():.1f}% ({int(m.sum())}), mean top "
                     f"{res.top[m].mean():.3f}; wrong: {', '.join(wrong) or 'none'}")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
