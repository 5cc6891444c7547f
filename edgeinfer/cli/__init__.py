"""The `edgeinfer` command line (typer). Runtime errors become one line on stderr."""
from __future__ import annotations

import sys

from edgeinfer.errors import EdgeInferError


def main() -> None:
    """Entry point of the `edgeinfer` command."""
    from edgeinfer.cli.app import app

    try:
        app()
    except EdgeInferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"error: internal error ({type(exc).__name__}: {exc}); please report it", file=sys.stderr)
        sys.exit(70)
