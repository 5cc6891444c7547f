"""Command line: `python -m export runs/digits-lstm/checkpoint.pt --out models --name digits-lstm`.

Writes NAME-fp32.onnx and NAME-int8.onnx (sequence graph + step graph + spec in one file each),
after a parity check (fp32 max abs error <= 1e-5; for token models also a padded batch against
each row alone) and an int8 gate: accuracy on the whole test set (digits, sentiment), or
validation loss through the step graph (characters).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgeinfer.spec import INPUT_KINDS, GraphIO, ModelSpec, TextInput, state_for
from export.graphs import OPSET, bundle, export_graphs, write_atomic
from export.parity import FP32_TOLERANCE, padding_error, parity_error
from export.quantize import METHOD, quantize
from train.data import DataMissingError, data_dir
from train.loop import Data, load_checkpoint
from train.models import build
from train.tasks import char_corpus, digits_data, sentiment_test_data

# int8 test accuracy may be at most this many points under fp32
MAX_INT8_DROP_POINTS = {"digits": 0.3, "sentiment": 0.5}
MAX_INT8_LOSS_RISE = 0.03  # characters: int8 validation loss at most this many nats over fp32
PARITY_STEPS = {"digits": 28, "sentiment": 40, "characters": 50}


class ExportError(RuntimeError):
    """An export gate failed; nothing was written for the failing model."""


def onnx_accuracy(model: onnx.ModelProto, spec: ModelSpec, data: Data, batch: int = 250) -> float:
    """Accuracy of the sequence graph on a data set, run by onnxruntime on the CPU."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {"x": spec.io.seq_input, "lengths": spec.io.lengths}
    correct = 0
    for idx in data.batches(batch, None):
        inputs, y = data.batch(idx)
        feeds = {names[k]: v.numpy() for k, v in inputs.items()}
        logits = sess.run([spec.io.output], {**feeds, **spec.initial_state(len(idx))})[0]
        correct += int((logits.argmax(1) == y.numpy()).sum())
    return correct / len(data)


def onnx_char_loss(step: onnx.ModelProto, spec: ModelSpec, ids: np.ndarray, rows: int = 16) -> float:
    """Validation loss (nats per character) through the step graph: `rows` contiguous slices
    stepped side by side, each from the initial state."""
    sess = ort.InferenceSession(step.SerializeToString(), providers=["CPUExecutionProvider"])
    n = len(ids) // rows
    grid = ids[: n * rows].reshape(rows, n)
    state = spec.initial_state(rows)
    names = [s.name for s in spec.state]
    total = 0.0
    for t in range(n - 1):
        out = sess.run(None, {spec.io.step_input: grid[:, t], **state})
        state = dict(zip(names, out[1:]))
        logits = out[0].astype(np.float64)
        top = logits.max(1, keepdims=True)
        logz = top[:, 0] + np.log(np.exp(logits - top).sum(1))
        total += float((logz - logits[np.arange(rows), grid[:, t + 1]]).sum())
    return total / (rows * (n - 1))


