"""Both int8 sequence-graph forms in one file, chosen by the batch size at run time.

    python -m edgeinfer_export.both IN.onnx OUT.onnx [--from N]

A decomposed sequence graph (`edgeinfer_export.decompose`) wins at batch 256 and loses at batch 1
(a Scan pays per node per step), where the fused operator wins: one form per file made one regime
pay for the other (the built-in sentiment model read 0.56x the fused form's single texts). This
rewrites a file whose sequence graph is decomposed so that its main graph is

    If(batch >= decomposed_from)  then: the decomposed graph   else: the fused operator

Both branches read the same int8 weights (the outer graph's initializers; the fused branch reads
them through Cast and Mul, folded at session creation, as the step graph does), so the file grows
by a few kB of nodes. The fused branch is rebuilt from the file itself: each decomposition's nodes
(named `decomposedI/...`) are replaced by the step graph's recurrent operator, its weights mapped
by their bytes onto the sequence graph's initializers; the inputs, outputs and every other node
stay. `decomposed_from` is measured here (the smallest batch from which the decomposed form is
faster at every larger batch measured) unless given; the spec's quantization text records it and
the measurements, and a user re-chooses on their machine by running this again on the file. The
rewritten file is checked against the original before it takes the output's name: the same
numbers at batch 256 (the decomposed branch, bit for bit) and within the int8 tolerance at batch 1.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import edgeinfer
from edgeinfer.atomic import write_atomic
from edgeinfer.dequantize import FORM_NODE, fused_form
from edgeinfer.errors import EdgeInferError
from edgeinfer.spec import SPEC_KEY, ModelSpec
from edgeinfer_export.bundle import bundle, unbundle
from edgeinfer_export.decompose import live_nodes
from edgeinfer_export.regime import sample_inputs, throughput

CELLS = ("GRU", "RNN", "LSTM", "DynamicQuantizeLSTM")
THRESHOLD = "edgeinfer.decomposed_from"  # the outer graph's int64 initializer: the If's batch threshold
BATCHES = (1, 4, 16, 64, 256)  # measured for the threshold
TOLERANCE = 0.08  # |fused - decomposed| probabilities: the decomposed form rounds its state to 8 bits at every step
# (the int8 tolerance tests/export/test_decompose.py holds both forms to against PyTorch)
NOTE = ("sequence graph: both forms behind an If on the batch size: decomposed from batch {n}, the fused operator "
        "below (measured here, sequences/s fused/decomposed: {rates})")


def _weights_chain(step: onnx.GraphProto, names: list[str]) -> list[onnx.NodeProto]:
    """The step graph's nodes that compute `names` from initializers alone (Cast, Unsqueeze, Mul), in order."""
    producer = {o: n for n in step.node for o in n.output}
    inits = {t.name for t in step.initializer}
    chain: list[onnx.NodeProto] = []

    def visit(name: str) -> None:
        if not name or name in inits:
            return
        node = producer.get(name)
        if node is None:
            raise ValueError(f"the step graph's recurrent weight {name!r} is not computed from initializers")
        for i in node.input:
            visit(i)
        if node not in chain:
            chain.append(node)

    for name in names:
        visit(name)
    return chain


@dataclass(frozen=True)
class _Interface:
    """What a decomposition read and gave in place of its recurrent operator: names in the graph."""

    x: str
    lens: str
    states: list[str]  # initial h (and c), or none: zeros
    y: str  # the per-step output, or "" when nothing reads it
    finals: list[str]  # the last h (and c)


