"""Rewrite an edgeinfer file of an older format in the current format, weights untouched.

    python -m edgeinfer_export.relayout OLD.onnx NEW.onnx

Format 4 stores the step graph's shared weights as byte ranges of the file itself (so any
onnxruntime, the JavaScript one included, can open the step graph from the file's bytes); files
of formats 1-3 name the sequence graph's initializers instead, and the runtimes refuse them with
this command in the message. Format 7 describes the model by what it reads and gives (input
kind, output kind, state) instead of a task name. The graphs and weights are copied as they are,
so the file computes exactly what it did: the old file's graphs, run as they are in onnxruntime,
and the new file, loaded by edgeinfer, give the same numbers bit for bit before the new file
takes its name. Its metrics stay those measured at export.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx

from edgeinfer.atomic import write_atomic
from edgeinfer.core import LoadedModel
from edgeinfer.errors import EdgeInferError, ModelFileError, SpecError
from edgeinfer.fileformat import check_external_data, parse_model_file, read_metadata, read_spec
from edgeinfer.session import create_session
from edgeinfer.spec import FORMAT_VERSION, SELF_RANGES_FORMAT, STEP_GRAPH_KEY, STEP_SHARED_KEY, ModelSpec
from edgeinfer_export.bundle import bundle, unbundle


def read_older(data: bytes, source: str) -> tuple[ModelSpec, bytes, bytes]:
    """The spec, sequence graph and whole step graph (serialized, without metadata) of an edgeinfer
    file of any format, validated: formats 4 on as the runtime validates them; formats 1-3 (which
    the runtime refuses) here: their step graph's external weights are the sequence initializers
    `edgeinfer.step_shared` names, put back into the step graph, and nothing else is external."""
    meta = read_metadata(data, source)
    spec = read_spec(meta, source)
    shared: dict[str, str] = {}  # formats 1-3: step initializer -> the sequence initializer holding it
    if spec.format_version >= SELF_RANGES_FORMAT:
        parse_model_file(data, source)  # checksums, byte ranges, external data
    else:
        try:
            step = base64.b64decode(meta.get(STEP_GRAPH_KEY, ""), validate=True)
            named = json.loads(meta.get(STEP_SHARED_KEY, "{}"))
        except (binascii.Error, ValueError, RecursionError):
            raise SpecError(f"{source}: the embedded step graph or its {STEP_SHARED_KEY} is corrupt") from None
        if not step or not isinstance(named, dict) or \
                not all(isinstance(k, str) and isinstance(v, str) for k, v in named.items()):
            raise SpecError(f"{source}: no step graph, or a corrupt {STEP_SHARED_KEY}; export the model again")
        shared = named
        check_external_data(data, set(), source)
        check_external_data(step, set(shared), f"{source} (step graph)")
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError: onnx has no error type of its own for it
        raise ModelFileError(f"{source}: corrupt ONNX file ({exc})") from None
    try:
        missing = sorted(set(shared.values()) - {t.name for t in model.graph.initializer})
        if missing:
            raise ModelFileError(f"{source}: weights {missing[:3]} of the step graph are missing from the file")
        seq, step_graph = unbundle(model)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{source}: corrupt ONNX file ({exc})") from None
    return spec, seq.SerializeToString(), step_graph.SerializeToString()


def relayout(src: Path, dst: Path) -> None:
    """Write `src` in the current layout to `dst`, and check both give the same outputs."""
    spec, seq, step = read_older(src.read_bytes(), str(src))
    data = bundle(onnx.load_from_string(seq), onnx.load_from_string(step),
                  ModelSpec.from_dict(spec.to_dict())).SerializeToString()
    tmp = dst.with_name(f".{dst.name}.relayout.tmp")
    write_atomic(tmp, data)
    try:
        _same_numbers(spec, seq, step, LoadedModel(tmp, intra_op_threads=1), str(src))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dst)


def _same_numbers(spec: ModelSpec, seq: bytes, step: bytes, new: LoadedModel, source: str) -> None:
    """RuntimeError unless the new file gives the old graphs' numbers (every output, state
    included), bit for bit, step by step and whole. The old graphs run as they are in onnxruntime,
    on one thread as the new file's sessions do (int8 results may depend on the thread count)."""
    rng = np.random.default_rng(0)
    io, batch, steps = spec.io, 3, 7
    vocab = spec.token_vocab
    if vocab is None:
        x = rng.standard_normal((batch, steps, spec.input_size)).astype(np.float32)
    else:
        x = rng.integers(2, vocab.vocab_size, (batch, steps)).astype(np.int64)
    old_step = create_session(step, f"{source} (step graph)", intra_op_threads=1)
    outputs = [io.output, *spec.state_outputs, *([io.step_probabilities] if io.step_probabilities else [])]
    state = spec.initial_state(batch)
    for t in range(steps):
        feeds = {io.step_input: x[:, t], **state}
        a, b = old_step.run(outputs, feeds), new.run("step", outputs, feeds)
        if not all(np.array_equal(u, v) for u, v in zip(a, b, strict=True)):
            raise RuntimeError("the relaid file's step graph gives other numbers; nothing kept")
        state = {s.name: v for s, v in zip(spec.state, a[1:], strict=False)}
    old_seq = create_session(seq, f"{source} (sequence graph)", intra_op_threads=1)
    feeds = {io.seq_input: x, **spec.initial_state(batch)}
    if io.lengths:
        feeds[io.lengths] = np.array([steps, 1, steps - 2], np.int64)
    outputs = [io.output, *spec.state_outputs]
    a, b = old_seq.run(outputs, feeds), new.run("sequence", outputs, feeds)
    if not all(np.array_equal(u, v) for u, v in zip(a, b, strict=True)):
        raise RuntimeError("the relaid file's sequence graph gives other numbers; nothing kept")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and rewrite; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m edgeinfer_export.relayout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="an edgeinfer file of an older format")
    p.add_argument("dst", type=Path, help="where to write it in the current layout")
    a = p.parse_args(argv)
    try:
        relayout(a.src, a.dst)
    except (EdgeInferError, RuntimeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {a.dst} ({a.dst.stat().st_size:,} bytes, format {FORMAT_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
