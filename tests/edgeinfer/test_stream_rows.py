"""The stream's fast path for one row (Python floats instead of numpy calls between onnxruntime
runs): the same numbers as numpy's float32 arithmetic, bit for bit, and the same refusals."""
from __future__ import annotations

import numpy as np
import pytest

import edgeinfer
from edgeinfer.arrays import normalised_row
from edgeinfer.errors import InputError
from tests.fixtures import fixture_path

COUNT = 1_000_000  # values checked


def float32_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 values of every kind: any bit pattern that is finite (subnormals, huge, tiny,
    both signs), and ordinary sensor-like values."""
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = np.where(np.isfinite(bits), bits, np.float32(1.5))
    plain = rng.normal(0, 3, n).astype(np.float32)
    return np.where(rng.random(n) < 0.5, bits, plain).astype(np.float32)


def test_normalised_row_equals_numpys_float32_arithmetic_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    width = 50
    x = float32_values(rng, COUNT).reshape(-1, width)
    mean = float32_values(rng, COUNT).reshape(-1, width)
    std = np.abs(float32_values(rng, COUNT)).reshape(-1, width)
    std = np.where(std < 1e-6, np.float32(1e-6), std).astype(np.float32)  # the exporter's floor
    with np.errstate(over="ignore", invalid="ignore"):
        want = (x - mean) / std
    got = np.array([normalised_row(r.tolist(), m.tolist(), s.tolist()) for r, m, s in zip(x, mean, std, strict=True)],
                   np.float32)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()


def test_a_row_and_a_batch_of_one_give_the_same_numbers_and_refusals() -> None:
    model = edgeinfer.load(fixture_path("user-gru-features-classes"))
    rng = np.random.default_rng(1)
    one, batch = model.stream(), model.stream()
    for _ in range(50):
        x = (rng.normal(0, 5, model.spec.input_size) * 10).astype(np.float32)
        assert np.array_equal(one.step(x), batch.step(x[None])[0])  # fast path vs the numpy path
    assert all(np.array_equal(v, batch.state[k]) for k, v in one.state.items())
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones(model.spec.input_size, np.float32)
        x[-1] = bad
        steps = one.steps
        with pytest.raises(InputError, match="NaN or infinite"):
            one.step(x)
        assert one.steps == steps  # the state did not move
    huge = np.full(model.spec.input_size, np.finfo(np.float32).max, np.float32)
    with np.errstate(over="ignore"):
        one.step(huge)  # finite values, however large: answered, not refused (their sum overflows no double)
    assert one.steps == steps + 1


def test_a_row_read_as_it_is_from_any_memory_layout() -> None:
    """A model that reads its features as they are (digits: no per-feature normalisation) copies
    the row buffer to buffer: rows of every layout give the batch path's numbers and refusals."""
    model = edgeinfer.load("digits")
    assert model.stream()._mean_std is None  # this path, not the normalising one
    rng = np.random.default_rng(2)
    one, batch = model.stream(), model.stream()
    wide = rng.random((model.spec.input_size, 3)).astype(np.float32)
    reversed_row = rng.random(model.spec.input_size).astype(np.float32)[::-1]
    frozen = rng.random(model.spec.input_size).astype(np.float32)
    frozen.flags.writeable = False
    for x in (wide[:, 1], reversed_row, frozen, rng.random(model.spec.input_size).astype(np.float32)):
        assert np.array_equal(one.step(x), batch.step(np.ascontiguousarray(x)[None])[0])
    assert all(np.array_equal(v, batch.state[k]) for k, v in one.state.items())
    steps = one.steps
    for bad in (np.nan, np.inf, -np.inf):
        x = wide[:, 0].copy()
        x[3] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            one.step(x)
    assert one.steps == steps