def _interface(prefix: str, mine: list[onnx.NodeProto]) -> _Interface:
    """The names a decomposition's nodes (`mine`, named `prefix...`) read and gave."""
    def what(name: str) -> str:  # "decomposed0/shape_x_63" -> "shape_x"
        return name[len(prefix):].rsplit("_", 1)[0] if name.startswith(prefix) else ""

    made = {what(n.output[0]): n for n in mine if n.output}
    # the operator's input: read by the decomposition's Shape, or quantized by it ("xs": x / row
    # scale, or x * 127); an input it only read as stored uint8 has no fp32 name left
    source_x = made.get("shape_x") or made.get("xs")
    if source_x is None:
        raise ValueError(f"{prefix}: the decomposition reads its input as stored uint8 only; its fp32 form is "
                         "gone, so the fused operator cannot be rebuilt")
    y, finals = "", []
    for n in mine:  # the outputs the operator gave: names of the graph, not the prefix's
        if not n.output or n.output[0].startswith(prefix):
            continue
        source = what(n.input[0]) if n.input else ""
        if source == "ys" or n.op_type == "ConstantOfShape":
            y = n.output[0]
        elif source in ("h_last", "c_last"):
            finals.append(n.output[0])
    states = [n.input[0] for n in mine if n.output and what(n.output[0]) == "state0"]
    lens = made["lens64"].input[0] if "lens64" in made else ""
    return _Interface(source_x.input[0], lens, states, y, finals)


def _owners(seq: onnx.GraphProto, step: onnx.GraphProto, indices: list[int],
            by_bytes: dict[tuple[int, tuple[int, ...], bytes], str]) -> dict[int, onnx.NodeProto]:
    """Which of the step graph's recurrent operators each decomposition replaced: the one whose
    int8 weights it reads (matched by bytes); operators whose weights the step graph keeps in fp32
    (too small to share) take the remaining decompositions in order."""
    cells = [n for n in step.node if n.op_type in CELLS]
    if len(indices) != len(cells):
        raise ValueError(f"{len(indices)} decompositions but {len(cells)} recurrent operators in the step graph")
    step_inits = {t.name: t for t in step.initializer}
    seq_inits = {t.name for t in seq.initializer}
    owner: dict[int, onnx.NodeProto] = {}
    for cell in cells:
        chain = _weights_chain(step, [i for k, i in enumerate(cell.input) if k in (1, 2)])
        weights = [t for n in [*chain, cell] for i in n.input if (t := step_inits.get(i)) is not None
                   and t.data_type in (TensorProto.INT8, TensorProto.UINT8) and len(t.raw_data) >= 256]
        q = {by_bytes.get((t.data_type, tuple(t.dims), t.raw_data)) for t in weights}  # not zero points
        for index in indices:
            reads = {i for n in seq.node if n.name.startswith(f"decomposed{index}/") for i in n.input if i in seq_inits}
            if q and None not in q and q <= reads:
                owner[index] = cell
    left = [c for c in cells if all(c is not o for o in owner.values())]
    for index, cell in zip([i for i in indices if i not in owner], left, strict=False):
        owner[index] = cell
    if sorted(owner) != indices or len({id(c) for c in owner.values()}) != len(cells):
        raise ValueError("the step graph's recurrent weights are not the decomposition's int8 tensors")
    return owner


