"""Options shared by the commands."""
from __future__ import annotations

from typing import Annotated

import typer

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="model file or built-in name")]
ProviderOpt = Annotated[str | None, typer.Option(
    "--provider", help="execution provider, e.g. CPUExecutionProvider, cuda, auto (default: CPU)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]
