"""`python -m export.regime IN OUT`: an existing int8 file rewritten in its faster sequence-graph form.

The measurement itself is edgeinfer_export.regime's; this adds the built-ins' re-measured accuracy.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

import edgeinfer
from edgeinfer.atomic import write_atomic
from edgeinfer.errors import EdgeInferError
from edgeinfer.spec import FORMAT_VERSION, SPEC_KEY, ImageInput, ModelSpec, TextInput
from edgeinfer_export.bundle import bundle, unbundle
from edgeinfer_export.regime import Choice, choose_sequence_graph, sample_inputs


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

    if not isinstance(spec.input, (ImageInput, TextInput)) or "fp32_test_accuracy" not in spec.metrics:
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
