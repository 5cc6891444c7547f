"""The export's one error type: every message is one line that names the problem (and the fix)."""
from __future__ import annotations


class ExportError(RuntimeError):
    """A checkpoint, its data or a gate stopped the export; what was written before stays (atomic files)."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (its type's name when empty), at most `limit` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