def _fused_cell(prefix: str, cell: onnx.NodeProto, step: onnx.GraphProto, io: _Interface,
                renamed: dict[str, str], by_bytes: dict[tuple[int, tuple[int, ...], bytes], str],
                extra: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """The step graph's operator and its weights' chain, reading the sequence graph's tensors."""
    lstm = cell.op_type in ("LSTM", "DynamicQuantizeLSTM")
    if len(io.finals) != (2 if lstm else 1) or (io.states and len(io.states) != len(io.finals)):
        raise ValueError(f"{prefix}: its outputs do not match the step graph's {cell.op_type}")
    step_inits = {t.name: t for t in step.initializer}
    chain = _weights_chain(step, [i for k, i in enumerate(cell.input) if k in (1, 2, 3) or k >= 8])
    for name in sorted({i for n in [*chain, cell] for i in n.input if i in step_inits} - set(renamed)):
        t = step_inits[name]
        key = (t.data_type, tuple(t.dims), t.raw_data)
        if key not in by_bytes:  # not in the sequence graph: carried over
            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            copy.name = f"{prefix}fused/{name}"
            extra.append(copy)
            by_bytes[key] = copy.name
        renamed[name] = by_bytes[key]
    new: list[onnx.NodeProto] = []
    for n in [*chain, cell]:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = f"{prefix}fused/{n.name or n.op_type}"
        for k, i in enumerate(copy.input):
            copy.input[k] = renamed.get(i, f"{prefix}fused/{i}" if i else "")
        for k, o in enumerate(copy.output):
            copy.output[k] = f"{prefix}fused/{o}" if o else ""
        new.append(copy)
    op = new[-1]
    inputs = list(op.input) + [""] * (8 - len(op.input))
    inputs[0], inputs[4], inputs[5] = io.x, io.lens, io.states[0] if io.states else ""
    if lstm:
        inputs[6] = io.states[1] if io.states else ""
    if op.op_type == "DynamicQuantizeLSTM":  # its scales and zero points, mapped as the weights were
        inputs = inputs[:8] + [renamed[i] for i in cell.input[8:]]
    while inputs and not inputs[-1]:
        inputs.pop()
    del op.input[:]
    op.input.extend(inputs)
    del op.output[:]
    op.output.extend([io.y or f"{prefix}fused/y", *io.finals])
    return new


def fused_graph(seq: onnx.ModelProto, step: onnx.ModelProto) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The fused sequence graph's nodes rebuilt from a decomposed `seq` and the whole `step` graph,
    and the initializers it needs beyond `seq`'s (the rest are `seq`'s, matched by their bytes)."""
    g = seq.graph
    by_bytes = {(t.data_type, tuple(t.dims), t.raw_data): t.name for t in g.initializer if t.raw_data}
    heads = {n.name.split("/")[0] for n in g.node if n.name.startswith("decomposed")}
    indices = sorted(int(h[len("decomposed"):]) for h in heads if h[len("decomposed"):].isdigit())
    if not indices:
        raise ValueError("the sequence graph is not decomposed (no decomposedI/ nodes)")
    owner = _owners(g, step.graph, indices, by_bytes)
    renamed: dict[str, str] = {}  # step initializer -> the sequence graph's (or a carried-over) name
    extra: list[onnx.TensorProto] = []
    nodes = list(g.node)
    for index in indices:
        prefix = f"decomposed{index}/"
        mine = [n for n in nodes if n.name.startswith(prefix)]
        new = _fused_cell(prefix, owner[index], step.graph, _interface(prefix, mine), renamed, by_bytes, extra)
        where = nodes.index(mine[0])
        nodes = [n for n in nodes[:where] if not n.name.startswith(prefix)] + new + \
            [n for n in nodes[where:] if not n.name.startswith(prefix)]
    return live_nodes(nodes, {o.name for o in g.output}), extra


def _renamed(nodes: list[onnx.NodeProto], rename: dict[str, str]) -> list[onnx.NodeProto]:
    """Copies of `nodes` with the tensors `rename` names renamed, wherever they are read or made."""
    copies = []
    for n in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        for k, i in enumerate(copy.input):
            copy.input[k] = rename.get(i, i)
        for k, o in enumerate(copy.output):
            copy.output[k] = rename.get(o, o)
        copies.append(copy)
    return copies


def _branch(name: str, nodes: list[onnx.NodeProto], outputs: list[onnx.ValueInfoProto]) -> onnx.GraphProto:
    """A branch computing the outer graph's outputs under names of its own (`OUTPUT::name`)."""
    rename = {o.name: f"{o.name}::{name}" for o in outputs}
    copies = _renamed(nodes, rename)
    outs = [helper.make_tensor_value_info(rename[o.name], o.type.tensor_type.elem_type, None) for o in outputs]
    return helper.make_graph(copies, name, [], outs)


