"""The `edgeinfer` command line's parser: every command, configured from its module.

Commands: classify image (cli/digits), sentiment (cli/sentiment), generate and score
(cli/characters), run (cli/run: live steps from lines), batch (cli/batch), info and models
(cli/models), doctor and bench (cli/system).

`build(only)` configures one command's module when the command line names it, so a command starts
without importing (or argparse describing) the others: numpy, onnxruntime and the bulk machinery
load only where used. Help, the version and anything unknown get every command's name and help,
importing none of them (`edgeinfer --help` answers in 80 ms).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from edgeinfer import __version__
from edgeinfer.cli.args import Parser, UsageError

SUMMARY = "Run small recurrent models cell by cell on onnxruntime."

# command -> (module, the function configuring its parser, its one-line help); in the order
# `edgeinfer --help` lists them
COMMANDS: dict[str, tuple[str, str, str]] = {
    "classify": ("edgeinfer.cli.digits", "configure_classify", "classify inputs with a digits model (classify image)"),
    "sentiment": ("edgeinfer.cli.sentiment", "configure",
                  "each text's sentiment and its probability of being positive"),
    "generate": ("edgeinfer.cli.characters", "configure_generate", "generate text character by character"),
    "score": ("edgeinfer.cli.characters", "configure_score",
              "how well a characters model predicts a text: nats and bits per character"),
    "run": ("edgeinfer.cli.run", "configure", "run a model live on lines of steps (a file or stdin)"),
    "batch": ("edgeinfer.cli.batch", "configure", "run a model over many inputs into one output file"),
    "info": ("edgeinfer.cli.models", "configure_info", "print a model's spec"),
    "models": ("edgeinfer.cli.models", "configure_models", "list the built-in models"),
    "doctor": ("edgeinfer.cli.system", "configure_doctor", "this machine's onnxruntime, providers and threads"),
    "bench": ("edgeinfer.cli.system", "configure_bench", "a quick look at a model's speed here"),
}


def build(only: str | None = None, *, configure: bool = True) -> Parser:
    """The parser with every command configured, or with only `only` (a name in COMMANDS: a
    command line naming it needs no other); with configure=False, every command by name and help
    alone (all that `edgeinfer --help`, `--version` or an unknown command need)."""
    parser = Parser("edgeinfer", SUMMARY)
    parser.add_argument("--version", action="version", version=f"edgeinfer {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", title="commands")
    for name, (module, attribute, summary) in COMMANDS.items():
        if only is not None and name != only:
            continue
        command = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        if configure:
            arguments: Callable[[Parser], None] = getattr(importlib.import_module(module), attribute)
            arguments(command)
    return parser


def parse(args: list[str]) -> tuple[Callable[..., Any] | None, dict[str, Any], Parser]:
    """The command a command line names, its arguments by parameter name, and the parser that
    read them (None and the parser: print its help, as for no arguments at all)."""
    parser = build(args[0]) if args and args[0] in COMMANDS else build(configure=False)
    if not args:
        return None, {}, parser
    namespace, extras = parser.parse_known_args(args)
    found: dict[str, Any] = vars(namespace)
    command: Parser | None = found.get("parser")
    if command is not None:
        # read again by the command's own parser, intermixed: arguments may follow options
        # (`classify image a.png --json b.png`), as every command line allowed before argparse;
        # after `--` everything is an argument, which Python 3.11's intermixed parsing mistakes
        rest = args[len(command.prog.split()) - 1:]  # after the command's words (`classify image`: two)
        found = vars(command.parse_args(rest) if "--" in rest else command.parse_intermixed_args(rest))
        for key in ("parser", "prog", "helper"):
            found.pop(key, None)
        return found.pop("run"), found, command
    if extras:
        raise UsageError(f"unrecognized arguments: {' '.join(extras)}", found.get("prog", parser.prog))
    helper = found.get("helper")  # a command of commands (`edgeinfer classify`) named alone: its help
    return None, {}, helper if helper is not None else parser
