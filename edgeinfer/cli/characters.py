"""`edgeinfer generate` and `edgeinfer score`: character models."""
from __future__ import annotations

import sys
from pathlib import Path

from edgeinfer.cli.args import Exit, Parser, add_json, add_model, describe, finite, runs, whole
from edgeinfer.cli.render import emit_json, safe, score_result, warn
from edgeinfer.cli.stdin import read_stdin_bytes
from edgeinfer.errors import InputError, UnreadableInput
from edgeinfer.model import Model
from edgeinfer.spec import CharInput
from edgeinfer.tasks.characters import DEFAULT_TEMPERATURE, char_tokenizer, generate, score

MAX_SCORE_BYTES = 256 << 20  # a text scored from stdin may be at most this large


def configure_generate(p: Parser) -> None:
    """`edgeinfer generate`."""
    p.description = describe(generate_cmd)
    p.add_argument("--prompt", "-p", default="\n", help="text to start from (default: a new line)")
    p.add_argument("--max-chars", "--chars", "-n", dest="chars", type=whole(1), default=500, metavar="N",
                   help="characters to generate (default 500; --chars is the old name)")
    p.add_argument("--temperature", "-t", type=finite, default=DEFAULT_TEMPERATURE,
                   help=f"0 = greedy; higher = more random (default {DEFAULT_TEMPERATURE})")
    p.add_argument("--top-k", type=whole(0), default=0, metavar="K", help="sample from the K most likely (0 = all)")
    p.add_argument("--seed", type=int, help="same seed, same text")
    add_model(p, "characters")
    add_json(p, "one JSON object at the end")
    runs(p, generate_cmd)


def generate_cmd(prompt: str = "\n", chars: int = 500, temperature: float = DEFAULT_TEMPERATURE, top_k: int = 0,
                 seed: int | None = None, model: str = "characters", provider: str | None = None,
                 as_json: bool = False) -> None:
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
        raise Exit(130) from None
    if as_json:
        emit_json({"prompt": prompt, "text": "".join(produced), "chars": len(produced),
                   "temperature": temperature, "top_k": top_k, "seed": seed})
    else:
        sys.stdout.write("\n")


def configure_score(p: Parser) -> None:
    """`edgeinfer score FILE`."""
    p.description = describe(score_cmd)
    p.add_argument("file", type=Path, help="a UTF-8 text file; - reads stdin")
    add_model(p, "characters")
    add_json(p, "JSON output")
    runs(p, score_cmd)


def score_cmd(file: Path, model: str = "characters", provider: str | None = None, as_json: bool = False) -> None:
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