def both_forms(seq: onnx.ModelProto, step: onnx.ModelProto, seq_input: str, decomposed_from: int) -> onnx.ModelProto:
    """`seq` (decomposed) with its main graph an If on the batch size between it and the fused form."""
    fused_nodes, extra = fused_graph(seq, step)
    out = onnx.ModelProto()
    out.CopyFrom(seq)
    g = out.graph
    outputs = list(g.output)
    then_branch = _branch("decomposed", list(g.node), outputs)
    else_branch = _branch("fused", fused_nodes, outputs)
    del g.node[:]
    del g.value_info[:]
    g.initializer.extend(extra)
    g.initializer.append(numpy_helper.from_array(np.array(decomposed_from, np.int64), THRESHOLD))
    g.initializer.append(numpy_helper.from_array(np.array(0, np.int64), "edgeinfer.axis0"))
    g.node.extend([
        helper.make_node("Shape", [seq_input], ["edgeinfer.shape"], name="edgeinfer/shape"),
        helper.make_node("Gather", ["edgeinfer.shape", "edgeinfer.axis0"], ["edgeinfer.batch"], name="edgeinfer/batch",
                         axis=0),
        helper.make_node("GreaterOrEqual", ["edgeinfer.batch", THRESHOLD], ["edgeinfer.decomposed"],
                         name="edgeinfer/regime"),
        helper.make_node("If", ["edgeinfer.decomposed"], [o.name for o in outputs], name="edgeinfer/form",
                         then_branch=then_branch, else_branch=else_branch),
    ])
    return out


def _measure(seq_d: onnx.ModelProto, seq_f: onnx.ModelProto, spec: ModelSpec, vocab: int) -> tuple[int, str]:
    """The threshold: the smallest of BATCHES from which the decomposed form is faster at that and
    every larger batch measured (beyond the largest: never); and the measurements, as text."""
    faster, rates = [], []
    for batch in BATCHES:
        speed = throughput({"fused": seq_f, "decomposed": seq_d}, sample_inputs(spec, vocab, batch=batch),
                           min_seconds=0.5)
        faster.append(speed["decomposed"] > speed["fused"])
        rates.append(f"batch {batch} {speed['fused']:,.0f}/{speed['decomposed']:,.0f}")
        print(f"batch {batch}: fused {speed['fused']:,.0f}, decomposed {speed['decomposed']:,.0f} sequences/s",
              file=sys.stderr)
    threshold = next((b for i, b in enumerate(BATCHES) if all(faster[i:])), 1 << 30)
    return threshold, ", ".join(rates)


def combine(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec, vocab: int,
            decomposed_from: int | None = None) -> tuple[onnx.ModelProto, int, str]:
    """The decomposed sequence graph `seq` with both forms behind the If (see the module), the
    threshold (measured here unless given) and the note for the spec's quantization text."""
    fused_nodes, extra = fused_graph(seq, step)
    seq_f = onnx.ModelProto()
    seq_f.CopyFrom(seq)
    del seq_f.graph.node[:]
    seq_f.graph.node.extend(fused_nodes)
    seq_f.graph.initializer.extend(extra)
    rates = "given"
    if decomposed_from is None:
        decomposed_from, rates = _measure(seq, seq_f, spec, vocab)
    combined = both_forms(seq, step, spec.io.seq_input, decomposed_from)
    return combined, decomposed_from, NOTE.format(n=decomposed_from, rates=rates)


def rewrite(src: Path, dst: Path, decomposed_from: int | None = None) -> int:
    """Write `src` with both sequence forms to `dst`; the threshold used."""
    old = edgeinfer.load(src)
    model = onnx.load_from_string(src.read_bytes())
    spec = ModelSpec.from_json({p.key: p.value for p in model.metadata_props}[SPEC_KEY])
    seq, step = unbundle(model)
    decomposed = decomposed_alone(seq)
    if decomposed is not None:
        seq = decomposed  # already both forms: start again from the decomposed one
    vocab = old.spec.token_vocab.vocab_size if old.spec.token_vocab is not None else 0
    # the branch the source gave at each batch: always decomposed, or its own threshold
    source_from = next((int(numpy_helper.to_array(t)) for t in model.graph.initializer if t.name == THRESHOLD), 1)
    combined, decomposed_from, note = combine(seq, step, spec, vocab, decomposed_from)
    base = spec.quantization.split("; sequence graph: both forms")[0]
    new_spec = ModelSpec.from_dict({**spec.to_dict(), "quantization": f"{base}; {note}"})
    data = bundle(combined, step, new_spec).SerializeToString()
    tmp = dst.with_name(f".{dst.name}.both.tmp")
    write_atomic(tmp, data)
    try:
        _check(old, edgeinfer.load(tmp), decomposed_from, source_from)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dst)
    return decomposed_from


