"""Benchmarks: edgeinfer against bare onnxruntime and PyTorch eager, all measured in this run.

    .venv/bin/python benchmarks/run.py [--models digits sentiment characters motions] [--quick]

Needs the `train` extra (PyTorch, onnx). Prints one markdown table: medians (p99 for
latencies), with the ratio each target is about. The PyTorch baselines and the fp32 ONNX
files are built from each built-in model's own architecture (its spec's provenance config)
with random weights: speed does not depend on the weights' values. A model trained by
`edgeinfer-train` (motions) has no such config: it gets the step-latency rows against bare
onnxruntime runs of its own step graph.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgeinfer  # noqa: E402
from edgeinfer.atomic import write_atomic  # noqa: E402
from edgeinfer.bench import (  # noqa: E402
    batch_step_rates,
    chunk_step_us,
    example_steps,
    sequence_rate,
    step_latency,
    time_calls,
    typical_steps,
)
from edgeinfer.spec import ModelSpec  # noqa: E402
from edgeinfer_export.both import single_forms  # noqa: E402
from edgeinfer_export.bundle import bundle, unbundle  # noqa: E402
from edgeinfer_export.decompose import decompose  # noqa: E402
from edgeinfer_export.quantize import quantize  # noqa: E402
from edgeinfer_export.regime import decomposed_pair, throughput  # noqa: E402
from export.graphs import export_graphs  # noqa: E402
from train.models import RecurrentNet, build  # noqa: E402

CELLS = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}
rows: list[tuple[str, ...]] = []


def row(*cells: object) -> None:
    """Add a table row and echo it (long runs show progress)."""
    rows.append(tuple(str(c) for c in cells))
    print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)


def torch_net(model: edgeinfer.Model) -> RecurrentNet:
    """The model's architecture in PyTorch (random weights)."""
    torch.manual_seed(0)
    return build(model.spec.provenance["config"]).eval()


def torch_cells(net: RecurrentNet) -> list[torch.nn.Module]:
    """One RNNCell/LSTMCell/GRUCell per layer holding that layer's weights."""
    cells = []
    for k in range(net.config.layers):
        size = net.rnn.input_size if k == 0 else net.config.hidden
        kwargs = {"nonlinearity": "tanh"} if net.config.cell == "rnn" else {}
        cell = CELLS[net.config.cell](size, net.config.hidden, **kwargs)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(net.rnn, f"{name}_l{k}"))
        cells.append(cell.eval())
    return cells


def fp32_file(net: RecurrentNet, model: edgeinfer.Model, folder: Path) -> Path:
    """The same architecture exported in fp32 by the project's exporter."""
    seq, step = export_graphs(net, model.spec)
    path = folder / f"{model.path.stem}-fp32.onnx"
    spec = ModelSpec.from_dict({**model.spec.to_dict(), "precision": "fp32", "quantization": "none", "metrics": {}})
    write_atomic(path, bundle(seq, step, spec).SerializeToString())
    return path


