"""`edgeinfer doctor` and `edgeinfer bench`: this machine's onnxruntime, and a model's speed here."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import onnxruntime as ort

from edgeinfer.bench import batch_step_rates, chunk_step_us, sequence_rate, step_latency, typical_steps
from edgeinfer.cli.args import Parser, add_provider, describe, runs, whole
from edgeinfer.cli.render import describe_kind, safe
from edgeinfer.model import Model
from edgeinfer.session import available_providers

RUNTIME_PACKAGES = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino")


def configure_doctor(p: Parser) -> None:
    """`edgeinfer doctor`."""
    p.description = describe(doctor)
    p.add_argument("--provider", help="also run the built-in digits model there and compare it with the CPU")
    runs(p, doctor)


def doctor(provider: str | None = None) -> None:
    """Print the execution providers, installed onnxruntime packages, CPU threads and advice.

    With --provider, also runs the built-in digits model there and compares it with the CPU.
    """
    import importlib.metadata as md  # 20 ms to import: only doctor needs it

    packages = []
    for name in RUNTIME_PACKAGES:
        with contextlib.suppress(md.PackageNotFoundError):
            packages.append(f"{name} {md.version(name)}")
    threads = os.cpu_count() or 1
    print(f"onnxruntime   {ort.__version__} ({ort.get_device()})")
    print(f"packages      {', '.join(packages) or 'none found'}")
    print(f"providers     {', '.join(available_providers())}")
    print(f"cpu threads   {threads}")
    print("recommended   streams (batch 1 steps): 1 intra-op thread (the default for step sessions); "
          f"whole batches: {threads} threads (the default for sequence sessions)")
    plain = any(p.startswith("onnxruntime ") for p in packages)
    if plain and any(not p.startswith("onnxruntime ") for p in packages):
        print("warning: onnxruntime and a GPU/accelerator build are installed together, which breaks GPU "
              "use; keep one: pip uninstall -y onnxruntime && pip install --force-reinstall onnxruntime-gpu")
    if provider is not None:
        ref = Model("digits")
        m = Model("digits", provider)
        x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
        err = float(np.abs(m.predict(x) - ref.predict(x)).max())
        used = ", ".join(m.sequence_session.get_providers())
        how = " (int8 operators run dequantized: this provider has no kernels for them)" if m.dequantize else ""
        print(f"check         digits model on {used}{how}: max abs difference from the CPU {err:.2e}")


def configure_bench(p: Parser) -> None:
    """`edgeinfer bench [MODEL]`."""
    p.description = describe(bench)
    p.add_argument("model", nargs="?", default="digits", help="model file or built-in name (default digits)")
    add_provider(p)
    p.add_argument("--streams", type=whole(1), default=1024, help="streams in the StreamBatch test (default 1,024)")
    p.add_argument("--threads", type=whole(0),
                   help="intra-op threads for sequence and batch sessions (default: all cores)")
    runs(p, bench)


def bench(model: str = "digits", provider: str | None = None, streams: int = 1024, threads: int | None = None) -> None:
    """A quick look at a model's speed here: step latency, chunked feeding, StreamBatch, throughput.

    For the full comparison with PyTorch and bare onnxruntime, run benchmarks/run.py.
    """
    m = Model(model, provider)
    seq_model = Model(model, provider, intra_op_threads=threads) if threads is not None else m
    steps = typical_steps(m)
    print(safe(f"{m.source}: {describe_kind(m.spec)}, {m.spec.cell} x{m.spec.layers} {m.spec.hidden}, "
               f"{m.spec.precision}, on {', '.join(m.step_session.get_providers())}"))
    lat = step_latency(m)
    base = lat["session.run"].median_us
    print("\nstep latency, batch 1, 1 thread        median µs    p99 µs   vs session.run")
    for name, t in lat.items():
        print(f"  {name:<36} {t.median_us:9.1f} {t.p99_us:9.1f}   {t.median_us / base:6.2f}x")
    fed, floor = chunk_step_us(m, steps)
    print(f"\nchunked: Stream.feed of {steps} steps       {fed:9.2f} µs/step   "
          f"{fed / floor:.2f}x the full-sequence call ({floor:.2f} µs/step)")
    together, alone = batch_step_rates(seq_model, streams)
    print(f"StreamBatch of {streams} streams           {together:12,.0f} steps/s   "
          f"{together / alone:.1f}x stepping them one by one ({alone:,.0f} steps/s)")
    print(f"\nfull sequences of {steps} steps             sequences/s")
    for b in (1, 32, 256):
        print(f"  batch {b:<4}                            {sequence_rate(seq_model, b, steps):12,.1f}")
