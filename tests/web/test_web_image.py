"""The JavaScript image preprocessing (web/src/image.js) agrees with Python's load_digit.

500 real MNIST test digits as PNG files, light on dark and dark on light, at 28, 56 and 112 px,
plus transparent, oversized and blank images (tests/web/image_refs.py), are decoded by Pillow to
RGBA as a canvas would hold them; `node --test web/test/image.test.js` preprocesses each one and
checks the mean absolute difference per image (<= 0.01; the port is exact to float32 rounding);
here the built-in digits model labels both sides' inputs, which must agree on >= 99.8%.
Needs node (>= 20) on PATH; web/node_modules is not needed (image.js has no dependencies).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from tests.conftest import ROOT
from tests.web.image_refs import write_refs

DIGITS = 500
MAX_MEAN_ABS = 0.01  # per image, on the normalised input
MIN_LABEL_AGREEMENT = 0.998


def test_js_preprocessing_matches_python(mnist_test: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:  # fails, never skips: the JavaScript runtime is part of the project
        pytest.fail("node is not installed; the JavaScript runtime's tests need Node.js >= 20 (apt-get install nodejs)")
    model = edgeinfer.load("digits")
    spec = model.spec.input
    manifest = write_refs(tmp_path, mnist_test[0][:DIGITS], spec)
    env = {**os.environ, "EDGEINFER_IMAGE_REFS": str(tmp_path)}
    run = subprocess.run([node, "--test", "web/test/image.test.js"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"node --test failed:\n{run.stdout[-6000:]}{run.stderr[-2000:]}"

    entries = manifest["images"]
    assert isinstance(entries, list)
    shape = (len(entries), spec.rows, spec.cols)
    python = np.fromfile(tmp_path / "python.bin", "<f4").reshape(shape)
    js = np.fromfile(tmp_path / "js.bin", "<f4").reshape(shape)
    kept = [i for i, entry in enumerate(entries) if "error" not in entry]
    assert len(kept) == len(entries) - 4  # only the four blank images are refused (by both: node checked)
    diff = np.abs(python[kept] - js[kept]).mean(axis=(1, 2))
    # one image at a time: the int8 model quantizes each batch with its own scale
    agree = np.array([model.predict(python[i]).argmax() == model.predict(js[i]).argmax() for i in kept])
    report = json.loads((tmp_path / "js.json").read_text())
    print(f"{len(kept)} images: mean |JS - Python| max {diff.max():.3g}, mean {diff.mean():.3g}, "
          f"{int((diff == 0).sum())} identical; labels agree on {agree.mean():.2%}; JS took {report['ms']:.0f} ms")
    assert diff.max() <= MAX_MEAN_ABS, entries[kept[int(diff.argmax())]]
    assert agree.mean() >= MIN_LABEL_AGREEMENT, [entries[kept[i]] for i in np.nonzero(~agree)[0]]
