"""The `edgeinfer` command line (argparse, see cli/args). Every error becomes one line on stderr.

Exit codes: 0 success; 1 some inputs could not be answered (each reported); 2 a usage error,
an unusable model or provider, or a bad argument; 70 a bug; 74 the file system or the machine
refused (a full disk, a path under a file, no permission); 130 interrupted. A closed output
pipe (`edgeinfer ... | head`) ends the command quietly with 0.
"""
from __future__ import annotations

import errno
import os
import sys
from typing import Any

from edgeinfer.errors import EdgeInferError, UnreadableInput

EXIT_OS = 74  # sysexits' EX_IOERR: the file system or the machine refused (nothing half-written is left)


def os_fault(exc: OSError) -> str:
    """An OSError as one line naming the path and the cause, e.g. `out/x.jsonl: No space left on device`."""
    cause = exc.strerror or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths)
    hint = {errno.ENOSPC: "; free some space and run the command again",
            errno.ENOTDIR: "; a part of the path is a file, not a folder",
            errno.EACCES: "; check the permissions", errno.EROFS: "; write somewhere else"}.get(exc.errno or 0, "")
    return f"{where + ': ' if where else ''}{cause}{hint}"


class OutputClosed(Exception):
    """The reader of stdout went away (`| head`): the command ends quietly, exit 0 (not an OSError)."""


class _GuardedStdout:
    """sys.stdout, with a closed pipe turned into OutputClosed."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            raise OutputClosed from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise OutputClosed from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _show_notes() -> None:
    """The runtime's notes (the "edgeinfer" logger), one line each on stderr: `note: ...`."""
    import logging

    class Notes(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(f"note: {record.getMessage()}", file=sys.stderr)

    logger = logging.getLogger("edgeinfer")
    if not any(type(h).__name__ == "Notes" for h in logger.handlers):
        logger.addHandler(Notes())
        logger.propagate = False


def fail(message: str) -> None:
    """One error line on stderr, control characters escaped (render's, imported when needed)."""
    from edgeinfer.cli.render import fail as render_fail

    render_fail(message)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `edgeinfer` command. Everything heavy (numpy, onnxruntime, the
    commands) is imported inside its error handling: a Ctrl-C while it starts is "interrupted",
    exit 130, never a traceback."""
    _show_notes()
    real_stdout = sys.stdout
    sys.stdout = _GuardedStdout(real_stdout)
    try:
        code = _run(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    finally:
        sys.stdout = real_stdout
    sys.exit(_flushed(code))


def _flushed(code: int) -> int:
    """The exit code once stdout is flushed: what it still holds must reach its file, or the
    command fails as the machine refused (74, one line), and the interpreter's own last flush
    finds nothing left to fail on (no "Exception ignored" at exit)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    except OSError as exc:
        if code != EXIT_OS:  # not already reported (the same fault, met by the command's own flush)
            fail(os_fault(exc))
        _quiet_stdout()
        return EXIT_OS
    return code


def _run(argv: list[str] | None) -> int:
    """The command, every failure turned into one line and its exit code."""
    from edgeinfer.cli.app import parse
    from edgeinfer.cli.args import Exit, UsageError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            command, arguments, parser = parse(args)
            if command is None:  # no arguments at all, or a command of commands alone: its help
                parser.print_help()
                code = 2
            else:
                command(**arguments)
                code = 0
        except Exit as exc:  # help, the version, or a command's own exit code
            code = exc.code
    except UsageError as exc:  # the parser's, or a command's own check of its arguments
        fail(f"{exc} (see `{exc.prog} --help`)")
        code = 2
    except UnreadableInput as exc:  # an input that cannot be read: 1, as for inputs that cannot be answered
        fail(str(exc))
        code = 1
    except EdgeInferError as exc:
        fail(str(exc))
        code = 2
    except (OutputClosed, BrokenPipeError):
        _quiet_stdout()
        code = 0
    except OSError as exc:  # the machine's (a full disk, a path under a file, no permission): not a bug
        fail(os_fault(exc))
        code = EXIT_OS
    except Exception as exc:  # a bug: still one line, never a traceback
        fail(f"internal error ({type(exc).__name__}: {exc}); please report it")
        code = 70
    return code
