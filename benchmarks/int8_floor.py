"""Where an int8 LSTM's time goes at batch 256, against the arithmetic no LSTM can skip.

    .venv/bin/python benchmarks/int8_floor.py [--models digits characters] [--rounds 7]

Needs the `train` extra (PyTorch). For each built-in LSTM, at batch 256 over its typical sequence
length, with one thread and with two, timed in interleaved rounds (medians; a busy spell slows
every contender alike):

- PyTorch fp32: the model's own architecture in PyTorch (random weights), the target's baseline;
- PyTorch fp32 products: the same matrix products alone (`torch.mm` into reused outputs);
- edgeinfer int8: the shipped file's sequence graph, as `Model.sequence_logits` runs it;
- onnxruntime int8 products: the same products alone as `MatMulInteger` (uint8 x int8 -> int32,
  what `DynamicQuantizeLSTM` multiplies with), every product of a layer in one graph with its
  outputs bound to reused buffers. This is the floor of any int8 LSTM on onnxruntime's kernels:
  no gate arithmetic, no quantizing of the state, no copies.

The products of a layer: the input projection of every step at once, (T·B, in) x (in, 4H), as
both LSTM kernels hoist it out of the time loop, and T recurrent ones, (B, H) x (H, 4H). The last
column, PyTorch fp32 LSTM time over the int8 products' time, is the most any int8 LSTM built on
those kernels could reach against PyTorch on this machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer
from benchmarks.run import torch_net
from edgeinfer.bench import example_steps, typical_steps
from train.models import RecurrentNet

BATCH = 256


def products(net: RecurrentNet, steps: int) -> list[tuple[int, int, int, int]]:
    """Per layer: (rows of the hoisted input projection, in, 4H, recurrent products)."""
    cfg = net.config
    gates = 4 * cfg.hidden
    return [(steps * BATCH, net.rnn.input_size if k == 0 else cfg.hidden, gates, steps) for k in range(cfg.layers)]


def int8_products_graph(rows: int, inputs: int, gates: int, hidden: int, steps: int) -> bytes:
    """One layer's products as MatMulInteger nodes: the input projection and `steps` recurrent
    products (each of the same state: the arithmetic is what is timed, not the recurrence).
    Weights within 7 bits: CPUs without VNNI multiply uint8 by int8 in pairs summed in 16 bits
    (AVX2's VPMADDUBSW), which saturates for full-range weights; the speed is the same."""
    rng = np.random.default_rng(0)
    w_ih = helper.make_tensor("w_ih", TensorProto.INT8, [inputs, gates],
                              rng.integers(-64, 65, (inputs, gates), dtype=np.int8).tobytes(), raw=True)
    w_hh = helper.make_tensor("w_hh", TensorProto.INT8, [hidden, gates],
                              rng.integers(-64, 65, (hidden, gates), dtype=np.int8).tobytes(), raw=True)
    nodes = [helper.make_node("MatMulInteger", ["x", "w_ih"], ["xw"])]
    outputs = [helper.make_tensor_value_info("xw", TensorProto.INT32, [rows, gates])]
    for t in range(steps):
        nodes.append(helper.make_node("MatMulInteger", ["h", "w_hh"], [f"hw{t}"]))
        outputs.append(helper.make_tensor_value_info(f"hw{t}", TensorProto.INT32, [BATCH, gates]))
    graph = helper.make_graph(nodes, "int8_products", [
        helper.make_tensor_value_info("x", TensorProto.UINT8, [rows, inputs]),
        helper.make_tensor_value_info("h", TensorProto.UINT8, [BATCH, hidden])], outputs, [w_ih, w_hh])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_products(net: RecurrentNet, steps: int, threads: int) -> Callable[[], None]:
    """Run every layer's int8 products once (outputs bound to reused buffers)."""
    runs = []
    keep: list[object] = []
    hidden = net.config.hidden
    rng = np.random.default_rng(1)
    for rows, inputs, gates, count in products(net, steps):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(int8_products_graph(rows, inputs, gates, hidden, count), options,
                                       providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        for name, shape in (("x", (rows, inputs)), ("h", (BATCH, hidden))):
            value = ort.OrtValue.ortvalue_from_numpy(rng.integers(0, 256, shape, dtype=np.uint8))
            binding.bind_ortvalue_input(name, value)
            keep.append(value)
        for out in session.get_outputs():
            value = ort.OrtValue.ortvalue_from_numpy(np.zeros(out.shape, np.int32))
            binding.bind_ortvalue_output(out.name, value)
            keep.append(value)
        runs.append((session, binding))

    def run() -> None:
        for session, binding in runs:
            session.run_with_iobinding(binding)
    run.keep = keep  # type: ignore[attr-defined]  # the bound buffers live as long as the closure
    return run


def torch_products(net: RecurrentNet, steps: int) -> Callable[[], None]:
    """Run every layer's fp32 products once, into reused outputs."""
    work = []
    hidden = net.config.hidden
    for rows, inputs, gates, count in products(net, steps):
        x, w_ih = torch.randn(rows, inputs), torch.randn(inputs, gates)
        h, w_hh = torch.randn(BATCH, hidden), torch.randn(hidden, gates)
        work.append((x, w_ih, torch.empty(rows, gates), h, w_hh, torch.empty(BATCH, gates), count))

    def run() -> None:
        with torch.no_grad():
            for x, w_ih, xw, h, w_hh, hw, count in work:
                torch.mm(x, w_ih, out=xw)
                for _ in range(count):
                    torch.mm(h, w_hh, out=hw)
    return run


def interleaved_ms(contenders: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Median milliseconds per call of each contender, timed in turns."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()
        fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            calls = 3
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    """One markdown row per model and thread count."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["digits", "characters"])
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    print("| model | threads | PyTorch fp32 LSTM | PyTorch fp32 products | edgeinfer int8 | int8 products "
          "(the floor) | int8 against PyTorch | the floor against PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.models:
        model = edgeinfer.load(name)
        if model.spec.cell != "lstm":
            raise SystemExit(f"{name}: not an LSTM (the int8 floor here is that of DynamicQuantizeLSTM)")
        net = torch_net(model)
        steps = typical_steps(model)
        x = example_steps(model, steps, BATCH)
        lengths = np.full(BATCH, steps, np.int64)
        tx = torch.from_numpy(x)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m8 = edgeinfer.load(model.path, intra_op_threads=threads)

            def pytorch(net: RecurrentNet = net, tx: torch.Tensor = tx) -> None:
                with torch.no_grad():
                    net(tx)

            def shipped(m8: edgeinfer.Model = m8, x: np.ndarray = x, lengths: np.ndarray = lengths) -> None:
                m8.sequence_logits(x, lengths)

            ms = interleaved_ms({
                "pytorch": pytorch,
                "pytorch products": torch_products(net, steps),
                "edgeinfer": shipped,
                "int8 products": ort_products(net, steps, threads),
            }, a.rounds)
            cell = " | ".join(f"{ms[k]:.2f} ms" for k in ("pytorch", "pytorch products", "edgeinfer", "int8 products"))
            print(f"| {name} (T={steps}, batch {BATCH}) | {threads} | {cell} | "
                  f"{ms['pytorch'] / ms['edgeinfer']:.2f}x | {ms['pytorch'] / ms['int8 products']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
