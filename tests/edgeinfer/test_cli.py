"""The CLI as a user runs it: real MNIST test digits saved as PNG/JPEG, and every bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeinfer.preprocess.image import MAX_PIXELS
from edgeinfer.spec import FORMAT_VERSION
from tests.conftest import run_cli
from tests.edgeinfer.modelfile import strip_spec

N_IMAGES = 60


@pytest.fixture(scope="module")
def digit_files(mnist_test, tmp_path_factory) -> dict[str, tuple[list[Path], list[int]]]:
    """MNIST test digits as files: PNG light-on-dark, JPEG dark-on-light, at sizes other than 28x28."""
    images, labels = mnist_test
    folder = tmp_path_factory.mktemp("digits")
    variants: dict[str, tuple[list[Path], list[int]]] = {"png-light-on-dark": ([], []),
                                                         "jpg-dark-on-light": ([], [])}
    for i in range(N_IMAGES):
        canvas = np.zeros((40, 34), np.uint8)  # extra margin, not square
        canvas[5:33, 3:31] = images[i]
        big = Image.fromarray(canvas).resize((34 * 3, 40 * 3), Image.Resampling.BICUBIC)
        png = folder / f"{i}.png"
        big.save(png)
        jpg = folder / f"{i}.jpg"
        Image.fromarray(255 - np.asarray(big)).convert("RGB").resize((51, 60)).save(jpg, quality=90)
        for key, path in (("png-light-on-dark", png), ("jpg-dark-on-light", jpg)):
            variants[key][0].append(path)
            variants[key][1].append(int(labels[i]))
    return variants


@pytest.mark.parametrize("variant", ["png-light-on-dark", "jpg-dark-on-light"])
def test_classify_real_digits(digit_files, variant: str) -> None:
    files, labels = digit_files[variant]
    out = run_cli("classify", "image", "--json", *map(str, files))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    predicted = [int(r["label"]) for r in rows]
    accuracy = np.mean(np.array(predicted) == np.array(labels))
    assert accuracy >= 0.95, (variant, accuracy)
    assert all(0.0 <= r["probability"] <= 1.0 for r in rows)


def test_classify_text_output_and_top_k(digit_files) -> None:
    files, labels = digit_files["png-light-on-dark"]
    out = run_cli("classify", "image", "--top", "3", str(files[0]))
    assert out.returncode == 0
    name, rest = out.stdout.strip().split(": ", 1)
    parts = rest.split(", ")
    assert name == str(files[0]) and len(parts) == 3
    assert parts[0].startswith(f"{labels[0]} (")
    probs = [float(p.split("(")[1].rstrip(")")) for p in parts]
    assert probs == sorted(probs, reverse=True)


def test_bad_files_are_reported_and_others_still_classified(digit_files, tmp_path) -> None:
    good, _labels = digit_files["png-light-on-dark"]
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image\n")
    data = good[0].read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    side = int(MAX_PIXELS ** 0.5) + 100
    Image.new("1", (side, side)).save(tmp_path / "bomb.png")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    bad = ["missing.png", "empty.png", "text.png", "cut.png", "bomb.png", "blank.png"]
    args = [str(good[0]), *(str(tmp_path / b) for b in bad), str(good[1])]
    out = run_cli("classify", "image", *args)
    assert out.returncode == 1
    assert [line.split(":")[0] for line in out.stdout.splitlines()] == [str(good[0]), str(good[1])]
    err = out.stderr.strip().splitlines()
    assert len(err) == len(bad) and "Traceback" not in out.stderr
    for line, name in zip(err, bad, strict=True):
        assert line.startswith(f"error: {tmp_path / name}: "), line
    assert "no such file" in err[0] and "empty file" in err[1] and "not an image" in err[2]
    assert "truncated" in err[3] and "over the limit" in err[4] and "no digit found" in err[5]


def _one_line_error(out, *needles: str) -> None:
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_model_files(make_model, digit_files, tmp_path) -> None:
    image = str(digit_files["png-light-on-dark"][0][0])
    (tmp_path / "junk.onnx").write_bytes(b"\x89PNG this is no model")
    _one_line_error(run_cli("classify", "image", "--model", str(tmp_path / "junk.onnx"), image),
                    "junk.onnx", "not an ONNX model")
    strip_spec(make_model("gru", 1), tmp_path / "nospec.onnx")
    _one_line_error(run_cli("info", str(tmp_path / "nospec.onnx")), "nospec.onnx", "without an edgeinfer spec")
    _one_line_error(run_cli("classify", "image", "--model", "nope", image), "nope",
                    "built-in: characters, digits, motions, sentiment")


def test_unknown_provider_lists_available(digit_files) -> None:
    image = str(digit_files["png-light-on-dark"][0][0])
    _one_line_error(run_cli("classify", "image", "--provider", "TensorRT", image),
                    "'TensorRT' is not available; available:", "CPUExecutionProvider")
    assert run_cli("classify", "image", "--provider", "auto", image).returncode == 0


def test_info_and_models() -> None:
    out = run_cli("info", "digits", "--json")
    spec = json.loads(out.stdout)
    # the spec in format 7 terms: what the model reads and gives, no task, labels or readout
    assert spec["input"]["kind"] == "image" and spec["precision"] == "int8" and spec["extras"] == {}
    assert spec["output"] == {"kind": "classes", "per": "sequence", "names": list("0123456789")}
    assert not {"task", "labels", "readout"} & set(spec) and spec["format_version"] == FORMAT_VERSION
    assert [s["name"] for s in spec["state"]] == ["h", "c"]
    text = run_cli("info", "digits").stdout
    assert "answers       image -> classes per sequence; labels 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n" in text
    assert not re.search(r"^task ", text, re.MULTILINE)
    assert "lstm x1, hidden 128" in text and "h->h_next (1, B, 128)" in text
    assert "output y (B, 10), step also p (B, 10) = softmax" in text
    assert int(re.search(r"^format +(\d+)$", text, re.MULTILINE).group(1)) >= 4  # the file's own: 4, relaid
    assert spec["io"]["step_probabilities"] == "p"
    listing = run_cli("models").stdout.splitlines()
    assert [line.split(":")[0] for line in listing] == ["characters", "digits", "motions", "sentiment"]
    assert listing[0].startswith("characters: chars -> classes per sequence, lstm x2 hidden 512, int8, "
                                 "validation loss ")
    assert listing[1].startswith("digits: image -> classes per sequence, lstm x1 hidden 128, int8, test accuracy 99.")
    assert listing[2].startswith("motions: features -> classes per sequence, gru x1 hidden 64, int8, "
                                 "test accuracy 100.00%")
    assert listing[3].startswith("sentiment: words -> classes per sequence, gru x1 hidden 128, int8, test accuracy ")


def test_usage_errors_are_not_tracebacks() -> None:
    out = run_cli("classify", "image")
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr == (
        "error: the following arguments are required: FILE (see `edgeinfer classify image --help`)\n")


def test_readme_samples_golden() -> None:
    """The README's first command: every sample image in the repo gets its labelled digit."""
    samples = sorted(Path(__file__).resolve().parents[2].joinpath("samples").glob("digit-*.pgm"))
    assert len(samples) == 10
    out = run_cli("classify", "image", "--json", *map(str, samples))
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["label"] for r in rows] == [p.name.split("-")[1] for p in samples]
    assert min(r["probability"] for r in rows) > 0.9


def test_doctor_lists_providers_and_threads() -> None:
    import os

    import onnxruntime as ort
    out = run_cli("doctor")
    assert out.returncode == 0
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines() if not line.startswith("warning"))
    assert "CPUExecutionProvider" in out.stdout and ort.__version__ in lines["onnxruntime"]
    assert f"threads   {os.cpu_count()}" in out.stdout
