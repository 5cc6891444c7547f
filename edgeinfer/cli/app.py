"""Commands: classify image, info, models."""
from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from edgeinfer.errors import EdgeInferError, InputError
from edgeinfer.model import Model, builtin_models
from edgeinfer.generate import char_tokenizer, generate, score
from edgeinfer.preprocess.image import load_digit
from edgeinfer.spec import CharInput, ModelSpec, TextInput

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
    early: Annotated[Optional[float], typer.Option(
        "--early-exit", help="stop reading rows once the top probability reaches this (e.g. 0.99)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the digit in each image and its probability (and rows read, with --early-exit)."""
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
    if early is not None and not 0 < early <= 1:
        raise InputError(f"--early-exit must be a probability in (0, 1], got {early}")
    if inputs:
        rows: list[int | None] = [None] * len(inputs)
        if early is None:
            probs = m.predict(np.stack(inputs))
        else:
            result = m.early_exit(np.stack(inputs), early)
            probs, rows = result.probabilities, [int(n) for n in result.steps]
        labels = m.spec.labels
        for name, p, n in zip(names, probs, rows):
            order = np.argsort(-p)[: min(top, len(labels))]
            best = [(labels[i], float(p[i])) for i in order]
            if as_json:
                extra = {} if n is None else {"rows": n, "of_rows": m.spec.input.rows}  # type: ignore[union-attr]
                print(json.dumps({"file": name, "label": best[0][0], "probability": round(best[0][1], 6),
                                  "top": [{"label": lab, "probability": round(pr, 6)} for lab, pr in best],
                                  **extra}))
            else:
                after = "" if n is None else f" after {n}/{m.spec.input.rows} rows"  # type: ignore[union-attr]
                print(f"{name}: " + ", ".join(f"{lab} ({pr:.3f})" for lab, pr in best) + after)
    if failed:
        raise typer.Exit(1)


def _describe_readout(spec: ModelSpec) -> str:
    """What the head reads besides the last hidden state, for `info`."""
    parts = []
    if spec.readout.pool:
        parts.append("mean and max of the hidden states")
    if spec.readout.ngram_buckets:
        pooled = "summed weights" if spec.readout.ngram_pool == "sum" else "mean weight"
        parts.append(f"{pooled} of the hashed word 1-{spec.readout.ngram_order}-grams "
                     f"({spec.readout.ngram_buckets:,} buckets per order >= 2)")
    return f"; the head also reads the {' and '.join(parts)}" if parts else ""


def _describe_input(spec: ModelSpec) -> str:
    inp = spec.input
    if isinstance(inp, CharInput):
        return (f"characters, one per step: {len(inp.vocab)}-character vocabulary + padding ({inp.pad_id}) "
                f"and unknown ({inp.unk_id}); embedding width {spec.input_size}")
    if isinstance(inp, TextInput):
        return (f"words, one per step: {len(inp.vocab):,}-word vocabulary + padding ({inp.pad_id}) and unknown "
                f"({inp.unk_id}); lower-cased, <br /> removed; embedding width {spec.input_size}")
    return (f"{inp.rows} steps of {inp.cols} features; pixels x{inp.scale:.6g}, (x - {inp.mean}) / {inp.std}; "
            f"digit fitted to {inp.fit_px}x{inp.fit_px}")


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="model file or built-in name")],
    provider: ProviderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a model's spec: task, labels, architecture, state, precision, metrics, provenance.

    With --provider, both graphs are also loaded on that provider (a check that they run there).
    """
    m = Model(model, provider)
    spec = m.spec
    sessions = ""
    if provider is not None:
        m.load_sessions()
        sessions = ", ".join(m.sequence_session.get_providers())
    if as_json:
        print(json.dumps({"file": str(m.path), "bytes": m.path.stat().st_size, **asdict(spec)}, indent=2))
        return
    tokens = isinstance(spec.input, (TextInput, CharInput))
    io_x = "(B, T) int64" if tokens else f"(B, T, {spec.input_size})"
    io_step = "(B,) int64" if tokens else f"(B, {spec.input_size})"
    io_len = f", {spec.io.lengths} (B,) int64" if spec.io.lengths else ""
    state = ", ".join(f"{s.name}->{s.output} ({s.layers}, B, {s.hidden}) {s.dtype}={s.initial:g}" for s in spec.state)
    lines = [
        f"file          {m.path} ({m.path.stat().st_size:,} bytes)",
        f"task          {spec.task}; " + (f"{spec.classes} classes: next character over the vocabulary"
                                          if isinstance(spec.input, CharInput) else f"labels {', '.join(spec.labels)}"),
        f"input         {_describe_input(spec)}",
        f"model         {spec.cell} x{spec.layers}, hidden {spec.hidden}" + _describe_readout(spec),
        f"state         {state}",
        f"graphs        sequence {spec.io.seq_input} {io_x}{io_len}; step {spec.io.step_input} {io_step}; "
        f"output {spec.io.output} (B, {spec.classes})"
        + (f", step also {spec.io.step_probabilities} (B, {spec.classes}) = softmax" if spec.io.step_probabilities else "")
        + f"; opset {spec.opset}",
        f"precision     {spec.precision}" + (f" ({spec.quantization})" if spec.precision != "fp32" else ""),
        "metrics       " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in spec.metrics.items()),
        "provenance    " + ", ".join(f"{k} {v}" for k, v in spec.provenance.items()
                                     if k not in ("config", "train_args", "stack")),
        f"format        {spec.format_version}",
    ] + ([f"sessions      both graphs loaded on {sessions}"] if sessions else [])
    print("\n".join(lines))


@app.command()
def models(provider: ProviderOpt = None) -> None:
    """List the built-in models (with --provider: after checking that provider is available)."""
    if provider is not None:
        from edgeinfer.session import resolve_providers

        print(f"providers: {', '.join(resolve_providers(provider))}")
    for name, path in builtin_models().items():
        spec = Model(path).spec
        acc, loss = spec.metrics.get("test_accuracy"), spec.metrics.get("val_loss")
        extra = (f", test accuracy {acc:.2%}" if isinstance(acc, float) else
                 f", validation loss {loss:.4f} nats/char" if isinstance(loss, float) else "")
        print(f"{name}: {spec.task}, {spec.cell} x{spec.layers} hidden {spec.hidden}, {spec.precision}{extra}, "
              f"{path.stat().st_size:,} bytes")


READ_CHUNK = 1 << 16  # characters per read when streaming stdin


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text[: width * 4].split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _verdict(m: Model, probs: np.ndarray) -> tuple[str, float]:
    label = m.spec.labels[int(np.argmax(probs))]
    return label, float(probs[m.spec.labels.index("positive")])


def _answer(m: Model, chunks: Iterator[str], what: str, as_json: bool, trace: bool,
            extra: dict[str, object]) -> bool:
    """Stream one text through the model and print its verdict; False if it had no words."""
    stream = m.text_stream()
    for chunk in chunks:
        if "\x00" in chunk:
            fail(f"{what}: NUL byte in text; expected plain UTF-8 text")
            return False
        if trace:
            for word, probs in stream.trace(chunk):
                print(f"{word}\t{_verdict(m, probs)[1]:.4f}")
        else:
            stream.feed(chunk)
    if trace:
        for word, probs in stream.trace("", final=True):
            print(f"{word}\t{_verdict(m, probs)[1]:.4f}")
    try:
        stream.finish()
    except InputError:
        fail(f"{what}: empty text (no words); expected at least one word")
        return False
    label, positive = _verdict(m, stream.probabilities)
    if as_json:
        print(json.dumps({**extra, "label": label, "positive": round(positive, 6), "words": stream.words}))
    else:
        print(f"{label} ({positive:.3f})" + (f": {extra['preview']}" if "preview" in extra else
                                              f": {what}"))
    return True


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            yield number, raw


@app.command()
def sentiment(
    texts: Annotated[Optional[list[str]], typer.Argument(help="texts to classify; - reads one text from stdin")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="a UTF-8 file, one text per line")] = None,
    model: ModelOpt = "sentiment",
    provider: ProviderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per text")] = False,
    trace: Annotated[bool, typer.Option("--trace", help="print the running probability word by word")] = False,
) -> None:
    """Print each text's sentiment and its probability of being positive."""
    if not texts and file is None:
        raise typer.BadParameter("give TEXT arguments, - for stdin, or --file FILE")
    m = Model(model, provider)
    m.require_task("sentiment")
    ok = True
    for index, text in enumerate(texts or []):
        if text == "-":
            stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict")
            try:
                ok &= _answer(m, iter(lambda: stdin.read(READ_CHUNK), ""), "stdin", as_json, trace,
                              {"index": index, "source": "stdin"})
            except UnicodeDecodeError as exc:
                fail(f"stdin: invalid UTF-8 at byte {exc.start} of a chunk; expected UTF-8 text")
                ok = False
            continue
        ok &= _answer(m, iter([text]), f"text {index + 1}", as_json, trace,
                      {"index": index, "preview": _preview(text)})
    if file is not None:
        ok &= _answer_file(m, file, as_json, trace)
    if not ok:
        raise typer.Exit(1)