def bench_steps(name: str, model: edgeinfer.Model, net: RecurrentNet) -> None:
    """a. step latency at batch 1, one thread; a2. chunked feeding."""
    torch.set_num_threads(1)
    lat = step_latency(model)
    x = torch.from_numpy(example_steps(model, 1)[:, 0])
    cells = torch_cells(net)
    state = net.initial_state(1)

    readout = net.config.readout.active

    @torch.no_grad()
    def cell_step() -> torch.Tensor:
        inp = net.inp(x)
        for k, cell in enumerate(cells):
            if net.config.cell == "lstm":
                h, _c = cell(inp, (state[0][k], state[1][k]))
            else:
                h = cell(inp, state[0][k])
            inp = h
        if readout:  # the model's own one-step readout (pooling, n-gram lookups) after the cells
            return torch.softmax(net.step_readout(x, inp, state[net.cell_states:])[0], -1)
        return torch.softmax(net.head(inp), -1)

    @torch.no_grad()
    def module_step() -> torch.Tensor:
        y, _ = net(x[:, None], state)
        return torch.softmax(y, -1)

    cell_t, module_t = time_calls(cell_step), time_calls(module_step)
    torch_best = min(cell_t.median_us, module_t.median_us)
    run = lat["session.run"].median_us
    s = lat["Stream.step"]
    for label, t in (("Stream.step", s), ("bare session.run", lat["session.run"]),
                     ("bare IOBinding", lat["IOBinding"]), ("PyTorch cell", cell_t),
                     ("PyTorch module, T=1", module_t)):
        row("a. step latency, batch 1, 1 thread", name, label, f"{t.median_us:.1f} µs (p99 {t.p99_us:.1f})",
            f"{t.median_us / run:.2f}x session.run", "")
    row("a. step latency, batch 1, 1 thread", name, "Stream.step vs bare session.run", "",
        f"{s.median_us / run:.2f}x", "≤ 1.15x")
    row("a. step latency, batch 1, 1 thread", name, "Stream.step vs bare IOBinding", "",
        f"{s.median_us / lat['IOBinding'].median_us:.2f}x", "≤ 1.1x")
    row("a. step latency, batch 1, 1 thread", name, "Stream.step vs fastest PyTorch step", "",
        f"{torch_best / s.median_us:.1f}x faster", "≥ 3x")
    steps = typical_steps(model)
    fed, floor = chunk_step_us(model, min(steps, 28))
    row("a2. chunked streaming", name, f"Stream.feed of {min(steps, 28)} steps, per step", f"{fed:.2f} µs",
        f"{fed / floor:.2f}x one full-sequence call ({floor:.2f} µs/step)", "≤ 1.5x")


def bench_own_steps(name: str, model: edgeinfer.Model) -> None:
    """a. step latency at batch 1, one thread, of a model with no PyTorch recipe here: against bare
    onnxruntime runs of its step graph (raw sensor values in: Stream.step normalises them)."""
    torch.set_num_threads(1)
    lat = step_latency(model)
    run, floor = lat["session.run"].median_us, lat["IOBinding"].median_us
    for label, t in (("Stream.step", lat["Stream.step"]), ("bare session.run", lat["session.run"]),
                     ("bare IOBinding", lat["IOBinding"])):
        row("a. step latency, batch 1, 1 thread", name, label, f"{t.median_us:.1f} µs (p99 {t.p99_us:.1f})",
            f"{t.median_us / run:.2f}x session.run", "")
    row("a. step latency, batch 1, 1 thread", name, "Stream.step vs bare session.run", "",
        f"{lat['Stream.step'].median_us / run:.2f}x", "≤ 1.2x")
    row("a. step latency, batch 1, 1 thread", name, "Stream.step vs bare IOBinding (the floor)", "",
        f"{lat['Stream.step'].median_us / floor:.2f}x", "")


def batch_against_sequence(model: edgeinfer.Model, streams: int = 256, repeats: int = 5) -> tuple[float, float]:
    """Stream-steps/s of a StreamBatch of `streams` streams and of the same model's sequence graph
    over a typical sequence at that batch, in `repeats` interleaved repeats (medians)."""
    steps = typical_steps(model)
    x1 = example_steps(model, 1, batch=streams)[:, 0]
    batch = model.stream_batch()
    handles = [batch.open() for _ in range(streams)]
    xs = example_steps(model, steps, streams)
    lengths = np.full(streams, steps, np.int64)
    together, inseq = [], []
    for _ in range(repeats):
        t = time_calls(lambda: batch.step(handles, x1), calls=200, warmup=5, budget_s=2.0, min_calls=10)
        together.append(streams / (t.median_us * 1e-6))
        t = time_calls(lambda: model.sequence_logits(xs, lengths), calls=50, warmup=1, budget_s=2.0, min_calls=3)
        inseq.append(streams * steps / (t.median_us * 1e-6))
    return statistics.median(together), statistics.median(inseq)


