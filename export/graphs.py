"""ONNX export of a trained RecurrentNet as a sequence graph and a step graph, in one file.

The file's main graph is the sequence graph `x (B, T, F), h[, c] (L, B, H) -> y (B, C),
h_next[, c_next]`. The step graph `x (B, F), h[, c] -> y, h_next[, c_next]` is an ONNX model
stored (base64) in the metadata next to the spec, so one file carries everything. Weights the
two graphs share are stored once: in the step graph they are external data whose location is
the file itself (SELF_LOCATION) at the byte range of the sequence graph's initializer.
"""
from __future__ import annotations

import onnx
import torch

from edgeinfer.spec import ModelSpec
from edgeinfer_export.streaming import SequenceModule
from edgeinfer_export.trace import trace_graph
from train.models import RecurrentNet


class SequenceGraph(SequenceModule):
    """x (B, T, F), state... -> y (B, C), next state... (a RecurrentNet is called as the streaming
    protocol's modules are: net(x, state) -> (y, new state))."""


class TokenSequenceGraph(SequenceGraph):
    """x (B, T) int64, lengths (B,) int64, state... -> y (B, C) after each row's last token, state there."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net(x, list(state), lengths, exact_state=True)
        return (y, *new)


class StepGraph(SequenceGraph):
    """x (B, F) or token ids (B,), state... -> y (B, C), next state..., p (B, C): one time step.

    p = softmax(y) is computed in the graph, so a stream's step needs no numpy work after it.
    """

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.net.step(x, list(state))
        return (y, *new, torch.softmax(y, dim=-1))


def export_graphs(net: RecurrentNet, spec: ModelSpec) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Export the sequence and the step graph of `net`, both with the names the spec gives."""
    if not spec.io.step_probabilities:
        raise ValueError("the spec names no step_probabilities output; expected GraphIO(step_probabilities=...)")
    c = net.config
    state = tuple(torch.from_numpy(s.initial_value(2)) for s in spec.state)
    if c.vocab:
        ids = torch.ones(2, 3, dtype=torch.int64)
        seq = trace_graph(TokenSequenceGraph(net), (ids, torch.tensor([3, 2]), *state), spec, step=False)
        step = trace_graph(StepGraph(net), (ids[:, 0], *state), spec, step=True)
    else:
        seq = trace_graph(SequenceGraph(net), (torch.zeros(2, 3, c.input_size), *state), spec, step=False)
        step = trace_graph(StepGraph(net), (torch.zeros(2, c.input_size), *state), spec, step=True)
    return seq, step
