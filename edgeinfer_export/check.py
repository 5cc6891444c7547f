"""Parity checks of an export: the user's forward vs the streaming net vs the sequence graph vs its steps.

Graphs are run by name (the spec's), never by position. Differences are divided by a tensor's
largest magnitude where that exceeds 1 (float32 rounding grows with the values).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edgeinfer.session import create_session
from edgeinfer.spec import ModelSpec
from edgeinfer_export.streaming import StreamingNet

FP32_TOLERANCE = 1e-5  # max abs error allowed between PyTorch and either fp32 graph
PARITY_STEPS = 23  # steps of the random parity inputs
PARITY_BATCHES = (1, 5)


def _session(model: onnx.ModelProto, source: str) -> ort.InferenceSession:
    return create_session(model.SerializeToString(), source)


def _scaled(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) / max(1.0, float(np.abs(a).max())) if a.size else 0.0


def _names(spec: ModelSpec, step: bool) -> list[str]:
    extra = [spec.io.step_probabilities] if step and spec.io.step_probabilities else []
    return [spec.io.output, *spec.state_outputs, *extra]


def _run(sess: ort.InferenceSession, names: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip(names, sess.run(names, feeds), strict=True))


def module_error(module: nn.Module, net: StreamingNet, spec: ModelSpec, x: np.ndarray, lengths: np.ndarray | None
                 ) -> float:
    """The user's forward (its own default state) against the streaming net from the initial state."""
    with torch.no_grad():
        out = module(torch.from_numpy(x))
        while isinstance(out, (tuple, list)):
            out = out[0]
        state = net.initial_state(len(x))
        ours, _ = net(torch.from_numpy(x), state, torch.from_numpy(lengths) if lengths is not None else None)
        dropped: Any = getattr(net, "dropped", None)
        if dropped is not None:  # a trailing softmax the file leaves to the runtimes
            ours = dropped(ours)
    if tuple(out.shape) != tuple(ours.shape):
        return float("inf")
    want, got = out.numpy(), ours.numpy()
    if lengths is not None and spec.per_step:  # steps past a row's length are padding: not compared
        mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
        want, got = want[mask], got[mask]
    return _scaled(want, got)


