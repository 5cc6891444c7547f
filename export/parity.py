"""Parity: PyTorch vs the sequence graph vs the step graph looped T times."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgeinfer.spec import ModelSpec
from train.models import RecurrentNet

FP32_TOLERANCE = 1e-5  # max abs error allowed between torch and either fp32 graph


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def parity_error(
    net: RecurrentNet, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec,
    steps: int, batches: tuple[int, ...] = (1, 7), seed: int = 0,
) -> float:
    """Max abs difference of outputs and final states, torch vs sequence graph vs stepped graph.

    Random inputs and a random (non-zero) initial state, so that the state wiring is checked too.
    """
    rng = np.random.default_rng(seed)
    seq_s, step_s = _session(seq), _session(step)
    names = [s.name for s in spec.state]
    worst = 0.0
    net.eval()
    for batch in batches:
        x = rng.standard_normal((batch, steps, spec.input_size)).astype(np.float32)
        state0 = {s.name: 0.5 * rng.standard_normal((s.layers, batch, s.hidden)).astype(np.float32)
                  for s in spec.state}
        with torch.no_grad():
            y_t, new_t = net(torch.from_numpy(x), [torch.from_numpy(state0[n]) for n in names])
        want = [y_t.numpy(), *(t.numpy() for t in new_t)]
        got_seq = seq_s.run(None, {spec.io.seq_input: x, **state0})
        state = dict(state0)
        for t in range(steps):
            got_step = step_s.run(None, {spec.io.step_input: x[:, t], **state})
            state = dict(zip(names, got_step[1:]))
        for a, b, c in zip(want, got_seq, got_step):
            worst = max(worst, float(np.abs(a - b).max()), float(np.abs(a - c).max()))
    return worst