def bench_batch(name: str, model: edgeinfer.Model) -> None:
    """b. StreamBatch of 1,024 streams (every core) against stepping them one by one; b2. a
    StreamBatch of 256 streams against the same model's in-sequence steps at batch 256 (five
    interleaved repeats); b3. the
    step graph's fused operator against its decomposition at 256 streams (raw sessions)."""
    model_all = edgeinfer.load(model.path, intra_op_threads=0)
    together, alone = batch_step_rates(model_all, 1024)
    row("b. StreamBatch, 1,024 streams", name, "stream-steps/s", f"{together:,.0f}",
        f"{together / alone:.1f}x one by one ({alone:,.0f}/s)", "≥ 50x")
    batch256, inseq = batch_against_sequence(model_all)
    row("b2. StreamBatch vs in-sequence, batch 256", name, "stream-steps/s", f"{batch256:,.0f}",
        f"{batch256 / inseq:.2f}x in-sequence steps ({inseq:,.0f}/s)", "≥ 0.9x")
    _, step = unbundle(onnx.load(model.path))
    if not any(n.op_type in ("GRU", "RNN", "LSTM", "DynamicQuantizeLSTM") for n in step.graph.node):
        return
    decomposed_step = decompose(step)
    feeds = {model.spec.io.step_input: example_steps(model, 1, 256)[:, 0], **model.spec.initial_state(256)}
    rates = throughput({"fused": step, "decomposed": decomposed_step}, feeds, threads=0, repeats=200)
    row("b3. step graph at 256 streams", name, "fused vs decomposed, stream-steps/s",
        f"fused {rates['fused']:,.0f}", f"decomposed {rates['decomposed']:,.0f} "
        f"({rates['decomposed'] / rates['fused']:.2f}x)", "")


def other_forms(model: edgeinfer.Model, folder: Path) -> tuple[str, dict[str, Path]]:
    """The shipped int8 file's sequence-graph form, and the file with each other form, for the
    table to show that the file holds the faster one at each batch: a file holding both forms
    against each alone; a fused one against its decomposition; a decomposed one against the
    architecture's own int8 export (its fp32 cell weights are gone)."""
    seq, step = unbundle(onnx.load(model.path))
    forms = single_forms(seq)
    if forms is not None:
        shipped, others = "both forms", {"decomposed": forms[0], "fused": forms[1]}
    elif any(n.op_type == "Scan" for n in seq.graph.node):
        net = torch_net(model)
        seq32, step32 = export_graphs(net, model.spec)
        shipped, others = "decomposed", {"fused": quantize(seq32, model.spec.cell)}
        step = quantize(step32, model.spec.cell)
    else:
        shipped, others = "fused", {"decomposed": decomposed_pair(seq, step)[0]}
    paths = {}
    for form, graph in others.items():
        paths[form] = folder / f"{model.path.stem}-{form}.onnx"
        write_atomic(paths[form], bundle(graph, step, model.spec).SerializeToString())
    return shipped, paths


def pytorch_int8(net: RecurrentNet) -> torch.nn.Module:
    """PyTorch's own int8: `quantize_dynamic` of the recurrent layers and the Linear layers."""
    return torch.ao.quantization.quantize_dynamic(net, {torch.nn.LSTM, torch.nn.GRU, torch.nn.Linear},
                                                  dtype=torch.qint8)


