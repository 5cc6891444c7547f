"""`edgeinfer classify image`: the digit in each image file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeinfer.cli.args import Exit, Parser, UsageError, add_json, add_model, describe, finite, runs, whole
from edgeinfer.cli.render import digit_result, fail, warn
from edgeinfer.cli.stdin import read_stdin_bytes
from edgeinfer.errors import EdgeInferError, InputError
from edgeinfer.model import Model
from edgeinfer.preprocess.image import normalize, read_digit
from edgeinfer.spec import ImageInput

MAX_IMAGE_BYTES = 256 << 20  # an image read from stdin may be at most this large


def configure_classify(p: Parser) -> None:
    """`edgeinfer classify image`: named alone, `classify` prints its help."""
    p.set_defaults(helper=p)
    kinds = p.add_subparsers(metavar="KIND", title="kinds of input")
    image = kinds.add_parser("image", help="the digit in each image file", description=describe(classify_image))
    image.add_argument("files", nargs="+", type=Path, metavar="FILE",
                       help="image files (PNG, JPEG, BMP, GIF, ...); - reads one from stdin")
    add_model(image, "digits")
    image.add_argument("--top", "-k", type=whole(1), default=1, metavar="K",
                       help="print the K most likely digits (default 1)")
    image.add_argument("--early-exit", dest="early", type=finite, metavar="P",
                       help="stop reading rows once the top probability reaches P (e.g. 0.99)")
    add_json(image)
    runs(image, classify_image)


def classify_image(files: list[Path], model: str = "digits", provider: str | None = None, top: int = 1,
                   early: float | None = None, as_json: bool = False) -> None:
    """Print the digit in each image and its probability (and rows read, with --early-exit).

    An image that does not look like a digit on plain paper is answered with a warning on
    stderr ("unclear image"; "unclear": true in --json)."""
    m = Model(model, provider)
    m.require_input(ImageInput)
    image = m.spec.require_input(ImageInput)
    if early is not None and not 0 < early <= 1:
        raise InputError(f"--early-exit must be a probability in (0, 1], got {early}")
    if [str(f) for f in files].count("-") > 1:
        raise UsageError("stdin holds one image: give - at most once", "edgeinfer classify image")
    inputs, names, unclear, failed = [], [], [], 0
    for path in files:
        try:
            if str(path) == "-":
                got = read_digit(read_stdin_bytes(MAX_IMAGE_BYTES), image, "stdin")
            else:
                got = read_digit(path, image)
        except EdgeInferError as exc:
            fail(str(exc))
            failed += 1
            continue
        inputs.append(normalize(got.frame, image))
        names.append("stdin" if str(path) == "-" else str(path))
        unclear.append(got.unclear)
    if inputs:
        rows: list[int | None] = [None] * len(inputs)
        if early is None:
            probs = m.predict(np.stack(inputs))
        else:
            result = m.early_exit(np.stack(inputs), early)
            probs, rows = result.probabilities, [int(n) for n in result.steps]
        labels = m.spec.labels
        for name, p, n, doubt in zip(names, probs, rows, unclear, strict=True):
            order = np.argsort(-p)[: min(top, len(labels))]
            digit_result(name, [(labels[i], float(p[i])) for i in order], n, image.rows, as_json, doubt)
            if doubt:
                warn(f"{name}: unclear image (the ink does not stand out of the paper as a digit's would); "
                     "the answer may be a guess: photograph the digit larger, in even light")
    if failed:
        raise Exit(1)
