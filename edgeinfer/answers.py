"""Labelled answers: what a classifier says about one input, by label rather than by index."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Answer:
    """One input's answer.

    `label` is the most likely class and `probability` its probability; `scores` holds every
    class's probability by label. `flags` names what makes the answer doubtful: "unclear" (an
    image that does not look like one digit on plain paper), "low_coverage" (a text whose words
    the model mostly does not know). `steps` is how many steps were read (with early exit).
    """

    source: str  # what was read: a file's path, "text 3", "sequence 0"
    label: str
    probability: float
    scores: dict[str, float] = field(repr=False)
    flags: tuple[str, ...] = ()
    steps: int | None = None

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        """The k most likely labels and their probabilities, most likely first."""
        return sorted(self.scores.items(), key=lambda item: -item[1])[: max(int(k), 0)]

    @property
    def doubtful(self) -> bool:
        """True when a flag says the answer may be a guess."""
        return bool(self.flags)


def answers_from(probabilities: np.ndarray, labels: Sequence[str], sources: Sequence[str],
                 flags: Sequence[tuple[str, ...]] | None = None,
                 steps: Sequence[int] | None = None) -> list[Answer]:
    """Rows of class probabilities (N, C) -> N answers, in order."""
    out = []
    for i, row in enumerate(np.asarray(probabilities, np.float64)):
        best = int(row.argmax())
        out.append(Answer(sources[i], labels[best], float(row[best]),
                          {label: float(p) for label, p in zip(labels, row, strict=True)},
                          tuple(flags[i]) if flags is not None else (),
                          int(steps[i]) if steps is not None else None))
    return out


__all__ = ["Answer", "answers_from"]