def bench_sequences(name: str, model: edgeinfer.Model, net: RecurrentNet, fp32: Path, shipped: str,
                    others: dict[str, Path], quick: bool) -> None:
    """c. full-sequence throughput: the int8 file (and its sequence graph in each other form) and
    fp32 ONNX against PyTorch eager fp32 and PyTorch's quantize_dynamic."""
    steps = typical_steps(model)
    net8 = pytorch_int8(net)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        m8 = edgeinfer.load(model.path, intra_op_threads=threads)
        o8 = {form: edgeinfer.load(path, intra_op_threads=threads) for form, path in others.items()}
        m32 = edgeinfer.load(fp32, intra_op_threads=threads)
        for batch in ((1, 256) if quick else (1, 32, 256)):
            x = torch.from_numpy(example_steps(model, steps, batch))
            with torch.no_grad():
                t = time_calls(lambda x=x: net(x), calls=200, warmup=2, min_calls=5)
                q = time_calls(lambda x=x: net8(x), calls=200, warmup=2, min_calls=5)
            pt, pq = batch / (t.median_us * 1e-6), batch / (q.median_us * 1e-6)
            r8, r32 = sequence_rate(m8, batch, steps), sequence_rate(m32, batch, steps)
            alternatives = "".join(f" / int8 {form} {sequence_rate(m, batch, steps):,.0f}" for form, m in o8.items())
            row("c. sequences/s", name, f"T={steps}, batch {batch}, {threads} thread(s)",
                f"int8 {shipped} {r8:,.0f}{alternatives} / fp32 {r32:,.0f}",
                f"PyTorch fp32 {pt:,.0f}, quantize_dynamic {pq:,.0f}: int8 {r8 / pt:.2f}x "
                f"({r8 / pq:.2f}x PyTorch int8), fp32 {r32 / pt:.2f}x", "int8 ≥ 2x PyTorch fp32 at batch 256")


WRAPPER = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def peaks(cmds: dict[str, list[str]], runs: int = 5) -> dict[str, tuple[float, float]]:
    """Median wall seconds and peak RSS (MB) of a fresh process per command, the commands run in
    turns (a slow spell of a shared machine falls on all alike), each started from a small
    wrapper process (a child forked from this big one would report this one's memory)."""
    walls: dict[str, list[float]] = {label: [] for label in cmds}
    rss: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(runs):
        for label, cmd in cmds.items():
            out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT)
            wall, kb, code = out.stdout.split()
            if code != "0":
                raise RuntimeError(f"{cmd} failed")
            walls[label].append(float(wall))
            rss[label].append(int(kb) / 1024)
    return {label: (statistics.median(walls[label]), max(rss[label])) for label in cmds}


TORCH_SCRIPT = """
import sys, numpy as np, torch
from PIL import Image
sys.path.insert(0, '.')
from train.models import NetConfig, build
net = build(NetConfig('lstm', 28, 128, 1, 10)).eval()
img = np.asarray(Image.open(sys.argv[1]).convert('L'), np.float32) / 255.0
with torch.no_grad():
    print(int(net(torch.from_numpy((img - 0.1307) / 0.3081)[None])[0].argmax(1)))
"""
ORT_SCRIPT = """
import sys, numpy as np, onnxruntime as ort
from PIL import Image
s = ort.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider'])
img = np.asarray(Image.open(sys.argv[1]).convert('L'), np.float32) / 255.0
x = ((img - 0.1307) / 0.3081)[None]
z = np.zeros((1, 1, 128), np.float32)
print(int(s.run(None, {'x': x, 'h': z, 'c': z})[0].argmax()))
"""


