"""One export pipeline for every task.

checkpoint -> spec (from the checkpoint's own settings) -> the task's gate (its evaluation data)
-> sequence and step graphs -> fp32 parity -> NAME-fp32.onnx -> int8 graphs -> parity -> the
gate, int8 against fp32 -> NAME-int8.onnx. Each file is written atomically; a failure before the
fp32 file leaves nothing, an int8 failure leaves the fp32 file. Every failure is an ExportError
(or an OSError from the file system) whose message is one line.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch

from edgeinfer.atomic import write_atomic
from edgeinfer.errors import SpecError
from edgeinfer.spec import FORMAT_VERSION, GraphIO, ModelSpec, state_for
from edgeinfer_export.bundle import OPSET, bundle
from edgeinfer_export.errors import ExportError, one_line
from edgeinfer_export.quantize import METHOD, quantize
from edgeinfer_export.regime import choose_sequence_graph
from export.gates import GATES, Gate
from export.graphs import export_graphs
from export.parity import FP32_TOLERANCE, padding_error, parity_error
from train.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from train.data import data_dir
from train.models import NetConfig, RecurrentNet, build

PARITY_STEPS = {"digits": 28, "sentiment": 40, "characters": 50}  # steps of the random parity inputs
EXPORTER = "torch.onnx.export(dynamo=False)"


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint at `path`; ExportError (one line) for a directory, a missing file or anything unreadable."""
    if path.is_dir():
        raise ExportError(f"{path}: a directory; give the checkpoint file in it (e.g. {path / 'checkpoint.pt'})")
    if not path.is_file():
        raise ExportError(f"{path}: no such checkpoint; train first with `python -m train ...`")
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        raise ExportError(one_line(exc)) from None
    except Exception as exc:  # torch.load of a damaged file raises many types (a truncated one: OSError)
        raise ExportError(f"{path}: not a checkpoint ({one_line(exc)}); give a checkpoint.pt written by "
                          "`python -m train`") from None


def load_net(ckpt: Checkpoint, path: Path) -> RecurrentNet:
    """The checkpoint's model with its weights, in eval mode."""
    try:
        net = build(ckpt.net_config())
        net.load_state_dict(ckpt.state_dict)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise ExportError(f"{path}: the weights do not fit the model the checkpoint describes "
                          f"({one_line(exc)})") from None
    return net.eval()


def spec_dict(ckpt: Checkpoint, cfg: NetConfig, checkpoint_sha256: str) -> dict[str, Any]:
    """The fp32 model's spec as plain data, from the checkpoint's own settings (input spec,
    labels, model configuration) and its provenance."""
    provenance = {
        "checkpoint_sha256": checkpoint_sha256, "config": ckpt.config, "train_args": ckpt.train_args,
        "epochs": ckpt.epoch, "train_seconds": round(float(ckpt.train_seconds), 1),
        "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
        "exporter": EXPORTER, "exported": dt.date.today().isoformat(),
        **({"stack": ckpt.stack} if ckpt.stack is not None else {}),  # weights fitted by `train stack`
    }
    readout = cfg.readout
    return {
        "input": dict(ckpt.input), "output": {"kind": "classes", "per": "sequence", "names": list(ckpt.labels)},
        "cell": cfg.cell, "layers": cfg.layers, "hidden": cfg.hidden, "input_size": cfg.input_size,
        "state": [asdict(s) for s in state_for(cfg.cell, cfg.layers, cfg.hidden, cfg.readout)],
        "io": asdict(GraphIO(lengths="lengths" if cfg.vocab else "", step_probabilities="p")),
        "extras": {"readout": asdict(readout)} if readout.active else {},
        "precision": "fp32", "quantization": "none", "opset": OPSET,
        "metrics": {}, "provenance": provenance, "format_version": FORMAT_VERSION,
    }


def make_spec(raw: dict[str, Any], **changes: Any) -> ModelSpec:
    """Parse (and so validate) a spec dict, with `changes` applied, by the runtime's own code."""
    try:
        return ModelSpec.from_dict({**raw, **changes})
    except SpecError as exc:
        raise ExportError(f"the checkpoint does not describe a valid model: {one_line(exc)}") from None


def write_model(path: Path, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec) -> Path:
    """Bundle the graphs and the spec into one file, written atomically."""
    write_atomic(path, bundle(seq, step, spec).SerializeToString())
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return path


def ckpt_task(spec: ModelSpec) -> str:
    """The built-in task whose input kind this spec reads (the checkpoints' own name for it)."""
    return {"image": "digits", "words": "sentiment", "chars": "characters"}[spec.input.kind]