def _inputs(spec: ModelSpec, batch: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    if spec.token_vocab is not None:
        return rng.integers(0, spec.token_vocab.vocab_size, (batch, steps)).astype(np.int64)
    return rng.standard_normal((batch, steps, spec.input_size)).astype(np.float32)


def parity_error(net: StreamingNet, seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec,
                 example: np.ndarray, example_lengths: np.ndarray | None, seed: int = 0) -> float:
    """Max scaled difference of answers and final states: PyTorch vs the sequence graph vs the step
    graph run T times, on random inputs from a random state and on the example from the initial state."""
    rng = np.random.default_rng(seed)
    seq_s, step_s = _session(seq, "sequence graph"), _session(step, "step graph")
    cases: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    for batch in PARITY_BATCHES:
        x = _inputs(spec, batch, PARITY_STEPS, rng)
        state = {s.name: (0.5 * rng.standard_normal((s.layers, batch, s.hidden))).astype(np.float32)
                 for s in spec.state}
        cases.append((x, state))
    full = example_lengths is None or bool((example_lengths == example.shape[1]).all())
    if full:  # a padded example is checked row by row by padding_error and by module_error
        cases.append((example, spec.initial_state(len(example))))
    worst = 0.0
    for x, state0 in cases:
        batch, steps = x.shape[0], x.shape[1]
        lengths = {spec.io.lengths: np.full(batch, steps, np.int64)} if spec.io.lengths else {}
        with torch.no_grad():
            y_t, new_t = net(torch.from_numpy(x), [torch.from_numpy(state0[s.name]) for s in spec.state],
                             torch.from_numpy(lengths[spec.io.lengths]) if lengths else None)
        want = dict(zip(_names(spec, False), [y_t.numpy(), *(t.numpy() for t in new_t)], strict=True))
        got_seq = _run(seq_s, _names(spec, False), {spec.io.seq_input: x, **lengths, **state0})
        state = dict(state0)
        step_y = []
        for t in range(steps):
            got_step = _run(step_s, _names(spec, True), {spec.io.step_input: x[:, t], **state})
            state = {s.name: got_step[s.output] for s in spec.state}
            step_y.append(got_step[spec.io.output])
        last = want[spec.io.output][:, -1] if spec.per_step else want[spec.io.output]
        worst = max(worst, _scaled(want[spec.io.output], got_seq[spec.io.output]),
                    _scaled(last, got_step[spec.io.output]))
        if spec.per_step:
            worst = max(worst, _scaled(want[spec.io.output], np.stack(step_y, axis=1)))
        for s in spec.state:
            worst = max(worst, _scaled(want[s.output], got_seq[s.output]), _scaled(want[s.output], state[s.name]))
        if spec.io.step_probabilities:
            e = np.exp(last - last.max(-1, keepdims=True))
            worst = max(worst, float(np.abs(got_step[spec.io.step_probabilities] - e / e.sum(-1, keepdims=True)).max()))
    return worst


def padding_error(seq: onnx.ModelProto, spec: ModelSpec, seed: int = 0) -> float:
    """Token models: max difference between rows of a right-padded batch and each row alone."""
    assert spec.token_vocab is not None
    rng = np.random.default_rng(seed)
    sess = _session(seq, "sequence graph")
    names = _names(spec, False)
    lengths = np.array([9, 1, 5, 13, 2], np.int64)
    x = np.full((len(lengths), int(lengths.max())), spec.token_vocab.pad_id, np.int64)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(2, spec.token_vocab.vocab_size, n)
    batch = _run(sess, names, {spec.io.seq_input: x, spec.io.lengths: lengths, **spec.initial_state(len(lengths))})
    worst = 0.0
    for i, n in enumerate(lengths):
        alone = _run(sess, names, {spec.io.seq_input: x[i : i + 1, :n], spec.io.lengths: lengths[i : i + 1],
                                   **spec.initial_state(1)})
        y_batch, y_alone = batch[spec.io.output][i], alone[spec.io.output][0]
        if spec.per_step:
            y_batch, y_alone = y_batch[:n], y_alone[:n]
        worst = max(worst, _scaled(y_alone, y_batch),
                    *(_scaled(alone[s.output][:, 0], batch[s.output][:, i]) for s in spec.state))
    return worst


def graph_answers(seq: onnx.ModelProto, spec: ModelSpec, x: np.ndarray | list[np.ndarray],
                  lengths: np.ndarray | None, batch: int = 256) -> np.ndarray:
    """The sequence graph's answers (probabilities or values) for x (N, T[, F]), in batches; a list
    of sequences of different lengths is run in groups of one length, answers in input order."""
    if isinstance(x, list):
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(x):
            groups.setdefault(len(s), []).append(i)
        parts = {n: graph_answers(seq, spec, np.stack([x[i] for i in idx]), None, batch) for n, idx in groups.items()}
        first = next(iter(parts.values()))
        out = np.empty((len(x), *first.shape[1:]), first.dtype)
        for n, idx in groups.items():
            out[idx] = parts[n]
        return out
    sess = _session(seq, "sequence graph")
    answers: list[np.ndarray] = []
    for start in range(0, len(x), batch):
        xb = x[start : start + batch]
        feeds = {spec.io.seq_input: xb, **spec.initial_state(len(xb))}
        if spec.io.lengths:
            feeds[spec.io.lengths] = (lengths[start : start + batch] if lengths is not None
                                      else np.full(len(xb), xb.shape[1], np.int64))
        answers.append(spec.answers(sess.run([spec.io.output], feeds)[0]))
    return np.concatenate(answers)


def seq_step_error(seq: onnx.ModelProto, step: onnx.ModelProto, spec: ModelSpec, steps: int = 17) -> float:
    """Max difference of the answers' logits, the sequence graph against its steps (random inputs, 5 rows)."""
    rng = np.random.default_rng(1)
    x = _inputs(spec, 5, steps, rng)
    seq_s, step_s = _session(seq, "sequence graph"), _session(step, "step graph")
    feeds = {spec.io.seq_input: x, **spec.initial_state(5)}
    if spec.io.lengths:
        feeds[spec.io.lengths] = np.full(5, steps, np.int64)
    whole = seq_s.run([spec.io.output], feeds)[0]
    state = spec.initial_state(5)
    for t in range(steps):
        got = _run(step_s, _names(spec, False), {spec.io.step_input: x[:, t], **state})
        state = {s.name: got[s.output] for s in spec.state}
    last = whole[:, -1] if spec.per_step else whole
    return _scaled(last, got[spec.io.output])


__all__ = ["FP32_TOLERANCE", "graph_answers", "module_error", "padding_error", "parity_error", "seq_step_error"]
