"""Labelled answers: Model.classify takes what the user has and returns Answer objects."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import edgeinfer
from edgeinfer import Answer, InputError
from tests.photos import paper_photo


def test_images_as_files_bytes_and_pixels(mnist_test, tmp_path) -> None:
    images, labels = mnist_test
    model = edgeinfer.load("digits")
    path = tmp_path / "d.png"
    Image.fromarray(images[0]).save(path)
    got = model.classify([path, path.read_bytes(), images[1], 255 - images[2]])
    assert [a.label for a in got] == [str(labels[0]), str(labels[0]), str(labels[1]), str(labels[2])]
    assert got[0].source == str(path) and got[2].source == "image 2"
    one = got[0]
    assert isinstance(one, Answer) and set(one.scores) == set(model.spec.labels)
    assert one.probability == max(one.scores.values()) and abs(sum(one.scores.values()) - 1) < 1e-5
    assert one.top(2)[0] == (one.label, one.probability) and len(one.top(3)) == 3 and one.flags == ()
    probs = model.predict(np.stack([edgeinfer.load_digit(path, model.spec.input)]))[0]
    assert abs(one.probability - float(probs.max())) < 1e-6  # the array-level call agrees
    single = model.classify(images[3])  # one input: a list of one answer
    assert len(single) == 1 and single[0].label == str(labels[3])
    early = model.classify(images[3], early_exit=0.9)[0]
    assert early.steps is not None and 1 <= early.steps <= 28


def test_a_photo_on_uneven_paper_reads_right_and_flags_nothing(mnist_test) -> None:
    images, labels = mnist_test
    rng = np.random.default_rng(5)
    photos = [np.asarray(paper_photo(images[i], rng)) for i in range(20)]
    got = edgeinfer.load("digits").classify(photos)
    assert sum(a.label == str(labels[i]) for i, a in enumerate(got)) >= 19
    assert not any(a.flags for a in got)


def test_texts_and_sequences() -> None:
    got = edgeinfer.load("sentiment").classify(["a wonderful, moving film", "zzzq qqxv"])
    assert got[0].label == "positive" and got[0].flags == () and got[1].flags == ("low_coverage",)
    assert got[1].doubtful and not got[0].doubtful
    motions = edgeinfer.load("motions")
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(40, 6)), rng.normal(size=(25, 6))]  # lengths may differ
    got = motions.classify(seqs)
    assert [a.source for a in got] == ["sequence 0", "sequence 1"]
    for seq, answer in zip(seqs, got, strict=True):
        assert abs(answer.probability - float(motions.predict(seq).max())) < 1e-5


@pytest.mark.parametrize("model, inputs, why", [
    ("digits", [], "no images given"),
    ("digits", [object()], "a object; expected an image"),
    ("sentiment", ["fine", 3], "text 1 is 3; expected a string"),
    ("sentiment", ["", "good"], "text 0 is empty"),
    ("motions", [np.zeros((5, 2))], r"sequence 0 has shape \(5, 2\)"),
    ("motions", 7, "expected feature sequences"),
    ("characters", ["abc"], "a characters model"),
])
def test_wrong_inputs_are_typed_errors(model: str, inputs: object, why: str) -> None:
    with pytest.raises(edgeinfer.EdgeInferError, match=why):
        edgeinfer.load(model).classify(inputs)


def test_text_models_do_not_exit_early() -> None:
    with pytest.raises(InputError, match="a text is read whole"):
        edgeinfer.load("sentiment").classify(["good"], early_exit=0.9)


def test_the_cli_flags_an_unclear_image(tmp_path) -> None:
    rng = np.random.default_rng(1)
    paper = np.full((160, 160), 0.8)
    paper[40:120, 75:85] -= 0.12  # a faint stroke on grainy paper: 7.2 grain deviations
    noisy = np.clip(paper + rng.normal(0, 0.03, paper.shape), 0, 1)
    path = tmp_path / "faint.png"
    Image.fromarray((noisy * 255).astype(np.uint8)).save(path)
    run = subprocess.run([sys.executable, "-m", "edgeinfer", "classify", "image", "--json", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["unclear"] is True
    assert "unclear image" in run.stderr and "the answer may be a guess" in run.stderr
