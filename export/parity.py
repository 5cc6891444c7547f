"""Parity: PyTorch vs the sequence graph vs the step graph looped T times.

Graphs are run by output name (the spec's), never by position.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgeinfer.session import create_session
from edgeinfer.spec import ModelSpec
from train.models import RecurrentNet

FP32_TOLERANCE = 1e-5  # max abs error allowed between torch and either fp32 graph


def output_names(spec: ModelSpec, probabilities: bool = False) -> list[str]:
    """The outputs to ask a graph for: the logits, the next state tensors, and (`probabilities`,
    step graph) its softmax output when the spec names one."""
    extra = [spec.io.step_probabilities] if probabilities and spec.io.step_probabilities else []
    return [spec.io.output, *(s.output for s in spec.state), *extra]


def run_named(sess: ort.InferenceSession, names: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a session for the outputs `names`; returns {name: value}."""
    return dict(zip(names, sess.run(names, feeds), strict=True))


def _session(model: onnx.ModelProto, source: str) -> ort.InferenceSession:
    return create_session(model.SerializeToString(), source)


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
    seq_s, step_s = _session(seq, "sequence graph"), _session(step, "step graph")
    seq_names, step_names = output_names(spec), output_names(spec, probabilities=True)
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
            y_t, new_t = net(torch.from_numpy(x), [torch.from_numpy(state0[s.name]) for s in spec.state])
        want = dict(zip(seq_names, [y_t.numpy(), *(t.numpy() for t in new_t)], strict=True))
        got_seq = run_named(seq_s, seq_names, {spec.io.seq_input: x, **lengths, **state0})
        state = dict(state0)
        for t in range(steps):
            got_step = run_named(step_s, step_names, {spec.io.step_input: x[:, t], **state})
            state = {s.name: got_step[s.output] for s in spec.state}
        for name, a in want.items():  # the logits, then each state tensor
            scale = max(1.0, float(np.abs(a).max()))  # float32 rounding grows with the values
            worst = max(worst, float(np.abs(a - got_seq[name]).max()) / scale,
                        float(np.abs(a - got_step[name]).max()) / scale)
        if spec.io.step_probabilities:
            logits = want[spec.io.output]
            e = np.exp(logits - logits.max(1, keepdims=True))
            worst = max(worst, float(np.abs(got_step[spec.io.step_probabilities] - e / e.sum(1, keepdims=True)).max()))
    return worst


def padding_error(seq: onnx.ModelProto, spec: ModelSpec, vocab: int, seed: int = 0) -> float:
    """Max abs difference between rows of a right-padded batch and each row run alone."""
    rng = np.random.default_rng(seed)
    sess = _session(seq, "sequence graph")
    names = output_names(spec)
    lengths = np.array([9, 1, 5, 13, 2], np.int64)
    x = np.zeros((len(lengths), int(lengths.max())), np.int64)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(2, vocab, n)
    batch = run_named(sess, names, {spec.io.seq_input: x, spec.io.lengths: lengths,
                                    **spec.initial_state(len(lengths))})
    worst = 0.0
    for i, n in enumerate(lengths):
        alone = run_named(sess, names, {spec.io.seq_input: x[i : i + 1, :n], spec.io.lengths: lengths[i : i + 1],
                                        **spec.initial_state(1)})
        worst = max(worst, float(np.abs(batch[spec.io.output][i] - alone[spec.io.output][0]).max()),
                    *(float(np.abs(batch[s.output][:, i] - alone[s.output][:, 0]).max()) for s in spec.state))
    return worst