def fp32_parity(net: RecurrentNet, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec,
                tolerance: float) -> float:
    """torch vs both fp32 graphs (and, for token models, a padded batch vs each row alone)."""
    err = parity_error(net, seq, step, spec, PARITY_STEPS[ckpt_task(spec)])
    if net.config.vocab:
        err = max(err, padding_error(seq, spec, net.config.vocab))
    print(f"parity fp32: max abs error {err:.2e} (scaled where |value| > 1; limit {tolerance:.0e})", file=sys.stderr)
    if not err <= tolerance:
        raise ExportError(f"fp32 parity failed: max abs error {err:.2e} > {tolerance:.0e}; nothing written")
    return err


PADDING_TOLERANCE_INT8 = 1e-5  # a padded batch against each row alone, int8 graphs (per-row quantization)


def export_checkpoint(ckpt_path: Path, out: Path, name: str, data: str | None, int8: bool = True,
                      limit: int = 0, fp32_tolerance: float = FP32_TOLERANCE,
                      decomposed: bool | None = None) -> list[Path]:
    """Export a checkpoint to OUT/NAME-fp32.onnx (and NAME-int8.onnx); returns the paths written.

    `data` is the data directory (None: $EDGEINFER_DATA or ../shared/data); `limit` evaluates
    on the first N test examples (characters: validation characters) only. The int8 sequence
    graph is the fused operator's or its decomposition, whichever is faster at batch 256 here
    (`decomposed` True/False decides instead; export.regime).
    """
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: not a folder; --out names the folder the model files go to")
    ckpt = read_checkpoint(ckpt_path)
    if ckpt.task not in GATES:
        raise ExportError(f"{ckpt_path}: task {ckpt.task!r} cannot be exported; expected one of {', '.join(GATES)}")
    net = load_net(ckpt, ckpt_path)
    raw = spec_dict(ckpt, net.config, hashlib.sha256(ckpt_path.read_bytes()).hexdigest())
    spec = make_spec(raw)
    gate: Gate = GATES[ckpt.task](ckpt, spec, data_dir(data), limit)

    seq, step = export_graphs(net, spec)
    err = fp32_parity(net, seq, step, spec, fp32_tolerance)
    score32 = gate.score(seq, step, spec)
    if not math.isfinite(score32):
        raise ExportError(f"the fp32 model's score is {score32}; nothing written")
    print(gate.describe(score32), file=sys.stderr)
    metrics = {**gate.metrics(score32), "parity_max_abs_err": err}
    written = [write_model(out / f"{name}-fp32.onnx", seq, step, make_spec(raw, metrics=metrics))]
    if not int8:
        return written

    seq8, step8 = quantize(seq, spec.cell, spec.io.output), quantize(step, spec.cell, spec.io.output)
    choice = choose_sequence_graph(seq8, step8, spec, net.config.vocab, force=decomposed)
    seq8, step8 = choice.seq, choice.step
    err8 = parity_error(net, seq8, step8, spec, PARITY_STEPS[ckpt.task])
    if net.config.vocab and (choice.decomposed or spec.cell != "lstm"):  # DynamicQuantizeLSTM scales per batch
        padding8 = padding_error(seq8, spec, net.config.vocab)
        if not padding8 <= PADDING_TOLERANCE_INT8:
            raise ExportError(f"int8 sequence graph: a padded batch differs from each row alone by {padding8:.2e}; "
                              "int8 model not written")
    score8 = gate.score(seq8, step8, spec)
    print(f"{gate.describe(score8, score32)}, max abs error {err8:.2e}", file=sys.stderr)
    refusal = gate.refusal(score32, score8)
    if refusal is not None:
        raise ExportError(f"{refusal}; int8 model not written")
    metrics8 = {**gate.metrics(score8, score32), "parity_max_abs_err": err8}
    if choice.fused_seq_per_s:  # measured at export (export.regime)
        metrics8 |= {"seq_per_s_b256_fused": round(choice.fused_seq_per_s, 1),
                     "seq_per_s_b256_decomposed": round(choice.decomposed_seq_per_s, 1)}
    io8 = {**raw["io"], "batch_steps_from": choice.batch_steps_from}
    spec8 = make_spec(raw, precision="int8", quantization=f"{METHOD}; {choice.note}", metrics=metrics8, io=io8)
    written.append(write_model(out / f"{name}-int8.onnx", seq8, step8, spec8))
    return written
