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


def random_state(spec: ModelSpec, batch: int, rng: np.random.Generator, vocab: int) -> dict[str, np.ndarray]:
    """A random state that a stream can reach: token ids in `prev`, a positive step `count`,
    a `pool_max` in (-1, 1) and `pool_sum` within count times that; other tensors 0.5 * N(0, 1)."""
    count = rng.integers(1, 50, (1, batch, 1)).astype(np.float32)
    state = {}
    for s in spec.state:
        shape = (s.layers, batch, s.hidden)
        if s.name == "prev":
            state[s.name] = rng.integers(0, vocab, shape).astype(np.float32)
        elif s.name == "count":
            state[s.name] = count
        elif s.name == "pool_max":
            state[s.name] = rng.uniform(-1, 1, shape).astype(np.float32)
        elif s.name == "pool_sum":
            state[s.name] = (count * rng.uniform(-1, 1, shape)).astype(np.float32)
        else:
            state[s.name] = 0.5 * rng.standard_normal(shape).astype(np.float32)
    return state


def parity_error(
    net: RecurrentNet, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec,
    steps: int, batches: tuple[int, ...] = (1, 7), seed: int = 0,
) -> float:
    """Max abs difference of outputs and final states, torch vs sequence graph vs stepped graph.

    Each tensor's difference is divided by its largest magnitude when that exceeds 1 (large
    logits carry proportionally larger float32 rounding); states in [-1, 1] are compared as they
    are. Random inputs and a random (non-zero) initial state, so the state wiring is checked too.
    """
    rng = np.random.default_rng(seed)
    seq_s, step_s = _session(seq), _session(step)
    names = [s.name for s in spec.state]
    worst = 0.0
    net.eval()
    tokens = bool(net.config.vocab)
    for batch in batches:
        if tokens:
            x = rng.integers(0, net.config.vocab, (batch, steps)).astype(np.int64)
        else:
            x = rng.standard_normal((batch, steps, spec.input_size)).astype(np.float32)
        state0 = random_state(spec, batch, rng, net.config.vocab)
        lengths = {spec.io.lengths: np.full(batch, steps, np.int64)} if tokens else {}
        with torch.no_grad():
            y_t, new_t = net(torch.from_numpy(x), [torch.from_numpy(state0[n]) for n in names])
        want = [y_t.numpy(), *(t.numpy() for t in new_t)]
        got_seq = seq_s.run(None, {spec.io.seq_input: x, **lengths, **state0})
        state = dict(state0)
        for t in range(steps):
            got_step = step_s.run(None, {spec.io.step_input: x[:, t], **state})
            state = dict(zip(names, got_step[1:]))
        for a, b, c in zip(want, got_seq, got_step):  # logits, then state (the step graph adds p last)
            scale = max(1.0, float(np.abs(a).max()))  # float32 rounding grows with the values
            worst = max(worst, float(np.abs(a - b).max()) / scale, float(np.abs(a - c).max()) / scale)
        if spec.io.step_probabilities:
            e = np.exp(want[0] - want[0].max(1, keepdims=True))
            worst = max(worst, float(np.abs(got_step[-1] - e / e.sum(1, keepdims=True)).max()))
    return worst


def padding_error(seq: onnx.ModelProto, spec: ModelSpec, vocab: int, seed: int = 0) -> float:
    """Max abs difference between rows of a right-padded batch and each row run alone."""
    rng = np.random.default_rng(seed)
    sess = _session(seq)
    lengths = np.array([9, 1, 5, 13, 2], np.int64)
    x = np.zeros((len(lengths), int(lengths.max())), np.int64)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(2, vocab, n)
    batch = sess.run(None, {spec.io.seq_input: x, spec.io.lengths: lengths, **spec.initial_state(len(lengths))})
    worst = 0.0
    for i, n in enumerate(lengths):
        alone = sess.run(None, {spec.io.seq_input: x[i : i + 1, :n], spec.io.lengths: lengths[i : i + 1],
                                **spec.initial_state(1)})
        worst = max(worst, float(np.abs(batch[0][i] - alone[0][0]).max()),
                    *(float(np.abs(b[:, i] - a[:, 0]).max()) for b, a in zip(batch[1:], alone[1:])))
    return worst
