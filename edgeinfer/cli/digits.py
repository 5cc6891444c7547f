"""`edgeinfer classify image`: the digit in each image file."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from edgeinfer.cli.options import JsonOpt, ModelOpt, ProviderOpt
from edgeinfer.cli.render import digit_result, fail
from edgeinfer.cli.stdin import read_stdin_bytes
from edgeinfer.errors import EdgeInferError, InputError
from edgeinfer.model import Model
from edgeinfer.preprocess.image import load_digit, load_digit_bytes
from edgeinfer.spec import ImageInput

MAX_IMAGE_BYTES = 256 << 20  # an image read from stdin may be at most this large

classify_app = typer.Typer(no_args_is_help=True, help="Classify inputs with a digits model.")


@classify_app.command("image")
def classify_image(
    files: Annotated[list[Path], typer.Argument(help="image files (PNG, JPEG, BMP, GIF, ...); - reads one from stdin")],
    model: ModelOpt = "digits",
    provider: ProviderOpt = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="print the K most likely digits")] = 1,
    early: Annotated[float | None, typer.Option(
        "--early-exit", help="stop reading rows once the top probability reaches this (e.g. 0.99)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the digit in each image and its probability (and rows read, with --early-exit)."""
    m = Model(model, provider)
    m.require_input(ImageInput)
    image = m.spec.require_input(ImageInput)
    if early is not None and not 0 < early <= 1:
        raise InputError(f"--early-exit must be a probability in (0, 1], got {early}")
    if [str(f) for f in files].count("-") > 1:
        raise typer.BadParameter("stdin holds one image: give - at most once")
    inputs, names, failed = [], [], 0
    for path in files:
        try:
            if str(path) == "-":
                inputs.append(load_digit_bytes(read_stdin_bytes(MAX_IMAGE_BYTES), image))
                names.append("stdin")
            else:
                inputs.append(load_digit(path, image))
                names.append(str(path))
        except EdgeInferError as exc:
            fail(str(exc))
            failed += 1
    if inputs:
        rows: list[int | None] = [None] * len(inputs)
        if early is None:
            probs = m.predict(np.stack(inputs))
        else:
            result = m.early_exit(np.stack(inputs), early)
            probs, rows = result.probabilities, [int(n) for n in result.steps]
        labels = m.spec.labels
        for name, p, n in zip(names, probs, rows, strict=True):
            order = np.argsort(-p)[: min(top, len(labels))]
            digit_result(name, [(labels[i], float(p[i])) for i in order], n, image.rows, as_json)
    if failed:
        raise typer.Exit(1)
