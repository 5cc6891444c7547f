"""Shared objects under threads: a StreamBatch shared by threads stays exact; a Stream used by two
threads at once raises InputError instead of corrupting its state."""
from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

import edgeinfer
from edgeinfer import InputError

ROW = np.linspace(-1, 1, 28, dtype=np.float32)


def run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]


def test_two_threads_stepping_one_batch_equal_serial_steps() -> None:
    model = edgeinfer.load("sentiment")  # int8 GRU: a stream's result does not depend on its batch mates
    batch = model.stream_batch()
    handles = [batch.open() for _ in range(16)]
    ids = np.arange(2, 18, dtype=np.int64)
    run_threads(2, lambda _: [batch.step(handles, ids) for _ in range(300)])
    alone = model.stream_batch()
    serial = [alone.open() for _ in range(16)]
    for _ in range(600):
        alone.step(serial, ids)
    assert all(h.steps == 600 for h in handles)
    for a, b in zip(handles, serial, strict=True):
        assert np.array_equal(a.snapshot().state["h"], b.snapshot().state["h"])


def test_opening_streams_while_another_thread_steps() -> None:
    model = edgeinfer.load("sentiment")
    batch = model.stream_batch()
    stepped = batch.open()
    opened: list[edgeinfer.BatchedStream] = []

    def work(i: int) -> None:
        if i == 0:
            for t in range(400):
                batch.step([stepped], np.array([2 + t % 50], np.int64))
        else:
            opened.extend(batch.open() for _ in range(200))  # forces the state arrays to grow

    run_threads(2, work)
    alone = model.stream()
    for t in range(400):
        alone.step(2 + t % 50)
    assert stepped.steps == 400
    assert np.allclose(stepped.snapshot().state["h"], alone.snapshot().state["h"], atol=1e-6)
    assert len({h.slot for h in [*opened, stepped]}) == 201 and len(batch) == 201


def test_open_from_many_threads_gives_distinct_slots() -> None:
    batch = edgeinfer.load("digits").stream_batch()
    got: list[edgeinfer.BatchedStream] = []
    run_threads(4, lambda _: got.extend(batch.open() for _ in range(100)))
    assert len({h.slot for h in got}) == 400 == len(batch)


def test_a_stream_in_use_refuses_a_second_caller() -> None:
    stream = edgeinfer.load("digits").stream()
    stream.step(ROW)
    stream._inuse.acquire()  # as if another thread were inside step()
    try:
        for call in (lambda: stream.step(ROW), lambda: stream.feed(ROW[None]), stream.reset, stream.snapshot):
            with pytest.raises(InputError, match=r"in use by another thread; .*open one stream per thread"):
                call()
    finally:
        stream._inuse.release()
    assert stream.steps == 1  # nothing moved


def test_one_stream_from_two_threads_never_corrupts() -> None:
    model = edgeinfer.load("digits")
    stream = model.stream()
    done = [0, 0]
    refused = [0, 0]

    def work(i: int) -> None:
        for _ in range(1000):
            try:
                stream.step(ROW)
                done[i] += 1
            except InputError:
                refused[i] += 1

    run_threads(2, work)
    assert sum(done) + sum(refused) == 2000 and stream.steps == sum(done)
    serial = model.stream()
    for _ in range(sum(done)):
        serial.step(ROW)
    assert np.array_equal(stream.state["h"], serial.state["h"])
