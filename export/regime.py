"""Per-regime graphs, chosen by measurement at export (issue 18).

The int8 sequence graph serves throughput (`predict`, `feed`, bulk jobs: many sequences at once),
the step graph latency (one step of a few streams). `choose_sequence_graph` times the fused
operator's sequence graph against its decomposition (`export.decompose`) on this machine at batch
256 and keeps the faster; the step graph keeps the fused operator (it wins at batch 1), reading
the decomposition's int8 weights when the sequence graph quantized them. The choice and the two
throughputs go into the spec (`quantization` text and `metrics`), so `edgeinfer info` shows them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

import edgeinfer
from edgeinfer.atomic import write_atomic
from edgeinfer.errors import EdgeInferError
from edgeinfer.spec import FORMAT_VERSION, SPEC_KEY, ImageInput, ModelSpec, TextInput
from export.decompose import decompose, dequantize_step
from export.graphs import bundle, unbundle

BATCH = 256  # the regime the sequence graph is chosen for
STEPS = {"digits": 28, "sentiment": 256, "characters": 100}  # a typical sequence of each task
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
    steps = steps or STEPS.get(spec.task, 64)
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


def record_choice(src: Path, dst: Path, data: str | None = None) -> Choice:
    """Measure an int8 file's fused sequence graph against its decomposition at batch 256 and
    write the file again in the faster form, with the choice and the throughputs in its spec.

    When the fused graph is the faster, the graphs are copied as they are and the metrics stay
    true. When the decomposition is, its accuracy is measured again through the new graph, as
    export measures it (digits, sentiment: the whole test set from `data`, the int8 gate against
    the fp32 accuracy the spec records) and replaces the old figure; `parity_max_abs_err` (against
    PyTorch, which needs the checkpoint) gives way to `seq_step_max_abs_err`, the two graphs
    against each other. A characters file must then be exported again from its checkpoint
    (ValueError; nothing is written)."""
    edgeinfer.load(src)  # validates the file first
    model = onnx.load_from_string(src.read_bytes())
    spec = ModelSpec.from_json({p.key: p.value for p in model.metadata_props}[SPEC_KEY])
    if spec.precision != "int8":
        raise ValueError(f"{src}: an {spec.precision} file; the sequence-graph choice is for int8 files")
    seq, step = unbundle(model)
    if any(n.op_type == "Scan" for n in seq.graph.node):
        raise ValueError(f"{src}: its sequence graph is already decomposed")
    choice = choose_sequence_graph(seq, step, spec, vocab_of(spec))
    base = spec.quantization.split("; sequence graph:")[0]
    metrics = dict(spec.metrics)
    if choice.fused_seq_per_s:  # measured (0: the graph could not be decomposed)
        metrics |= {"seq_per_s_b256_fused": round(choice.fused_seq_per_s, 1),
                    "seq_per_s_b256_decomposed": round(choice.decomposed_seq_per_s, 1)}
    io = spec.io
    if choice.decomposed:
        metrics = {k: v for k, v in metrics.items() if k != "parity_max_abs_err"}
        metrics |= _remeasure(src, spec, seq, choice, data)
        io = replace(io, batch_steps_from=choice.batch_steps_from)
    provenance = {**spec.provenance, "regime": {"by": "python -m export.regime", "date": dt.date.today().isoformat(),
                                                "onnxruntime": ort.__version__}}
    new = replace(spec, quantization=f"{base}; {choice.note}", metrics=metrics, io=io, provenance=provenance,
                  format_version=FORMAT_VERSION)
    write_atomic(dst, bundle(choice.seq, choice.step, new).SerializeToString())
    return choice


def _remeasure(src: Path, spec: ModelSpec, seq: onnx.ModelProto, choice: Choice, data: str | None
               ) -> dict[str, float]:
    """The decomposed graphs' test accuracy (the int8 gate against the recorded fp32 accuracy),
    and their agreement with each other."""
    from export.gates import MAX_INT8_DROP_POINTS, AccuracyGate, digits_test_data
    from train.data import data_dir
    from train.tasks import sentiment_test_data

    if spec.task == "characters" or "fp32_test_accuracy" not in spec.metrics:
        raise ValueError(f"{src}: the decomposed sequence graph is faster here "
                         f"({choice.decomposed_seq_per_s:,.0f} against {choice.fused_seq_per_s:,.0f} seq/s); "
                         "export the model again from its checkpoint (python -m export) so that its score "
                         "is measured through that graph")
    root = data_dir(data)
    if isinstance(spec.input, ImageInput):
        gate = AccuracyGate(digits_test_data(root, spec.input), "test_images", MAX_INT8_DROP_POINTS["digits"])
    else:
        assert isinstance(spec.input, TextInput)
        gate = AccuracyGate(sentiment_test_data(root, spec.input), "test_reviews", MAX_INT8_DROP_POINTS["sentiment"])
    before = gate.score(seq, choice.step, spec)
    if abs(before - spec.metrics["test_accuracy"]) > 2e-4:
        raise ValueError(f"{src}: measured {before:.4%} with its own graph, but its spec says "
                         f"{spec.metrics['test_accuracy']:.4%}: not the data it was measured on")
    after = gate.score(choice.seq, choice.step, spec)
    fp32 = spec.metrics["fp32_test_accuracy"]
    refusal = gate.refusal(fp32, after)
    if refusal is not None:
        raise ValueError(f"{src}: decomposed, {refusal}; nothing written")
    print(f"test accuracy {before:.4%} -> {after:.4%} decomposed (fp32 {fp32:.4%})", file=sys.stderr)
    return {"test_accuracy": after, "seq_step_max_abs_err": _seq_step_error(choice, spec, vocab_of(spec))}


def vocab_of(spec: ModelSpec) -> int:
    """The token vocabulary's size (ids), 0 for feature models."""
    return spec.token_vocab.vocab_size if spec.token_vocab is not None else 0


def _seq_step_error(choice: Choice, spec: ModelSpec, vocab: int, steps: int = 28) -> float:
    """Max abs difference of the logits, the sequence graph against the step graph run step by
    step (random inputs, 7 rows)."""
    feeds = sample_inputs(spec, vocab, batch=7, steps=steps)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    seq = ort.InferenceSession(choice.seq.SerializeToString(), options, providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(choice.step.SerializeToString(), options, providers=["CPUExecutionProvider"])
    whole = seq.run([spec.io.output], feeds)[0]
    state = {s.name: feeds[s.name] for s in spec.state}
    x = feeds[spec.io.seq_input]
    for t in range(steps):
        got = step.run([spec.io.output, *spec.state_outputs], {spec.io.step_input: x[:, t], **state})
        state = {s.name: v for s, v in zip(spec.state, got[1:], strict=True)}
    return round(float(np.abs(whole - got[0]).max()), 6)


def main(argv: list[str] | None = None) -> int:
    """`python -m export.regime IN.onnx OUT.onnx`: record the measured sequence-graph choice."""
    p = argparse.ArgumentParser(prog="python -m export.regime", description=record_choice.__doc__)
    p.add_argument("src", type=Path, help="an int8 edgeinfer file")
    p.add_argument("dst", type=Path, help="where to write it with the choice recorded")
    p.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
    a = p.parse_args(argv)
    try:
        record_choice(a.src, a.dst, a.data)
    except (EdgeInferError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {a.dst} ({a.dst.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