def _answer_file(m: Model, path: Path, as_json: bool, trace: bool) -> bool:
    """One text per line; bad lines are reported and the others still answered."""
    if not path.is_file():
        fail(f"{path}: no such file")
        return False
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head:
        fail(f"{path}: binary file; expected UTF-8 text, one text per line")
        return False
    total = sum(1 for _ in _lines(path))
    ok = True
    show = sys.stderr.isatty() and not trace
    with typer.progressbar(_lines(path), length=total, label="reviews", file=sys.stderr, hidden=not show) as bar:
        for number, raw in bar:
            what = f"{path}:{number}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                fail(f"{what}: invalid UTF-8 at byte {exc.start}; expected UTF-8 text")
                ok = False
                continue
            ok &= _answer(m, iter([line]), what, as_json, trace, {"line": number})
    return ok


@app.command("generate")
def generate_cmd(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text to start from")] = "\n",
    chars: Annotated[int, typer.Option("--chars", "-n", help="characters to generate (>= 1)")] = 500,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="0 = greedy; higher = more random")] = 0.8,
    top_k: Annotated[int, typer.Option("--top-k", help="sample from the K most likely (0 = all)")] = 0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="same seed, same text")] = None,
    model: ModelOpt = "characters",
    provider: ProviderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object at the end")] = False,
) -> None:
    """Generate text character by character, printed (and flushed) as it comes."""
    if chars < 1:
        raise InputError(f"--chars must be >= 1, got {chars}")
    if temperature < 0:
        raise InputError(f"--temperature must be >= 0, got {temperature}")
    m = Model(model, provider)
    m.require_task("characters")
    unknown = char_tokenizer(m).unknown(prompt)
    if unknown:
        print(f"warning: prompt characters outside the model's vocabulary, read as unknown: "
              f"{''.join(unknown)!r}", file=sys.stderr)
    produced: list[str] = []
    try:
        for ch in generate(m, prompt, chars, temperature, top_k, seed):
            if as_json:
                produced.append(ch)
            else:
                sys.stdout.write(ch)
                sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        sys.stdout.flush()
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130)
    if as_json:
        print(json.dumps({"prompt": prompt, "text": "".join(produced), "chars": len(produced),
                          "temperature": temperature, "top_k": top_k, "seed": seed}))
    else:
        sys.stdout.write("\n")


