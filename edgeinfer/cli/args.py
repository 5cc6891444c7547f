"""The command line's parser: argparse (the standard library), made to fail as the CLI does.

argparse prints a usage block and exits on a bad argument; here a bad argument raises UsageError
(one line, naming the command's `--help`) and `--help` raises Exit(0), so every command ends in
`edgeinfer.cli._run`'s error handling. Typer and click cost 30 ms of every start (a third of what
`edgeinfer classify image` added to a bare onnxruntime script): argparse costs 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class UsageError(Exception):
    """A bad command line: `message (see `PROG --help`)`, exit 2."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class Exit(Exception):
    """End the command with this exit code (its answers and errors already printed)."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(code)
        self.code = code


class _Format(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (paragraphs kept); option help from column 30."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, and takes no abbreviated options."""

    def __init__(self, prog: str, description: str | None = None, **kwargs: Any) -> None:
        super().__init__(prog=prog, description=description, allow_abbrev=False, formatter_class=_Format, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):  # `--prompt -x`: argparse reads -x as an option
            message += "; a value that starts with - goes after an equals sign: --option=-value"
        raise UsageError(message, self.prog)

    def _print_message(self, message: str, file: Any = None) -> None:
        """As argparse's, but a failed write (help into a full disk) is an error, not silence."""
        if message:
            (file if file is not None else sys.stderr).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message.rstrip("\n"), file=sys.stderr)
        raise Exit(status)


def runs(p: Parser, command: Callable[..., Any]) -> None:
    """The function a command line naming `p` calls with its arguments (by parameter name)."""
    p.set_defaults(run=command, prog=p.prog, parser=p)


def whole(least: int) -> Callable[[str], int]:
    """An argument type: a whole number >= least."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}")
        return value

    return parse


def finite(text: str) -> float:
    """An argument type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_provider(p: Parser) -> None:
    """--provider: the execution provider a model runs on."""
    p.add_argument("--provider", help="execution provider, e.g. CPUExecutionProvider, cuda, auto (default: CPU)")


def add_model(p: Parser, default: str) -> None:
    """--model/-m, --provider: the options every command on a built-in's input takes."""
    p.add_argument("--model", "-m", default=default, help=f"model file or built-in name (default {default})")
    add_provider(p)


def add_json(p: Parser, text: str = "machine-readable JSON output") -> None:
    """--json, into `as_json`."""
    p.add_argument("--json", dest="as_json", action="store_true", help=text)


def describe(function: Callable[..., Any]) -> str:
    """A command function's docstring, its lines unindented: the description its --help prints."""
    return "\n".join(line.strip() for line in (function.__doc__ or "").strip().splitlines())
