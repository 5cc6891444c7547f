"""Rewrite an edgeinfer file of an older format in the current format, weights untouched.

    python -m edgeinfer_export.relayout OLD.onnx NEW.onnx

Format 4 stores the step graph's shared weights as byte ranges of the file itself (so any
onnxruntime, the JavaScript one included, can open the step graph from the file's bytes); files
of formats 1-3 name the sequence graph's initializers instead. Format 7 describes the model by
what it reads and gives (input kind, output kind, state) instead of a task name. The graphs and
weights are copied as they are, so the file computes exactly what it did (checked, bit for bit,
before the new file takes its name); its metrics stay those measured at export.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import onnx

import edgeinfer
from edgeinfer.atomic import write_atomic
from edgeinfer.errors import EdgeInferError
from edgeinfer.spec import FORMAT_VERSION, SPEC_KEY, ModelSpec
from edgeinfer_export.bundle import bundle, unbundle


def relayout(src: Path, dst: Path) -> None:
    """Write `src` in the current layout to `dst`, and check both give the same outputs."""
    old = edgeinfer.load(src)  # validates the old file first
    model = onnx.load_from_string(src.read_bytes())
    spec = ModelSpec.from_json({p.key: p.value for p in model.metadata_props}[SPEC_KEY])
    seq, step = unbundle(model)
    data = bundle(seq, step, ModelSpec.from_dict(spec.to_dict())).SerializeToString()
    tmp = dst.with_name(f".{dst.name}.relayout.tmp")
    write_atomic(tmp, data)
    try:
        _same_numbers(old, edgeinfer.load(tmp))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dst)


def _same_numbers(old: edgeinfer.Model, new: edgeinfer.Model) -> None:
    """RuntimeError unless both files give the same numbers, bit for bit, step by step and whole."""
    rng = np.random.default_rng(0)
    vocab = old.spec.token_vocab
    if vocab is None:
        x = rng.standard_normal((3, 7, old.spec.input_size)).astype(np.float32)
    else:
        x = rng.integers(2, vocab.vocab_size, (3, 7)).astype(np.int64)
    a, b = old.stream(3), new.stream(3)
    for t in range(x.shape[1]):
        if not np.array_equal(a.step(x[:, t]), b.step(x[:, t])):
            raise RuntimeError("the relaid file's step graph gives other numbers; nothing kept")
    if not np.array_equal(old.sequence_logits(x), new.sequence_logits(x)):
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
