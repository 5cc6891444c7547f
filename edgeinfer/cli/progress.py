"""A one-line progress bar on stderr, drawn only where stderr is a terminal."""
from __future__ import annotations

import sys
import time
from typing import IO

WIDTH = 30  # characters of the bar itself
EVERY_S = 0.1  # the least time between two drawings


class Bar:
    """`label [#####-----]  45%  4,500/10,000  1,234/s  0:00:07 left`, redrawn in place at most
    ten times a second; nothing at all when hidden (stderr not a terminal: a log, a pipe)."""

    def __init__(self, total: int, label: str, show: bool, stream: IO[str] | None = None) -> None:
        self.total = total
        self.label = label
        self.show = show
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.item = ""
        self._t0 = time.perf_counter()
        self._drawn_at = 0.0
        self._first = 0  # the count when the bar opened (work done before it is not in its rate)
        self._width = 0  # the longest line drawn, so a shorter one overwrites it fully

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.show and self._width:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def start_at(self, done: int) -> None:
        """Work already done before this run (a resumed job): counted, but not in the time left."""
        self.done = self._first = done

    def update(self, count: int, item: str = "") -> None:
        """`count` more done; `item` (a rate, say) is shown after the count."""
        self.done += count
        self.item = item
        now = time.perf_counter()
        if self.show and now - self._drawn_at >= EVERY_S:
            self._drawn_at = now
            self._draw()

    def line(self) -> str:
        """The line as it would be drawn now."""
        parts = [self.label]
        if self.total > 0:
            share = min(self.done / self.total, 1.0)
            filled = round(share * WIDTH)
            parts += [f"[{'#' * filled}{'-' * (WIDTH - filled)}]", f"{share:4.0%}", f"{self.done:,}/{self.total:,}"]
        else:
            parts.append(f"{self.done:,}")
        if self.item:
            parts.append(self.item)
        elapsed = time.perf_counter() - self._t0
        new = self.done - self._first
        if self.total > self.done and new > 0 and elapsed > 0:
            left = round((self.total - self.done) * elapsed / new)
            parts.append(f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left")
        return "  ".join(parts)

    def _draw(self) -> None:
        text = self.line()
        self._width = max(self._width, len(text))
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