@app.command("score")
def score_cmd(
    file: Annotated[Path, typer.Argument(help="a UTF-8 text file")],
    model: ModelOpt = "characters",
    provider: ProviderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Print how well a characters model predicts a text: nats and bits per character."""
    m = Model(model, provider)
    m.require_task("characters")
    if not file.is_file():
        raise InputError(f"{file}: no such file")
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{file}: invalid UTF-8 at byte {exc.start}; expected UTF-8 text") from None
    if not text:
        raise InputError(f"{file}: empty file; expected UTF-8 text")
    nats = score(m, text)
    if as_json:
        print(json.dumps({"file": str(file), "chars": len(text), "nats_per_char": nats,
                          "bits_per_char": nats / math.log(2)}))
    else:
        print(f"{file}: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char over {len(text):,} characters")


@app.command()
def doctor(provider: ProviderOpt = None) -> None:
    """Print the execution providers, installed onnxruntime packages, CPU threads and advice.

    With --provider, also runs the built-in digits model there and compares it with the CPU.
    """
    import importlib.metadata as md
    import os

    import onnxruntime as ort

    from edgeinfer.session import available_providers

    packages = []
    for name in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            packages.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    threads = os.cpu_count() or 1
    print(f"onnxruntime   {ort.__version__} ({ort.get_device()})")
    print(f"packages      {', '.join(packages) or 'none found'}")
    print(f"providers     {', '.join(available_providers())}")
    print(f"cpu threads   {threads}")
    print("recommended   streams (batch 1 steps): 1 intra-op thread (the default for step sessions); "
          f"whole batches: {threads} threads (the default for sequence sessions)")
    if len([p for p in packages if not p.startswith("onnxruntime ")]) and any(
            p.startswith("onnxruntime ") for p in packages):
        print("warning: onnxruntime and a GPU/accelerator build are installed together, which breaks GPU "
              "use; keep one: pip uninstall -y onnxruntime && pip install --force-reinstall onnxruntime-gpu")
    if provider is not None:
        ref = Model("digits")
        m = Model("digits", provider)
        x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
        err = float(np.abs(m.predict(x) - ref.predict(x)).max())
        used = ", ".join(m.sequence_session.get_providers())
        print(f"check         digits model on {used}: max abs difference from the CPU {err:.2e}")


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="model file or built-in name")] = "digits",
    provider: ProviderOpt = None,
    streams: Annotated[int, typer.Option("--streams", min=1, help="streams in the StreamBatch test")] = 1024,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=0, help="intra-op threads for sequence and batch sessions (default: all cores)")] = None,
) -> None:
    """A quick look at a model's speed here: step latency, chunked feeding, StreamBatch, throughput.

    For the full comparison with PyTorch and bare onnxruntime, run benchmarks/run.py.
    """
    from edgeinfer.bench import batch_step_rates, chunk_step_us, sequence_rate, step_latency, typical_steps

    m = Model(model, provider)
    seq_model = Model(model, provider, intra_op_threads=threads) if threads is not None else m
    steps = typical_steps(m)
    print(f"{m.source}: {m.spec.task}, {m.spec.cell} x{m.spec.layers} {m.spec.hidden}, {m.spec.precision}, "
          f"on {', '.join(m.step_session.get_providers())}")
    lat = step_latency(m)
    base = lat["session.run"].median_us
    print("\nstep latency, batch 1, 1 thread        median µs    p99 µs   vs session.run")
    for name, t in lat.items():
        print(f"  {name:<36} {t.median_us:9.1f} {t.p99_us:9.1f}   {t.median_us / base:6.2f}x")
    fed, floor = chunk_step_us(m, steps)
    print(f"\nchunked: Stream.feed of {steps} steps       {fed:9.2f} µs/step   "
          f"{fed / floor:.2f}x the full-sequence call ({floor:.2f} µs/step)")
    together, alone = batch_step_rates(seq_model, streams)
    print(f"StreamBatch of {streams} streams           {together:12,.0f} steps/s   "
          f"{together / alone:.1f}x stepping them one by one ({alone:,.0f} steps/s)")
    print(f"\nfull sequences of {steps} steps             sequences/s")
    for b in (1, 32, 256):
        print(f"  batch {b:<4}                            {sequence_rate(seq_model, b, steps):12,.1f}")
