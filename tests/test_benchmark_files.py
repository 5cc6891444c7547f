"""benchmarks/run.py builds what it compares from each built-in: an fp32 file of the same
architecture, and the shipped file's sequence graph in each other form, answering as the file."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer.bench import example_steps, typical_steps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import run

FORM_TOLERANCE = 0.08  # probabilities: the decomposed form rounds its state to 8 bits every step


@pytest.mark.parametrize(("name", "shipped", "forms"), [
    ("digits", "fused", ["decomposed"]),
    ("sentiment", "both forms", ["decomposed", "fused"]),
    ("characters", "fused", ["decomposed"]),
])
def test_the_benchmarks_files_answer_as_the_shipped_one(name: str, shipped: str, forms: list[str],
                                                       tmp_path: Path) -> None:
    model = edgeinfer.load(name)
    fp32 = edgeinfer.load(run.fp32_file(run.torch_net(model), model, tmp_path))
    assert fp32.spec.precision == "fp32" and fp32.spec.input == model.spec.input
    got_shipped, others = run.other_forms(model, tmp_path)
    assert (got_shipped, sorted(others)) == (shipped, sorted(forms))
    steps = min(typical_steps(model), 40)
    x = example_steps(model, steps, 4)
    lengths = np.full(4, steps, np.int64)
    want = model.spec.answers(model.sequence_logits(x, lengths))
    for path in others.values():
        other = edgeinfer.load(path)
        got = other.spec.answers(other.sequence_logits(x, lengths))
        assert np.abs(got - want).max() <= FORM_TOLERANCE, path.name