def bench_cold_start() -> None:
    """d. a fresh `edgeinfer classify image` process against bare onnxruntime and PyTorch scripts.

    The package's bytecode is compiled first (an environment with PYTHONDONTWRITEBYTECODE would
    otherwise compile edgeinfer's sources at every start, which no installed package does)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "edgeinfer")], check=True,
                   capture_output=True)
    image = str(sorted((ROOT / "samples").glob("*.pgm"))[0])
    exe = str(Path(sys.executable).with_name("edgeinfer"))
    measured = peaks({"edgeinfer classify image": [exe, "classify", "image", image],
                      "bare onnxruntime script": [sys.executable, "-c", ORT_SCRIPT, image,
                                                  str(edgeinfer.model.builtin_models()["digits"])],
                      "PyTorch script": [sys.executable, "-c", TORCH_SCRIPT, image]}, runs=11)
    for label, (wall, rss) in measured.items():
        target = "≤ 1.3x the bare script, ≤ 80 MB" if label.startswith("edgeinfer") else ""
        row("d. cold start", "digits", label, f"{wall:.2f} s", f"{rss:.0f} MB peak RSS", target)
    ratio = measured["edgeinfer classify image"][0] / measured["bare onnxruntime script"][0]
    row("d. cold start", "digits", "edgeinfer vs bare script", "", f"{ratio:.2f}x", "≤ 1.3x")


def bench_js(names: list[str]) -> None:
    """f. the JavaScript runtime's step in Node, 1 thread, on each backend (web/bench/step.mjs):
    onnxruntime-node (native), onnxruntime-web's wasm with int8 operators dequantized at load (its
    default) and as they are; against Python's Stream.step measured just before. Chromium's figures
    come from web/bench/browser.mjs (docs/web.md)."""
    node = shutil.which("node")
    web = ROOT / "web"
    if node is None or not (web / "node_modules").is_dir():
        print("f. skipped: needs node and web/node_modules (cd web && npm ci)", file=sys.stderr)
        return
    files = [str(edgeinfer.model.builtin_models()[n]) for n in names]
    python = {n: step_latency(edgeinfer.load(n))["Stream.step"].median_us for n in names}
    for backend, extra in (("node", []), ("wasm", []), ("wasm", ["--no-dequantize"])):
        run = subprocess.run([node, "bench/step.mjs", "--json", *extra, *files], cwd=web, capture_output=True,
                             text=True, env={**os.environ, "EDGEINFER_WEB_BACKEND": backend}, timeout=1200)
        if run.returncode != 0:
            print(f"f. {backend}: {run.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        out = json.loads(run.stdout)
        if out["backend"] != backend:
            continue  # onnxruntime-node is not installed
        label = {"node": "onnxruntime-node", "wasm": "wasm, int8 dequantized"}[backend] if not extra \
            else "wasm, int8 as it is"
        for r in out["results"]:
            target = "≤ 1.3x Python (characters)" if backend == "node" else ""
            py = python[r["model"]]
            row("f. JavaScript step, Node, 1 thread", r["model"], f"Stream.step, {label}",
                f"{r['median_us']:.1f} µs (p99 {r['p99_us']:.0f})",
                f"{r['median_us'] / py:.2f}x Python's Stream.step ({py:.1f} µs)", target)


def main() -> None:
    """Run every section and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["digits", "sentiment", "characters", "motions"])
    p.add_argument("--quick", action="store_true", help="fewer batch sizes in section c")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # every model's single-thread step latencies first (measured after the multi-threaded
        # sections, a model's steps read up to 2x slower than alone)
        every = {name: edgeinfer.load(name) for name in a.models}
        models = {name: m for name, m in every.items() if "config" in m.spec.provenance}  # built by train/
        nets = {name: torch_net(model) for name, model in models.items()}
        for name, model in every.items():
            print(f"{name}: steps ...", file=sys.stderr, flush=True)
            if name in nets:
                bench_steps(name, model, nets[name])
            else:
                bench_own_steps(name, model)
        for name, model in models.items():
            print(f"{name} ...", file=sys.stderr, flush=True)
            net = nets[name]
            fp32 = fp32_file(net, model, Path(tmp))
            shipped, others = other_forms(model, Path(tmp))
            bench_batch(name, model)
            bench_sequences(name, model, net, fp32, shipped, others, a.quick)
            size8, size32 = model.path.stat().st_size, fp32.stat().st_size
            row("e. file size", name, "int8 / fp32 bytes", f"{size8:,} / {size32:,}", f"{size8 / size32:.0%}",
                "≤ 30%")
        bench_cold_start()
        bench_js([n for n in ("digits", "sentiment", "characters") if n in a.models])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import onnxruntime
    print(f"Machine: {cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
          f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, numpy {np.__version__}\n")
    print("| section | model | what | edgeinfer | compared | target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
