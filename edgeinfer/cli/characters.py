"""`edgeinfer generate` and `edgeinfer score`: character models."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgeinfer.cli.options import ModelOpt, ProviderOpt
from edgeinfer.cli.render import emit_json, safe, score_result, warn
from edgeinfer.cli.stdin import read_stdin_bytes
from edgeinfer.errors import InputError, UnreadableInput
from edgeinfer.model import Model
from edgeinfer.spec import CharInput
from edgeinfer.tasks.characters import DEFAULT_TEMPERATURE, char_tokenizer, generate, score

MAX_SCORE_BYTES = 256 << 20  # a text scored from stdin may be at most this large


def generate_cmd(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text to start from")] = "\n",
    chars: Annotated[int, typer.Option("--max-chars", "--chars", "-n",
                                       help="characters to generate (>= 1; --chars is the old name)")] = 500,
    temperature: Annotated[float, typer.Option(
        "--temperature", "-t", help="0 = greedy; higher = more random")] = DEFAULT_TEMPERATURE,
    top_k: Annotated[int, typer.Option("--top-k", help="sample from the K most likely (0 = all)")] = 0,
    seed: Annotated[int | None, typer.Option("--seed", help="same seed, same text")] = None,
    model: ModelOpt = "characters",
    provider: ProviderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object at the end")] = False,
) -> None:
    """Generate text character by character, printed (and flushed) as it comes."""
    if chars < 1:
        raise InputError(f"--max-chars must be >= 1, got {chars}")
    if any(arg == "--chars" or arg.startswith("--chars=") for arg in sys.argv[1:]):
        warn("--chars is now --max-chars (as the API's max_chars); the old name still works")
    if temperature < 0:
        raise InputError(f"--temperature must be >= 0, got {temperature}")
    m = Model(model, provider)
    m.require_input(CharInput)
    unknown = char_tokenizer(m).unknown(prompt)
    if unknown:
        warn(f"prompt characters outside the model's vocabulary, read as unknown: {''.join(unknown)!r}")
    produced: list[str] = []
    try:
        for ch in generate(m, prompt, chars, temperature, top_k, seed):
            if as_json:
                produced.append(ch)
            else:
                sys.stdout.write(ch if ch in "\n\t" else safe(ch))
                sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        sys.stdout.flush()
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    if as_json:
        emit_json({"prompt": prompt, "text": "".join(produced), "chars": len(produced),
                   "temperature": temperature, "top_k": top_k, "seed": seed})
    else:
        sys.stdout.write("\n")


def score_cmd(
    file: Annotated[Path, typer.Argument(help="a UTF-8 text file; - reads stdin")],
    model: ModelOpt = "characters",
    provider: ProviderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Print how well a characters model predicts a text: nats and bits per character."""
    m = Model(model, provider)
    m.require_input(CharInput)
    if str(file) == "-":
        data = read_stdin_bytes(MAX_SCORE_BYTES)
    elif file.is_dir():
        raise UnreadableInput(f"{file}: a directory; expected a UTF-8 text file")
    elif not file.is_file():
        raise UnreadableInput(f"{file}: no such file")
    else:
        data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableInput(f"{file}: invalid UTF-8 at byte {exc.start}; expected UTF-8 text") from None
    if not text:
        raise UnreadableInput(f"{file}: empty {'input' if str(file) == '-' else 'file'}; expected UTF-8 text")
    score_result(str(file), len(text), score(m, text), as_json)
