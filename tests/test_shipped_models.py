"""The built-in models' figures, recomputed on the real test sets (slow tier: needs ../shared/data
and the fonts of benchmarks/digits_fonts.json).

benchmarks/accuracy.py measures every figure once for this module; each must clear its floor
(docs/testing.md: where each floor comes from), and each figure a model file records about
itself must be what the runtime measures now, within the spread of int8 kernels between CPUs.
Runtime only (no torch, no train/).
"""
from __future__ import annotations

import pytest

from benchmarks import accuracy

pytestmark = [pytest.mark.data, pytest.mark.accuracy]

# int8 kernels differ between CPUs (AVX2 vs AVX-512 VNNI): the previous int8 digits LSTM read
# 99.25% where it was exported (AVX2) and 99.28% on an AVX-512 VNNI machine
RECORD_MATCH = {
    "digits, MNIST test (arrays)": 0.001,  # 10 of 10,000 images
    "sentiment, IMDB test reviews": 0.001,  # 25 of 25,000 reviews
    "motions, BasicMotions held-out recordings": 1 / 40,  # one recording
    # nats/char: the export scores the validation text in rows of the sequence graph, the runtime
    # as one stream (1.4382 recorded, 1.4372 in one stream)
    "characters, Tiny Shakespeare validation (nats/char)": 0.005,
}


@pytest.fixture(scope="module")
def figures() -> dict[str, accuracy.Figure]:
    """Every figure of benchmarks/accuracy.py, measured once; fails (never skips) without the data."""
    try:
        return {f.name: f for f in accuracy.measure()}
    except (FileNotFoundError, ValueError) as exc:
        pytest.fail(f"real data needed: {exc}")


def test_every_figure_clears_its_floor(figures) -> None:
    under = [f for f in figures.values() if not f.passed]
    assert under == [], "\n" + accuracy.table(list(figures.values()))


@pytest.mark.parametrize("name", sorted(RECORD_MATCH))
def test_the_files_record_is_what_the_runtime_measures(figures, name: str) -> None:
    figure = figures[name]
    assert figure.record is not None, f"{name}: the model file records no such figure"
    assert abs(figure.value - figure.record) <= RECORD_MATCH[name], (figure.value, figure.record)


def test_every_recorded_figure_is_compared() -> None:
    assert set(accuracy.RECORDS) == set(RECORD_MATCH)


def test_floors_follow_the_wilson_rule() -> None:
    """The floor of 9,948 of 10,000 is 99.32% (the interval's lower end), of 40 of 40 is 91.2%."""
    assert accuracy.wilson_floor(9948, 10_000) == pytest.approx(0.99319, abs=5e-5)
    assert accuracy.wilson_floor(40, 40) == pytest.approx(40 / (40 + 1.96**2), abs=1e-12)
    assert accuracy.wilson_floor(0, 10) == pytest.approx(0.0, abs=1e-12)
