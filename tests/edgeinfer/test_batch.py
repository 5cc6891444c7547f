"""StreamBatch: streams joining and leaving at any step give what each gives alone."""
from __future__ import annotations

import numpy as np
import pytest

import edgeinfer
from edgeinfer.errors import InputError

TOL = 1e-6


def _schedule(rng: np.random.Generator, n: int, steps: int) -> list[tuple[int, int]]:
    """(join step, length) per stream: different starts and lengths, some overlapping."""
    return [(int(rng.integers(0, steps // 2)), int(rng.integers(1, steps))) for _ in range(n)]


def _run_batched(model, inputs, schedule, steps):  # inputs[i]: (length_i, ...) per stream
    batch = model.stream_batch()
    handles: dict[int, object] = {}
    got = {i: [] for i in range(len(inputs))}
    for t in range(steps):
        for i, (start, length) in enumerate(schedule):
            if t == start:
                handles[i] = batch.open()
            if i in handles and t == start + length:
                handles.pop(i).close()
        # step every other open stream on odd steps: streams that are not named keep their state
        active = [i for i in handles if t % 2 == 0 or i % 2 == 0]
        if not active:
            continue
        x = np.stack([inputs[i][len(got[i])] for i in active])
        probs = batch.step([handles[i] for i in active], x)
        for row, i in enumerate(active):
            got[i].append(probs[row])
    return got, batch


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_batch_equals_each_stream_alone(make_model, cell) -> None:
    model = edgeinfer.load(make_model(cell, 2))
    rng = np.random.default_rng(1)
    steps = 30
    schedule = _schedule(rng, 9, steps)
    inputs = [rng.standard_normal((steps, 28)).astype(np.float32) for _ in schedule]
    got, batch = _run_batched(model, inputs, schedule, steps)
    assert len(batch) <= 9 and batch._steps.shape[0] >= 9  # grew past its first capacity
    for i, rows in got.items():
        alone = model.stream()
        want = [alone.step(inputs[i][t]) for t in range(len(rows))]
        assert rows, "every stream read at least one step"
        assert np.abs(np.array(rows) - np.array(want)).max() <= TOL


def test_batch_of_token_streams_equals_alone(sentiment_model) -> None:
    model = edgeinfer.load(sentiment_model)
    rng = np.random.default_rng(2)
    steps = 25
    schedule = _schedule(rng, 6, steps)
    inputs = [rng.integers(0, model.spec.input.vocab_size, steps) for _ in schedule]
    got, _ = _run_batched(model, inputs, schedule, steps)
    for i, rows in got.items():
        alone = model.stream()
        want = [alone.step(int(inputs[i][t])) for t in range(len(rows))]
        assert np.abs(np.array(rows) - np.array(want)).max() <= TOL


@pytest.mark.parametrize("where", ["below", "from"])
def test_shipped_int8_gru_batch_equals_alone(where: str) -> None:
    """The built-in sentiment GRU: under io.batch_steps_from streams (measured at export) a batch
    runs the step graph (int8 weights, fp32 cell: batching changes nothing); from there on, the
    decomposed sequence graph (int8 activations: the same step within the int8 tolerance)."""
    model = edgeinfer.load("sentiment")
    threshold = model.spec.io.batch_steps_from
    assert 1 < threshold <= 256
    streams = threshold - 1 if where == "below" else threshold
    rng = np.random.default_rng(3)
    ids = rng.integers(2, model.spec.input.vocab_size, (streams, 12))
    batch = model.stream_batch()
    handles = [batch.open() for _ in range(streams)]
    for t in range(12):
        probs = batch.step(handles, ids[:, t])
    for row in (0, streams // 2, streams - 1):
        alone = model.stream()
        for t in range(12):
            want = alone.step(int(ids[row, t]))
        assert np.abs(probs[row] - want).max() <= (TOL if where == "below" else 0.02)


def test_snapshots_move_between_stream_and_batch(make_model) -> None:
    model = edgeinfer.load(make_model("lstm", 1))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 28)).astype(np.float32)
    alone = model.stream()
    for t in range(5):
        alone.step(x[t])
    batch = model.stream_batch()
    other = batch.open()
    batch.step([other], x[:1])
    moved = batch.open(alone.snapshot().to_bytes())
    assert moved.steps == 5
    np.testing.assert_allclose(moved.probabilities, alone.probabilities[0], atol=TOL)
    for t in range(5, 10):
        want = alone.step(x[t])
        got = batch.step([other, moved], np.stack([x[0], x[t]]))[1]
        assert np.abs(got - want).max() <= TOL
    back = model.stream()
    back.restore(moved.snapshot())
    np.testing.assert_allclose(back.step(x[0]), alone.step(x[0]), atol=TOL)


def test_batch_errors(make_model) -> None:
    model = edgeinfer.load(make_model("gru", 1))
    batch = model.stream_batch()
    a, b = batch.open(), batch.open()
    x = np.zeros((2, 28), np.float32)
    with pytest.raises(InputError, match="named twice"):
        batch.step([a, a], x)
    with pytest.raises(InputError, match=r"expected \(2, 28\)"):
        batch.step([a, b], np.zeros((2, 27), np.float32))
    with pytest.raises(InputError, match="no streams"):
        batch.step([], np.zeros((0, 28), np.float32))
    b.close()
    b.close()  # harmless
    assert b.closed and len(batch) == 1
    with pytest.raises(InputError, match="closed"):
        batch.step([b], x[:1])
    foreign = model.stream_batch().open()
    with pytest.raises(InputError, match="another batch"):
        batch.step([foreign], x[:1])
    with pytest.raises(InputError, match="read nothing"):
        _ = a.probabilities
    other_model = edgeinfer.load(make_model("gru", 2))
    with pytest.raises(InputError, match="another model"):
        batch.open(other_model.stream().snapshot())
    assert len(batch) == 1  # the refused open left nothing behind


def test_a_stepped_list_is_checked_again_whenever_it_or_the_batch_changes(make_model) -> None:
    """The last stepped list's slots are reused only for the same streams, by identity, while no
    stream opened or closed: a list changed in place, a stream closed (its slot reused by a new
    one) or an object equal to everything each get what a fresh list gets."""
    from unittest import mock

    model = edgeinfer.load(make_model("gru", 1))
    batch = model.stream_batch()
    a, b, c = batch.open(), batch.open(), batch.open()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 28)).astype(np.float32)
    alone = {s: model.stream() for s in (a, b, c)}
    named = [a, b, c]
    for _ in range(2):  # the second step reuses the checked list
        got = batch.step(named, x)
        for row, s in enumerate(named):
            assert np.abs(got[row] - alone[s].step(x[row])).max() <= TOL
    named.reverse()  # the same list object, in another order: the rows follow the new order
    got = batch.step(named, x)
    for row, s in enumerate(named):
        assert np.abs(got[row] - alone[s].step(x[row])).max() <= TOL
    with pytest.raises(InputError, match="named twice"):
        batch.step([c, b, c], x)
    b.close()
    d = batch.open()  # takes b's slot
    assert d.slot == 1
    with pytest.raises(InputError, match="closed"):
        batch.step(named, x)  # still names b
    with pytest.raises(InputError, match="expected streams opened by this batch"):
        batch.step([c, mock.ANY, a], x)  # == anything: never taken for b or d
    named[1] = d
    got = batch.step(named, x)
    fresh = model.stream()
    assert np.abs(got[1] - fresh.step(x[1])).max() <= TOL  # d starts from the initial state
    assert batch.streams == [a, c, d]  # in the order opened
    assert (a.steps, c.steps, d.steps) == (4, 4, 1)
