"""The `edgeinfer` Typer application: every command, registered from its module.

Commands: classify image (cli/digits), sentiment (cli/sentiment), generate and score
(cli/characters), run (cli/run: live steps from lines), batch (cli/batch), info and models
(cli/models), doctor and bench (cli/system).

`build(only)` registers one command's module when the command line names it, so a command starts
without importing (and Typer without describing) the others: 25 ms of `edgeinfer classify
image`'s start. Help, the version and anything unknown get the whole application.
"""
from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from edgeinfer import __version__

# command -> (module, attribute); in the order `edgeinfer --help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "classify": ("edgeinfer.cli.digits", "classify_app"),
    "sentiment": ("edgeinfer.cli.sentiment", "sentiment"),
    "generate": ("edgeinfer.cli.characters", "generate_cmd"),
    "score": ("edgeinfer.cli.characters", "score_cmd"),
    "run": ("edgeinfer.cli.run", "run"),
    "batch": ("edgeinfer.cli.batch", "batch"),
    "info": ("edgeinfer.cli.models", "info"),
    "models": ("edgeinfer.cli.models", "models"),
    "doctor": ("edgeinfer.cli.system", "doctor"),
    "bench": ("edgeinfer.cli.system", "bench"),
}


def _version(value: bool) -> None:
    if value:
        print(f"edgeinfer {__version__}")
        raise typer.Exit()


def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Run small recurrent models cell by cell on onnxruntime."""


def build(only: str | None = None) -> typer.Typer:
    """The application with every command, or with only `only` (a name in COMMANDS)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="Run small recurrent models cell by cell on onnxruntime.")
    app.callback()(_main)
    for name, (module, attribute) in COMMANDS.items():
        if only is not None and name != only:
            continue
        command = getattr(importlib.import_module(module), attribute)
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)
    return app


def for_args(args: list[str]) -> typer.Typer:
    """The application a command line needs: its command alone when it starts with one."""
    return build(args[0] if args and args[0] in COMMANDS else None)


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole application, built on first use
        return build()
    raise AttributeError(name)
