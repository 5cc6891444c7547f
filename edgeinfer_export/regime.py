"""The int8 sequence graph's form, chosen by measurement at export.

The int8 sequence graph serves throughput (`predict`, `feed`, bulk jobs: many sequences at once),
the step graph latency (one step of a few streams). `choose_sequence_graph` times the fused
operator's sequence graph against its decomposition (`edgeinfer_export.decompose`) on this machine
at batch 256 and keeps the faster; the step graph keeps the fused operator (it wins at batch 1),
reading the decomposition's int8 weights when the sequence graph quantized them. The choice and the
two throughputs go into the spec (`quantization` text and `metrics`), so `edgeinfer info` shows them.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from edgeinfer.spec import ModelSpec
from edgeinfer.tasks import typical_steps
from edgeinfer_export.decompose import decompose, dequantize_step

BATCH = 256  # the regime the sequence graph is chosen for
REPEATS = 5
MIN_SECONDS = 1.0  # of runs per graph at least, for the median
DECOMPOSED = ("sequence graph: decomposed (input projections as int8 products out of the loop, a Scan with int8 "
              "recurrent products and fp32 gates), {ratio:.2f}x the fused operator at batch 256 here; "
              "step graph: the fused operator")
DECOMPOSED_AS_TOLD = ("sequence graph: decomposed (input projections as int8 products out of the loop, a Scan with "
                      "int8 recurrent products and fp32 gates); step graph: the fused operator")
FUSED_AS_TOLD = "sequence graph: the fused operator"
FUSED = "sequence graph: the fused operator ({ratio:.2f}x a decomposed Scan at batch 256 here)"


@dataclass(frozen=True)
class Choice:
    """The graphs to ship, what the spec says of them, and the measured throughputs."""

    seq: onnx.ModelProto
    step: onnx.ModelProto
    decomposed: bool
    note: str  # appended to the spec's quantization text
    fused_seq_per_s: float  # 0: not measured (the choice was given)
    decomposed_seq_per_s: float
    batch_steps_from: int = 0  # io.batch_steps_from: StreamBatch steps of this many streams run the sequence graph


def sample_inputs(spec: ModelSpec, vocab: int, batch: int = BATCH, seed: int = 0, steps: int = 0
                  ) -> dict[str, np.ndarray]:
    """Feeds of a batch of typical sequences (or of `steps` steps) for the sequence graph."""
    rng = np.random.default_rng(seed)
    steps = steps or typical_steps(spec)
    if vocab:
        x = rng.integers(2, vocab, (batch, steps)).astype(np.int64)
        lengths = {spec.io.lengths: np.full(batch, steps, np.int64)} if spec.io.lengths else {}
    else:
        x, lengths = rng.standard_normal((batch, steps, spec.input_size)).astype(np.float32), {}
    state = {s.name: np.asarray(s.initial_value(batch), np.float32) for s in spec.state}
    return {spec.io.seq_input: x, **lengths, **state}


def throughput(models: dict[str, onnx.ModelProto], feeds: dict[str, np.ndarray], threads: int = 0,
               repeats: int = REPEATS, min_seconds: float = MIN_SECONDS) -> dict[str, float]:
    """Sequences per second of each model on `feeds`: the median of at least `repeats` runs and
    at least `min_seconds` of runs each (a small model's call takes milliseconds), interleaved so
    that a busy spell of the machine slows every model alike."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    sessions = {k: ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
                for k, m in models.items()}
    batch = len(next(iter(feeds.values())))
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(None, feeds)
    while min(len(v) for v in times.values()) < repeats or min(sum(v) for v in times.values()) < min_seconds:
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds)
            times[k].append(time.perf_counter() - t0)
    return {k: batch / float(np.median(v)) for k, v in times.items()}


STREAM_COUNTS = (16, 64, 256)  # StreamBatch sizes measured for io.batch_steps_from


def batch_steps_from(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec, vocab: int) -> int:
    """The smallest of STREAM_COUNTS from which one step of that many streams is faster through
    the (decomposed) sequence graph with T = 1 than through the step graph, at that count and
    every larger one measured; 0 when the step graph is never slower."""
    faster = []
    for n in STREAM_COUNTS:
        feeds = sample_inputs(spec, vocab, batch=n, steps=1)
        step_feeds = {spec.io.step_input: feeds[spec.io.seq_input][:, 0],
                      **{s.name: feeds[s.name] for s in spec.state}}
        rates = {"step": throughput({"step": step}, step_feeds, repeats=50, min_seconds=0.3)["step"],
                 "sequence": throughput({"sequence": seq}, feeds, repeats=50, min_seconds=0.3)["sequence"]}
        faster.append(rates["sequence"] > rates["step"])
        print(f"StreamBatch step of {n} streams: step graph {rates['step']:,.0f}, sequence graph "
              f"{rates['sequence']:,.0f} steps/s", file=sys.stderr)
    for i, n in enumerate(STREAM_COUNTS):
        if all(faster[i:]):
            return n
    return 0


def decomposed_pair(seq: onnx.ModelProto, step: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The decomposed sequence graph, and the step graph reading its int8 weights where it
    quantized fp32 ones (an int8 LSTM's step graph already shares its int8 weights)."""
    seq_d = decompose(seq)
    fp32_cells = any(n.op_type in ("GRU", "RNN", "LSTM") for n in step.graph.node)
    return seq_d, (dequantize_step(step, seq, seq_d) if fp32_cells else step)


def choose_sequence_graph(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec, vocab: int,
                          force: bool | None = None) -> Choice:
    """Measure the fused and the decomposed int8 sequence graph at batch 256 and keep the faster
    (`force` True/False overrides the measurement, for tests and for reproducing a file)."""
    if force is False:  # no measurement: the file is then the same bytes on every machine
        return Choice(seq, step, False, FUSED_AS_TOLD, 0.0, 0.0)
    try:
        seq_d, step_d = decomposed_pair(seq, step)
    except ValueError as exc:  # a form the decomposition does not cover: keep the fused operator
        if force:
            raise
        print(f"sequence graph: the fused operator ({exc})", file=sys.stderr)
        return Choice(seq, step, False, f"{FUSED_AS_TOLD} (not decomposable: {exc})", 0.0, 0.0)
    if force:
        return Choice(seq_d, step_d, True, DECOMPOSED_AS_TOLD, 0.0, 0.0)
    speed = throughput({"fused": seq, "decomposed": seq_d}, sample_inputs(spec, vocab))
    fused, dec = speed["fused"], speed["decomposed"]
    use = dec > fused
    print(f"sequence graph at batch {BATCH}: fused {fused:,.0f} seq/s, decomposed {dec:,.0f} seq/s -> "
          f"{'decomposed' if use else 'fused'}", file=sys.stderr)
    if use:
        return Choice(seq_d, step_d, True, DECOMPOSED.format(ratio=dec / fused), fused, dec,
                      batch_steps_from(seq_d, step_d, spec, vocab))
    return Choice(seq, step, False, FUSED.format(ratio=fused / dec), fused, dec)
