"""The `edgeinfer` Typer application: every command, registered from its module.

Commands: classify image (cli/digits), sentiment (cli/sentiment), generate and score
(cli/characters), run (cli/run: live steps from lines), batch (cli/batch), info and models
(cli/models), doctor and bench (cli/system).
"""
from __future__ import annotations

from typing import Annotated

import typer

from edgeinfer import __version__
from edgeinfer.cli.batch import batch
from edgeinfer.cli.characters import generate_cmd, score_cmd
from edgeinfer.cli.digits import classify_app
from edgeinfer.cli.models import info, models
from edgeinfer.cli.run import run
from edgeinfer.cli.sentiment import sentiment
from edgeinfer.cli.system import bench, doctor

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Run small recurrent models cell by cell on onnxruntime.")


def _version(value: bool) -> None:
    if value:
        print(f"edgeinfer {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Run small recurrent models cell by cell on onnxruntime."""


app.add_typer(classify_app, name="classify")
app.command()(sentiment)
app.command("generate")(generate_cmd)
app.command("score")(score_cmd)
app.command()(run)
app.command()(batch)
app.command()(info)
app.command()(models)
app.command()(doctor)
app.command()(bench)
