"""Commands: classify image, info, models."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from edgeinfer.errors import EdgeInferError
from edgeinfer.model import Model, builtin_models
from edgeinfer.preprocess.image import load_digit

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Run small recurrent models cell by cell on onnxruntime.")
classify_app = typer.Typer(no_args_is_help=True, help="Classify inputs with a digits model.")
app.add_typer(classify_app, name="classify")

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="model file or built-in name")]
ProviderOpt = Annotated[Optional[str], typer.Option(
    "--provider", help="execution provider, e.g. CPUExecutionProvider, cuda, auto (default: CPU)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]


def fail(message: str) -> None:
    """One line on stderr."""
    print(f"error: {message}", file=sys.stderr)


@classify_app.command("image")
def classify_image(
    files: Annotated[list[Path], typer.Argument(help="image files (PNG, JPEG, BMP, GIF, ...)")],
    model: ModelOpt = "digits",
    provider: ProviderOpt = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="print the K most likely digits")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Print the digit in each image and its probability."""
    m = Model(model, provider)
    m.require_task("digits")
    inputs, names, failed = [], [], 0
    for path in files:
        try:
            inputs.append(load_digit(path, m.spec.input))
            names.append(str(path))
        except EdgeInferError as exc:
            fail(str(exc))
            failed += 1
    if inputs:
        probs = m.predict(np.stack(inputs))
        labels = m.spec.labels
        for name, p in zip(names, probs):
            order = np.argsort(-p)[: min(top, len(labels))]
            best = [(labels[i], float(p[i])) for i in order]
            if as_json:
                print(json.dumps({"file": name, "label": best[0][0], "probability": round(best[0][1], 6),
                                  "top": [{"label": lab, "probability": round(pr, 6)} for lab, pr in best]}))
            else:
                print(f"{name}: " + ", ".join(f"{lab} ({pr:.3f})" for lab, pr in best))
    if failed:
        raise typer.Exit(1)


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="model file or built-in name")],
    as_json: JsonOpt = False,
) -> None:
    """Print a model's spec: task, labels, architecture, state, precision, metrics, provenance."""
    m = Model(model)
    spec = m.spec
    if as_json:
        print(json.dumps({"file": str(m.path), "bytes": m.path.stat().st_size, **asdict(spec)}, indent=2))
        return
    state = ", ".join(f"{s.name}->{s.output} ({s.layers}, B, {s.hidden}) {s.dtype}={s.initial:g}" for s in spec.state)
    lines = [
        f"file          {m.path} ({m.path.stat().st_size:,} bytes)",
        f"task          {spec.task}; labels {', '.join(spec.labels)}",
        f"input         {spec.input.rows} steps of {spec.input.cols} features; pixels x{spec.input.scale:.6g}, "
        f"(x - {spec.input.mean}) / {spec.input.std}",
        f"model         {spec.cell} x{spec.layers}, hidden {spec.hidden}, {spec.input_size} inputs per step",
        f"state         {state}",
        f"graphs        sequence {spec.io.seq_input} (B, T, {spec.input_size}); step {spec.io.step_input} "
        f"(B, {spec.input_size}); output {spec.io.output} (B, {spec.classes}); opset {spec.opset}",
        f"precision     {spec.precision}" + (f" ({spec.quantization})" if spec.precision != "fp32" else ""),
        "metrics       " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in spec.metrics.items()),
        "provenance    " + ", ".join(f"{k} {v}" for k, v in spec.provenance.items()
                                     if k not in ("config", "train_args")),
        f"format        {spec.format_version}",
    ]
    print("\n".join(lines))


@app.command()
def models() -> None:
    """List the built-in models."""
    for name, path in builtin_models().items():
        spec = Model(path).spec
        acc = spec.metrics.get("test_accuracy")
        extra = f", test accuracy {acc:.2%}" if isinstance(acc, float) else ""
        print(f"{name}: {spec.task}, {spec.cell} x{spec.layers} hidden {spec.hidden}, {spec.precision}{extra}, "
              f"{path.stat().st_size:,} bytes")
