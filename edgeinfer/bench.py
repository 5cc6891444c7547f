"""Timing helpers for `edgeinfer bench` and benchmarks/: medians and p99 of repeated calls.

Only onnxruntime and numpy here; the PyTorch baselines live in benchmarks/run.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from edgeinfer.model import Model
from edgeinfer.tasks import typical_steps as task_steps


@dataclass(frozen=True)
class Timing:
    """Latency of one call: median and 99th percentile, in microseconds."""

    median_us: float
    p99_us: float


def time_calls(fn: Callable[[], object], calls: int = 2000, warmup: int = 100, budget_s: float = 3.0,
               min_calls: int = 50) -> Timing:
    """Call `fn` repeatedly (at most `calls` times, or `budget_s` seconds once `min_calls` are
    done) and time each call."""
    for _ in range(warmup):
        fn()
    times = []
    deadline = time.perf_counter() + budget_s
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        fn()
        times.append(clock() - t0)
        if len(times) >= min_calls and time.perf_counter() > deadline:
            break
    arr = np.array(times) / 1000.0
    return Timing(float(np.median(arr)), float(np.percentile(arr, 99)))


def example_steps(model: Model, steps: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    """Random inputs of the model's kind: features (B, T, F) or token ids (B, T)."""
    rng = np.random.default_rng(seed)
    vocab = model.spec.token_vocab
    if vocab is not None:
        return rng.integers(2, vocab.vocab_size, (batch, steps)).astype(np.int64)
    return rng.standard_normal((batch, steps, model.spec.input_size)).astype(np.float32)


def step_latency(model: Model, rounds: int = 10, calls: int = 200) -> dict[str, Timing]:
    """One step at batch 1 on the step graph: Stream.step, bare session.run, bare IOBinding.

    The three are timed in turns (`rounds` rounds of `calls` calls each), so that a slow spell of
    a shared machine falls on all three alike and their ratios stay fair.
    """
    x = example_steps(model, 1)[:, 0]  # (1, F) or (1,)
    stream = model.stream()
    one = x[0] if x.ndim == 2 else int(x[0])
    session = model.step_session
    feeds = {model.spec.io.step_input: x, **model.spec.initial_state(1)}
    binding = session.io_binding()
    values = [ort.OrtValue.ortvalue_from_numpy(v) for v in feeds.values()]
    for name, v in zip(feeds, values, strict=True):
        binding.bind_ortvalue_input(name, v)
    for o in session.get_outputs():
        binding.bind_output(o.name)
    fns: dict[str, Callable[[], object]] = {
        "Stream.step": lambda: stream.step(one), "session.run": lambda: session.run(None, feeds),
        "IOBinding": lambda: session.run_with_iobinding(binding)}
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(100):  # warm-up
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(calls):
                t0 = clock()
                fn()
                times[name].append(clock() - t0)
    return {k: Timing(float(np.median(v)) / 1000.0, float(np.percentile(v, 99)) / 1000.0) for k, v in times.items()}


def chunk_step_us(model: Model, steps: int) -> tuple[float, float]:
    """Per-step cost of `Stream.feed` with `steps` steps at once, and of one full-sequence call
    from the initial state at batch 1 (the compute floor), both in microseconds."""
    x = example_steps(model, steps)
    stream = model.stream()
    fed = time_calls(lambda: stream.feed(x), calls=500)
    lengths = np.array([steps], np.int64)
    full = time_calls(lambda: model.sequence_logits(x, lengths), calls=500)
    return fed.median_us / steps, full.median_us / steps


def batch_step_rates(model: Model, streams: int) -> tuple[float, float]:
    """Stream-steps per second: `streams` streams in one StreamBatch, and the same streams
    stepped one by one (each its own Stream)."""
    x = example_steps(model, 1, batch=streams)[:, 0]
    batch = model.stream_batch()
    handles = [batch.open() for _ in range(streams)]
    together = time_calls(lambda: batch.step(handles, x), calls=200)
    alone = [model.stream() for _ in range(streams)]
    items = [row if x.ndim == 2 else int(row) for row in x]

    def one_by_one() -> None:
        for s, item in zip(alone, items, strict=True):
            s.step(item)

    separate = time_calls(one_by_one, calls=20, warmup=2, min_calls=5)
    return streams / (together.median_us * 1e-6), streams / (separate.median_us * 1e-6)


def sequence_rate(model: Model, batch: int, steps: int) -> float:
    """Full sequences per second through the sequence graph at `batch`, `steps` steps each."""
    x = example_steps(model, steps, batch)
    lengths = np.full(batch, steps, np.int64)
    t = time_calls(lambda: model.sequence_logits(x, lengths), calls=200, warmup=2, min_calls=5)
    return batch / (t.median_us * 1e-6)


def typical_steps(model: Model) -> int:
    """Steps of a typical sequence of the model (edgeinfer.tasks.typical_steps)."""
    return task_steps(model.spec)


__all__ = ["Timing", "batch_step_rates", "chunk_step_us", "example_steps", "sequence_rate", "step_latency",
           "time_calls", "typical_steps"]