def decomposed_alone(seq: onnx.ModelProto) -> onnx.ModelProto | None:
    """A sequence graph holding both forms as its decomposed form alone; None for a graph holding
    one form."""
    form = next((n for n in seq.graph.node if n.op_type == "If" and n.name == FORM_NODE), None)
    if form is None:
        return None
    return _unbranch(seq, next(a.g for a in form.attribute if a.name == "then_branch"))


def single_forms(seq: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto] | None:
    """A sequence graph holding both forms as each form alone, (decomposed, fused), over the same
    weights; None for a graph holding one form."""
    decomposed = decomposed_alone(seq)
    fused = fused_form(seq.SerializeToString()) if decomposed is not None else None
    return None if decomposed is None or fused is None else (decomposed, onnx.load_from_string(fused))


def _unbranch(seq: onnx.ModelProto, then: onnx.GraphProto) -> onnx.ModelProto:
    """The decomposed sequence graph of a file that already holds both forms."""
    out = onnx.ModelProto()
    out.CopyFrom(seq)
    g = out.graph
    del g.node[:]
    g.node.extend(_renamed(list(then.node), {f"{o.name}::decomposed": o.name for o in g.output}))
    keep = [t for t in g.initializer if t.name not in (THRESHOLD, "edgeinfer.axis0") and "/fused/" not in t.name]
    del g.initializer[:]
    g.initializer.extend(keep)
    return out


def _check(old: edgeinfer.Model, new: edgeinfer.Model, decomposed_from: int, source_from: int) -> None:
    """RuntimeError unless the new file answers as the old: bit for bit at a batch where both run
    the decomposed graph, within TOLERANCE elsewhere; its step graph bit for bit."""
    rng = np.random.default_rng(0)
    vocab = old.spec.token_vocab
    both = max(decomposed_from, source_from)
    for batch in sorted({1, 3, *([both] if both <= 256 else [])}):
        steps = 12
        x = (rng.integers(2, vocab.vocab_size, (batch, steps)).astype(np.int64) if vocab is not None
             else rng.standard_normal((batch, steps, old.spec.input_size)).astype(np.float32))
        a, b = old.sequence_logits(x), new.sequence_logits(x)
        pa, pb = old.spec.answers(a), new.spec.answers(b)
        if batch >= both and not np.array_equal(a, b):
            raise RuntimeError(f"batch {batch}: the decomposed branch gives other numbers; nothing kept")
        if float(np.abs(pa - pb).max()) > TOLERANCE:
            raise RuntimeError(f"batch {batch}: the fused branch is {float(np.abs(pa - pb).max()):.3g} from the "
                               f"decomposed graph (tolerance {TOLERANCE}); nothing kept")
    s, t = old.stream(), new.stream()
    for k in range(5):
        row: int | np.ndarray = 2 + k if vocab is not None else rng.standard_normal(old.spec.input_size).astype(
            np.float32)
        if not np.array_equal(s.step(row), t.step(row)):
            raise RuntimeError("the step graph gives other numbers; nothing kept")


def parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    p = argparse.ArgumentParser(prog="python -m edgeinfer_export.both", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="a file whose int8 sequence graph is decomposed (or holds both forms)")
    p.add_argument("dst", type=Path, help="where to write it (may be the same path)")
    p.add_argument("--from", dest="decomposed_from", type=int, default=None,
                   help="the batch from which the decomposed form runs (default: measured here)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and rewrite; returns the exit code."""
    a = parser().parse_args(argv)
    try:
        n = rewrite(a.src, a.dst, a.decomposed_from)
    except (EdgeInferError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{a.dst}: the decomposed sequence graph from batch {n}, the fused operator below", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
