"""The font split of benchmarks/digits_fonts.json, which the digits figures on printed digits use.

The built-in digits model on real inputs (image files through the CLI's preprocessing: MNIST as
dark-on-light JPEGs and as photos on paper, the held-out fonts, the unseen families' held-out
packages), with its floors: benchmarks/accuracy.py (run by the slow tier's
tests/test_shipped_models.py); benchmarks/digits_robustness.py prints the full table.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FONTS_JSON = ROOT / "benchmarks" / "digits_fonts.json"
UNSEEN_PACKAGES = ("fonts-comic-neue fonts-courier-prime fonts-crosextra-caladea fonts-crosextra-carlito "
                   "fonts-freefont-ttf fonts-go fonts-inconsolata fonts-linuxlibertine fonts-noto-mono "
                   "fonts-open-sans fonts-roboto-unhinted")  # Debian packages of the unseen families


def font_half(file_name: str) -> str:
    """As benchmarks/digits_robustness.py: held-out when the name's SHA-256 is odd."""
    return "heldout" if int(hashlib.sha256(file_name.encode("utf-8")).hexdigest(), 16) % 2 else "train"


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