def export_checkpoint(ckpt_path: Path, out: Path, name: str, data: str | None,
                      int8: bool = True, limit: int = 0) -> list[Path]:
    """Export a checkpoint to fp32 (and int8) model files; returns the paths written."""
    ckpt = load_checkpoint(ckpt_path)
    task = ckpt.get("task")
    if task not in PARITY_STEPS:
        raise ExportError(f"{ckpt_path}: task {task!r} cannot be exported; expected one of "
                          f"{', '.join(PARITY_STEPS)}")
    net = build(ckpt["config"])
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    cfg = net.config
    raw_input = dict(ckpt["input"])
    if "vocab" in raw_input:
        raw_input["vocab"] = tuple(raw_input["vocab"])
    spec = ModelSpec(
        task=task, labels=tuple(ckpt["labels"]), input=INPUT_KINDS[raw_input["kind"]](**raw_input),
        cell=cfg.cell, layers=cfg.layers, hidden=cfg.hidden, input_size=cfg.input_size,
        state=state_for(cfg.cell, cfg.layers, cfg.hidden, cfg.readout), readout=cfg.readout, opset=OPSET,
        io=GraphIO(lengths="lengths" if cfg.vocab else "", step_probabilities="p"),
        provenance={
            "checkpoint_sha256": hashlib.sha256(ckpt_path.read_bytes()).hexdigest(),
            "config": ckpt["config"], "train_args": ckpt["train_args"], "epochs": ckpt["epoch"],
            "train_seconds": round(float(ckpt["train_seconds"]), 1),
            "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
            "exporter": "torch.onnx.export(dynamo=False)", "exported": dt.date.today().isoformat(),
            **({"stack": ckpt["stack"]} if "stack" in ckpt else {}),  # weights fitted by `train stack`
        },
    )
    seq, step = export_graphs(net, spec)
    steps = PARITY_STEPS[task]
    err = parity_error(net, seq, step, spec, steps)
    if cfg.vocab:
        err = max(err, padding_error(seq, spec, cfg.vocab))
    print(f"parity fp32: max abs error {err:.2e} (scaled where |value| > 1; limit {FP32_TOLERANCE:.0e})",
          file=sys.stderr)
    if not err <= FP32_TOLERANCE:
        raise ExportError(f"fp32 parity failed: max abs error {err:.2e} > {FP32_TOLERANCE:.0e}; nothing written")

    if task == "characters":
        return _export_characters(ckpt, net, spec, seq, step, err, out, name, int8, limit)
    root = data_dir(data)
    test = (sentiment_test_data(root, spec.input, limit) if isinstance(spec.input, TextInput)
            else digits_data(root, "test", limit))
    acc32 = onnx_accuracy(seq, spec, test)
    count_key = "test_reviews" if task == "sentiment" else "test_images"
    print(f"fp32 test accuracy {acc32:.4%} on {len(test)} examples", file=sys.stderr)
    spec32 = replace(spec, metrics={"test_accuracy": acc32, count_key: len(test),
                                    "parity_max_abs_err": err})
    written = [out / f"{name}-fp32.onnx"]
    write_atomic(bundle(seq, step, spec32).SerializeToString(), written[0])
    if not int8:
        return written

    seq8, step8 = quantize(seq, cfg.cell), quantize(step, cfg.cell)
    err8 = parity_error(net, seq8, step8, spec, steps)
    acc8 = onnx_accuracy(seq8, spec, test)
    drop = (acc32 - acc8) * 100
    print(f"int8 test accuracy {acc8:.4%} ({drop:+.2f} points under fp32), max abs error {err8:.2e}",
          file=sys.stderr)
    if drop > MAX_INT8_DROP_POINTS[task]:
        raise ExportError(f"int8 accuracy {acc8:.4%} is {drop:.2f} points under fp32 "
                          f"(limit {MAX_INT8_DROP_POINTS[task]}); int8 model not written")
    spec8 = replace(spec, precision="int8", quantization=METHOD, metrics={
        "test_accuracy": acc8, count_key: len(test), "fp32_test_accuracy": acc32,
        "parity_max_abs_err": err8})
    written.append(out / f"{name}-int8.onnx")
    write_atomic(bundle(seq8, step8, spec8).SerializeToString(), written[1])
    return written


def _export_characters(ckpt: dict, net: torch.nn.Module, spec: ModelSpec, seq: onnx.ModelProto,
                       step: onnx.ModelProto, err: float, out: Path, name: str, int8: bool,
                       limit: int) -> list[Path]:
    """Characters: gate on validation loss (the last 10% of the training text) through ONNX."""
    _, _, val_ids = char_corpus(Path(ckpt["text"]))
    if limit:
        val_ids = val_ids[:limit]
    loss32 = onnx_char_loss(step, spec, val_ids)
    print(f"fp32 validation loss {loss32:.4f} nats/char on {len(val_ids):,} characters", file=sys.stderr)
    metrics = {"val_loss": loss32, "val_chars": len(val_ids), "parity_max_abs_err": err}
    written = [out / f"{name}-fp32.onnx"]
    write_atomic(bundle(seq, step, replace(spec, metrics=metrics)).SerializeToString(), written[0])
    if not int8:
        return written
    seq8, step8 = quantize(seq, spec.cell), quantize(step, spec.cell)
    loss8 = onnx_char_loss(step8, spec, val_ids)
    rise = loss8 - loss32
    print(f"int8 validation loss {loss8:.4f} nats/char ({rise:+.4f} over fp32)", file=sys.stderr)
    if rise > MAX_INT8_LOSS_RISE:
        raise ExportError(f"int8 validation loss {loss8:.4f} is {rise:.4f} nats over fp32 "
                          f"(limit {MAX_INT8_LOSS_RISE}); int8 model not written")
    metrics8 = {"val_loss": loss8, "val_chars": len(val_ids), "fp32_val_loss": loss32,
                "parity_max_abs_err": parity_error(net, seq8, step8, spec, PARITY_STEPS["characters"])}
    written.append(out / f"{name}-int8.onnx")
    write_atomic(bundle(seq8, step8, replace(spec, precision="int8", quantization=METHOD, metrics=metrics8))
                 .SerializeToString(), written[1])
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and export; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--name", required=True, help="file stem, e.g. digits-lstm")
    p.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
    p.add_argument("--no-int8", action="store_true", help="write the fp32 model only")
    p.add_argument("--limit", type=int, default=0, help="evaluate on the first N test images only")
    a = p.parse_args(argv)
    try:
        for path in export_checkpoint(a.checkpoint, a.out, a.name, a.data, not a.no_int8, a.limit):
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    except (ExportError, DataMissingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
