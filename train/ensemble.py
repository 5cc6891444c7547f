"""An ensemble of short-text branches folded into one wider branch (`train ensemble`).

Models trained by `train sentiment --init C --short-branch H` from the same classifier C differ
only in their branch: a one-layer cell of H units and its head. K such branches, their logits
averaged, are exactly one cell of K * H units: each gate's input weights stacked, its recurrent
weights block-diagonal (a unit reads only the units of its own member; every gate of a GRU or
LSTM acts unit by unit), and one head whose weight is the members' heads side by side, each
divided by K, with the mean of their biases. The gate mixes the main and branch logits linearly,
so the folded model's logits are the mean of the members' logits to rounding, with no change to
the file format or to either runtime: the file simply holds a wider branch.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from train.checkpoint import Checkpoint, CheckpointError

BRANCH = ("short_rnn.weight_ih_l0", "short_rnn.weight_hh_l0", "short_rnn.bias_ih_l0", "short_rnn.bias_hh_l0",
          "short_head.weight", "short_head.bias")


def fold_branches(members: list[Checkpoint], paths: list[Path]) -> Checkpoint:
    """One checkpoint whose branch is the average of the members' branches, folded into one cell.

    CheckpointError (one line, naming the fix) when there are fewer than two members, a member
    has no branch, or the members differ anywhere but in their branch."""
    if len(members) < 2:
        raise CheckpointError("an ensemble needs two checkpoints or more: give --init A B [C ...]")
    first = members[0]
    for path, ckpt in zip(paths, members, strict=True):
        if ckpt.task != "sentiment" or not ckpt.config.get("short_hidden"):
            raise CheckpointError(f"{path} has no short-text branch: give checkpoints of "
                                  "`train sentiment --init C --short-branch H`")
        rest = {k: v for k, v in ckpt.config.items() if k != "short_hidden"}
        if rest != {k: v for k, v in first.config.items() if k != "short_hidden"} or ckpt.input != first.input \
                or ckpt.labels != first.labels or set(ckpt.state_dict) != set(first.state_dict):
            raise CheckpointError(f"{path} is not the same model as {paths[0]} outside its branch: give branches "
                                  "trained from the same --init classifier")
        for name, tensor in ckpt.state_dict.items():
            if name not in BRANCH and not torch.equal(tensor, first.state_dict[name]):
                raise CheckpointError(f"{path} and {paths[0]} differ in {name}: give branches trained from the "
                                      "same --init classifier (it stays frozen)")
    sizes = [int(c.config["short_hidden"]) for c in members]
    total = sum(sizes)
    gates = first.state_dict["short_rnn.weight_ih_l0"].shape[0] // sizes[0]  # GRU 3, LSTM 4, RNN 1
    state = {k: v.clone() for k, v in first.state_dict.items() if k not in BRANCH}
    w_ih, w_hh, b_ih, b_hh = [], [], [], []
    for g in range(gates):
        offset = 0
        for ckpt, size in zip(members, sizes, strict=True):
            rows = slice(g * size, (g + 1) * size)
            sd = ckpt.state_dict
            w_ih.append(sd["short_rnn.weight_ih_l0"][rows])
            block = torch.zeros(size, total, dtype=sd["short_rnn.weight_hh_l0"].dtype)
            block[:, offset:offset + size] = sd["short_rnn.weight_hh_l0"][rows]
            w_hh.append(block)
            b_ih.append(sd["short_rnn.bias_ih_l0"][rows])
            b_hh.append(sd["short_rnn.bias_hh_l0"][rows])
            offset += size
    state["short_rnn.weight_ih_l0"] = torch.cat(w_ih)  # (gates * total, E)
    state["short_rnn.weight_hh_l0"] = torch.cat(w_hh)  # (gates * total, total)
    state["short_rnn.bias_ih_l0"] = torch.cat(b_ih)
    state["short_rnn.bias_hh_l0"] = torch.cat(b_hh)
    state["short_head.weight"] = torch.cat([c.state_dict["short_head.weight"] for c in members], dim=1) / len(members)
    state["short_head.bias"] = torch.stack([c.state_dict["short_head.bias"] for c in members]).mean(0)
    train_args = {"ensemble": [str(p) for p in paths], "members": [c.train_args for c in members]}
    return replace(first, config={**first.config, "short_hidden": total}, state_dict=state, train_args=train_args,
                   train_seconds=sum(c.train_seconds for c in members), metrics={}, resume=None)
