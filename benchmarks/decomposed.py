"""The int8 sequence graph's forms side by side (issue 18): the fused operator, the decomposition
with one recurrent product per gate (what export ships when it wins), and the fused-gate variant
(one product for every gate, then a Split), at batch 256 and batch 1, one and two threads.

    .venv/bin/python benchmarks/decomposed.py [--models digits sentiment characters]

Needs the `train` extra (onnx). Sequences per second, medians of interleaved runs (a busy spell
slows every form alike), and the max abs difference of each form's logits from the fused one's.
A decomposed file's fused form cannot be rebuilt from it (its fp32 cell weights are gone): such
a model is measured as shipped, against its decomposed variants only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer
from edgeinfer_export.bundle import unbundle
from edgeinfer_export.decompose import decompose
from edgeinfer_export.regime import sample_inputs, throughput


def forms(model: edgeinfer.Model) -> dict[str, onnx.ModelProto]:
    """The model's sequence graph in each form it can take."""
    seq, _ = unbundle(onnx.load(model.path))
    if any(n.op_type == "Scan" for n in seq.graph.node):
        return {"decomposed (shipped)": seq}
    return {"fused": seq, "decomposed, per gate": decompose(seq), "decomposed, fused gates": decompose(seq, True)}


def main() -> None:
    """Print one markdown row per model, batch and thread count."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["digits", "sentiment", "characters"])
    a = p.parse_args()
    print("| model | batch | threads | " + " | ".join(("form 1", "form 2", "form 3")) + " |")
    print("|---|---|---|---|---|---|")
    for name in a.models:
        model = edgeinfer.load(name)
        graphs = forms(model)
        vocab = model.spec.token_vocab.vocab_size if model.spec.token_vocab is not None else 0
        for batch in (256, 1):
            feeds = sample_inputs(model.spec, vocab, batch=batch)
            ref = None
            diffs = {}
            for form, graph in graphs.items():
                out = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(
                    [model.spec.io.output], feeds)[0]
                ref = out if ref is None else ref
                diffs[form] = float(np.abs(out - ref).max())
            for threads in (1, 2):
                rates = throughput(graphs, feeds, threads=threads, repeats=5 if batch > 1 else 50)
                first = next(iter(rates.values()))
                cells = [f"{form}: {r:,.0f} seq/s ({r / first:.2f}x; max abs Δ {diffs[form]:.1e})"
                         for form, r in rates.items()]
                print(f"| {name} | {batch} | {threads} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
