"""Per-regime graphs (issue 18): a decomposed int8 sequence graph for batch throughput.

onnxruntime has no int8 GRU or RNN kernel. Over a whole batch of sequences the fastest route is
to take the input projection of all B*T steps out of the loop, as int8 matrix products, and to
loop only over what must be sequential: a `Scan` whose body does the int8 recurrent products and
the fp32 gate arithmetic. At batch 1 the fused operator wins (a Scan body pays ~0.4 us per node
per step), so the step graph keeps it: the two graphs of a file each take the form that suits
their regime. Whether the sequence graph is decomposed is decided per model by measurement at
export (`export.regime`).

`decompose(seq)` rewrites every recurrent node of a sequence graph (GRU, tanh RNN, LSTM or
DynamicQuantizeLSTM; one direction) into:

    x (T, B, K) -> uint8 -> per gate MatMulIntegerToFloat(W_g^T int8) + biases   # G tensors (T, B, H)
    Scan over T:  h (B, H) -> uint8 (fixed scale 1/127) -> per gate MatMulIntegerToFloat(R_g^T)
                  gates in fp32 (the operator's own equations); rows past their length keep their
                  state and give Y = 0, as the operator does (sequence_lens)

One product per gate, so no Split copies the gate tensors inside the loop. How x becomes uint8:
- an embedding already stored as uint8 (quantize_dynamic's Gather + DequantizeLinear) is used as
  it is, with its own scale and zero point: exact, no rounding added;
- the output of a decomposed layer below, in [-1, 1]: the fixed scale 1/127, like h;
- anything else (image rows): per row, symmetric, scale max|row| / 127.
No activation scale is ever taken over the batch, so a row's result does not depend on the rows
beside it (a padded batch equals each row alone). Weights: an LSTM's are the int8 tensors
quantize_dynamic wrote (per-tensor scale); fp32 GRU/RNN/LSTM weights are quantized here per
output column (symmetric int8), and `dequantize_step` makes the step graph's fused operator read
the SAME int8 tensors as q * scale (Cast and Mul, folded at session creation), so both graphs
share one copy of the weights and differ only in how activations are rounded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS_DOMAIN = "com.microsoft"
CELLS = ("GRU", "RNN", "LSTM", "DynamicQuantizeLSTM")
GATES = {"GRU": 3, "RNN": 1, "LSTM": 4, "DynamicQuantizeLSTM": 4}
EPS = 1e-12  # floor of a row's scale: an all-zero row quantizes to zeros
# ops that move values without computing new ones (data is their first input)
MOVES = frozenset({"Transpose", "Gather", "Squeeze", "Unsqueeze", "Reshape", "Identity", "Slice", "Flatten"})


@dataclass(frozen=True)
class GateWeight:
    """One gate's int8 weight for `x @ q` (K, H) and its scale (H,) or (1,): names of tensors."""

    q: str
    scale: str


@dataclass(frozen=True)
class QInput:
    """A uint8 activation for MatMulIntegerToFloat: values = (q - zero) * scale [* row_scale]."""

    q: str
    scale: str
    zero: str
    row_scale: str = ""  # (..., 1) per-row scale applied after the product, or "" (none)


class _Builder:
    """Nodes and initializers added to one graph, with unique names."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.count = prefix, 0
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}/{what}_{self.count}"

    def const(self, what: str, value: np.ndarray | np.generic) -> str:
        name = self.name(what)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], what: str, outputs: list[str] | None = None,
           domain: str = "", **attrs: Any) -> str:
        out = outputs or [self.name(what)]
        self.nodes.append(helper.make_node(op_type, inputs, out, name=self.name(op_type), domain=domain or None,
                                           **attrs))
        return out[0]

    def bounded(self, x: str) -> QInput:
        """x in [-1, 1] as uint8 with the fixed scale 1/127 and zero point 128 (outside: clipped)."""
        shifted = self.op("Add", [self.op("Mul", [x, self.const("s127", np.float32(127))], "xs"),
                                  self.const("c128", np.float32(128))], "xu")
        clipped = self.op("Clip", [self.op("Round", [shifted], "xr"), self.const("lo", np.float32(1)),
                                   self.const("hi", np.float32(255))], "xc")
        return QInput(self.op("Cast", [clipped], "xq", to=TensorProto.UINT8),
                      self.const("inv127", np.float32(1 / 127)), self.const("zp", np.uint8(128)))

    def per_row(self, x: str) -> QInput:
        """x (..., K) as uint8 per row: symmetric scale max|row| / 127, zero point 128."""
        peak = self.op("ReduceMax", [self.op("Abs", [x], "abs")], "peak", axes=[-1], keepdims=1)
        scale = self.op("Max", [self.op("Mul", [peak, self.const("inv127", np.float32(1 / 127))], "s"),
                                self.const("eps", np.float32(EPS))], "row_scale")  # (..., 1)
        shifted = self.op("Add", [self.op("Round", [self.op("Div", [x, scale], "xs")], "xr"),
                                  self.const("c128", np.float32(128))], "xu")
        return QInput(self.op("Cast", [shifted], "xq", to=TensorProto.UINT8), self.const("one", np.float32(1)),
                      self.const("zp", np.uint8(128)), scale)

    def product(self, x: QInput, w: GateWeight, bias: np.ndarray | None, what: str) -> str:
        """x @ w (+ bias) in fp32, through onnxruntime's uint8 x int8 kernel (the VNNI one; its
        int8 x int8 product has no fast kernel, 18x slower here)."""
        b = self.const("bias", bias.astype(np.float32)) if bias is not None and not x.row_scale else ""
        out = self.op("MatMulIntegerToFloat", [x.q, w.q, x.scale, w.scale, x.zero, "", b], what, domain=MS_DOMAIN)
        if x.row_scale:
            out = self.op("Mul", [out, x.row_scale], what)
            if bias is not None:
                out = self.op("Add", [out, self.const("bias", bias.astype(np.float32))], what)
        return out


def _init(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    return None


WEIGHT_LEVELS = 63  # 7-bit weights: uint8 x int8 pair sums stay within int16 on CPUs without VNNI (quantize.METHOD)


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 7-bit int8 per output column of w (K, N): (q int8 (K, N) in [-63, 63], scale float32 (N,))."""
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / WEIGHT_LEVELS, 1.0).astype(np.float32)
    return np.clip(np.rint(w / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8), scale


def _gate_weights(graph: onnx.GraphProto, node: onnx.NodeProto, b: _Builder, hidden: int,
                  new_inits: dict[str, np.ndarray]) -> tuple[list[GateWeight], list[GateWeight]]:
    """Per gate (ONNX order), the int8 (K, H) input and recurrent weights, as constant-foldable
    slices of one stored tensor per matrix."""
    gates = GATES[node.op_type]
    spans = [(b.const("start", np.array([g * hidden], np.int64)),
              b.const("end", np.array([(g + 1) * hidden], np.int64))) for g in range(gates)]
    axis0, axis1 = b.const("axis", np.array([0], np.int64)), b.const("axis", np.array([1], np.int64))
    out: list[list[GateWeight]] = []
    for wi in (1, 2):
        name = node.input[wi]
        if node.op_type == "DynamicQuantizeLSTM":  # (1, K, 4H) int8, per-tensor scale, zero point 0
            zero = _init(graph, node.input[wi * 2 + 7])
            if zero is None or np.any(zero != 0) or _init(graph, name) is None:
                raise ValueError(f"{node.name}: expected symmetric int8 weights (zero point 0) in initializers")
            matrix = b.op("Squeeze", [name, axis0], "w")  # (K, 4H)
            out.append([GateWeight(b.op("Slice", [matrix, start, end, axis1], "wg"), node.input[wi * 2 + 6])
                        for start, end in spans])
            continue
        stored, scale_name = _stored_int8(graph, node, name, new_inits)
        matrix = b.op("Squeeze", [stored, axis0], "w")  # (G*H, K)
        out.append([GateWeight(b.op("Transpose", [b.op("Slice", [matrix, start, end, axis0], "wg")], "wt",
                                    perm=[1, 0]),
                               b.op("Slice", [scale_name, start, end, axis0], "sg"))
                    for start, end in spans])
    return out[0], out[1]


def _stored_int8(graph: onnx.GraphProto, node: onnx.NodeProto, name: str, new_inits: dict[str, np.ndarray]
                 ) -> tuple[str, str]:
    """The names of a weight's int8 tensor (1, G*H, K) and its per-column scale (G*H,): quantized
    here from an fp32 initializer, or read as they are when the weight is already
    Mul(Cast(int8), Unsqueeze(scale)) of initializers (a step graph `dequantize_step` wrote)."""
    w = _init(graph, name)  # (1, G*H, K) fp32
    if w is not None:
        q, scale = quantize_columns(w[0].T)  # (K, G*H), (G*H,)
        new_inits[f"{name}_int8"] = q.T[None].copy()  # the operator's layout, shared with the step graph
        new_inits[f"{name}_scale"] = scale
        return f"{name}_int8", f"{name}_scale"
    mul = next((n for n in graph.node if name in n.output and n.op_type == "Mul"), None)
    if mul is not None:  # dequantize_step's form: Mul(Cast(q), Unsqueeze(scale, [0, 2]))
        cast = next((n for n in graph.node if n.output[0] == mul.input[0] and n.op_type == "Cast"), None)
        column = next((n for n in graph.node if n.output[0] == mul.input[1] and n.op_type == "Unsqueeze"), None)
        q8 = _init(graph, cast.input[0]) if cast is not None else None
        s8 = _init(graph, column.input[0]) if column is not None else None
        if cast is not None and column is not None and q8 is not None and q8.dtype == np.int8 and s8 is not None:
            return cast.input[0], column.input[0]
    raise ValueError(f"{node.name}: weight {name!r} is neither an initializer nor int8 weights dequantized per column")


def _check_supported(node: onnx.NodeProto) -> int:
    """The node's hidden size; ValueError for a form the decomposition does not cover."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    direction = attrs.get("direction", b"forward")
    if direction not in (b"forward", "forward"):
        raise ValueError(f"{node.name}: only forward recurrent layers are decomposed, not {direction!r}")
    if node.op_type == "GRU" and attrs.get("linear_before_reset", 0) != 1:
        raise ValueError(f"{node.name}: only GRUs with linear_before_reset=1 (PyTorch's) are decomposed")
    if node.op_type == "RNN" and attrs.get("activations", [b"Tanh"]) not in ([b"Tanh"], ["Tanh"]):
        raise ValueError(f"{node.name}: only tanh RNNs are decomposed")
    for key in ("clip", "input_forget", "layout", "activation_alpha", "activation_beta"):
        if attrs.get(key):
            raise ValueError(f"{node.name}: attribute {key} is not supported by the decomposition")
    if node.op_type in ("LSTM", "DynamicQuantizeLSTM") and len(node.input) > 7 and node.input[7]:
        raise ValueError(f"{node.name}: peephole weights are not supported by the decomposition")
    return int(attrs["hidden_size"])


class _Graph:
    """Producers and consumers of one graph's tensors (of the graph as it was read)."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.producer = {o: n for n in graph.node for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in graph.output}
        self.inits = {t.name: t for t in graph.initializer}

    def values_used(self, name: str) -> bool:
        """Whether anything reads the values of `name` (not only its shape)."""
        todo, seen = [name], set()
        while todo:
            t = todo.pop()
            if t in self.outputs:
                return True
            for n in self.consumers.get(t, []):
                if n.op_type == "Shape":
                    continue
                if n.op_type not in MOVES or n.input[0] != t:
                    return True
                for o in n.output:
                    if o not in seen:
                        seen.add(o)
                        todo.append(o)
        return False

    def moves_to(self, name: str, sources: set[str]) -> bool:
        """Whether `name` is one of `sources` moved by MOVES ops only."""
        while name not in sources:
            n = self.producer.get(name)
            if n is None or n.op_type not in MOVES:
                return False
            name = n.input[0]
        return True

    def uint8_source(self, x: str, b: _Builder) -> QInput | None:
        """x = MOVES(DequantizeLinear(uint8, scalar scale, scalar zero point)): the same moves
        applied to the uint8 tensor, with its scale and zero point; None otherwise."""
        chain: list[onnx.NodeProto] = []
        name = x
        while True:
            n = self.producer.get(name)
            if n is None:
                return None
            if n.op_type == "DequantizeLinear":
                break
            if n.op_type not in MOVES:
                return None
            chain.append(n)
            name = n.input[0]
        scale, zero = _init(self.graph, n.input[1]), (_init(self.graph, n.input[2]) if len(n.input) > 2 else None)
        source = self.producer.get(n.input[0])
        table = self.inits.get(source.input[0]) if source is not None and source.op_type == "Gather" else None
        if (scale is None or scale.size != 1 or zero is None or zero.dtype != np.uint8 or zero.size != 1
                or table is None or table.data_type != TensorProto.UINT8):
            return None
        q = n.input[0]
        for move in reversed(chain):
            copy = onnx.NodeProto()
            copy.CopyFrom(move)
            copy.name = b.name(f"{move.op_type}_uint8")
            del copy.output[:]
            copy.output.append(b.name("uint8"))
            copy.input[0] = q
            b.nodes.append(copy)
            q = copy.output[0]
        return QInput(q, n.input[1], n.input[2])


def _cell(b: _Builder, cell: str, xs: list[str], hs: list[str], h: str, c: str) -> tuple[str, str]:
    """The cell's equations (ONNX gate order) from the gates' x and h products, biases included."""
    def pre(g: int) -> str:
        return b.op("Add", [xs[g], hs[g]], "pre")

    if cell == "GRU":  # z, r, n; linear_before_reset = 1: n = tanh(xn + r * (h Rn + Rbn))
        z, r = b.op("Sigmoid", [pre(0)], "z"), b.op("Sigmoid", [pre(1)], "r")
        n = b.op("Tanh", [b.op("Add", [xs[2], b.op("Mul", [r, hs[2]], "rn")], "n0")], "n")
        return b.op("Add", [n, b.op("Mul", [z, b.op("Sub", [h, n], "hmn")], "zd")], "h_new"), ""
    if cell == "RNN":
        return b.op("Tanh", [pre(0)], "h_new"), ""
    i, o, f = (b.op("Sigmoid", [pre(g)], "sig") for g in range(3))  # LSTM: i, o, f, c
    c_new = b.op("Add", [b.op("Mul", [f, c], "fc"), b.op("Mul", [i, b.op("Tanh", [pre(3)], "g")], "ig")], "c_new")
    return b.op("Mul", [o, b.op("Tanh", [c_new], "tc")], "h_new"), c_new


def _biases(graph: onnx.GraphProto, node: onnx.NodeProto, hidden: int
            ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Per gate: the bias added to the x product (Wb, plus Rb where it simply adds), and to the h
    product (only the GRU's Rbn, which the reset gate multiplies)."""
    gates = GATES[node.op_type]
    raw = _init(graph, node.input[3]) if len(node.input) > 3 and node.input[3] else None
    bias = np.zeros(2 * gates * hidden, np.float32) if raw is None else raw.reshape(-1).astype(np.float32)
    wb, rb = bias[: gates * hidden].reshape(gates, hidden), bias[gates * hidden:].reshape(gates, hidden)
    if node.op_type == "GRU":
        return [wb[0] + rb[0], wb[1] + rb[1], wb[2]], [None, None, rb[2]]
    return [wb[g] + rb[g] for g in range(gates)], [None] * gates


def _fuse(b: _Builder, weights: list[GateWeight]) -> GateWeight:
    """The gates' weights side by side: one (K, G*H) matrix (constant-folded at session creation)."""
    scales = [w.scale for w in weights]
    scale = scales[0] if len(set(scales)) == 1 else b.op("Concat", scales, "scat", axis=0)
    return GateWeight(b.op("Concat", [w.q for w in weights], "wcat", axis=1), scale)


def _rewrite(g: _Graph, node: onnx.NodeProto, index: int, new_inits: dict[str, np.ndarray],
             bounded: set[str], fused_gates: bool = False) -> list[onnx.NodeProto]:
    """The nodes replacing one recurrent node; adds its Y to `bounded` (values in [-1, 1])."""
    hidden = _check_supported(node)
    b = _Builder(f"decomposed{index}")
    w, r = _gate_weights(g.graph, node, b, hidden, new_inits)
    x_bias, h_bias = _biases(g.graph, node, hidden)
    lstm = node.op_type in ("LSTM", "DynamicQuantizeLSTM")
    inputs = list(node.input) + [""] * (8 - len(node.input))
    x, lens, h0, c0 = inputs[0], inputs[4], inputs[5], inputs[6] if lstm else ""
    axis0 = b.const("axis", np.array([0], np.int64))
    qx = g.uint8_source(x, b) or (b.bounded(x) if g.moves_to(x, bounded) else b.per_row(x))
    xs = [b.product(qx, wg, bias, "xw") for wg, bias in zip(w, x_bias, strict=True)]  # (T, B, H) each
    shape_x = b.op("Shape", [x], "shape_x")

    def initial(name: str) -> str:
        if name:
            return b.op("Squeeze", [name, axis0], "state0")
        batch = b.op("Slice", [shape_x, b.const("s", np.array([1], np.int64)), b.const("e", np.array([2], np.int64))],
                     "batch")
        size = b.op("Concat", [batch, b.const("hid", np.array([hidden], np.int64))], "size", axis=0)
        return b.op("ConstantOfShape", [size], "zeros", value=numpy_helper.from_array(np.zeros(1, np.float32)))

    states = [initial(h0)] + ([initial(c0)] if lstm else [])
    scans = list(xs)
    if lens:  # mask (T, B, 1): t < length
        steps = b.op("Gather", [shape_x, b.const("zero", np.array(0, np.int64))], "steps")
        t = b.op("Range", [b.const("t0", np.array(0, np.int64)), steps, b.const("one", np.array(1, np.int64))], "t")
        scans.append(b.op("Less", [b.op("Unsqueeze", [t, b.const("ax", np.array([1, 2], np.int64))], "tcol"),
                                   b.op("Unsqueeze", [b.op("Cast", [lens], "lens64", to=TensorProto.INT64),
                                                      b.const("ax", np.array([0, 2], np.int64))], "lrow")], "mask"))
    outputs = list(node.output) + [""] * (3 - len(node.output))
    y_values = bool(outputs[0]) and g.values_used(outputs[0])

    body = _Builder(f"decomposed{index}/step")
    h_in, c_in = body.name("h"), body.name("c") if lstm else ""
    x_t = [body.name("x_t") for _ in xs]
    m_t = body.name("m_t") if lens else ""
    qh = body.bounded(h_in)
    if fused_gates:  # one product for every gate, then a Split (the variant measured for issue 18)
        bias_all = np.concatenate([v if v is not None else np.zeros(hidden, np.float32) for v in h_bias])
        hs = [body.name("hg") for _ in r]
        body.op("Split", [body.product(qh, _fuse(b, r), bias_all, "hw"),
                          body.const("split", np.array([hidden] * len(r), np.int64))], "split", outputs=hs, axis=-1)
    else:
        hs = [body.product(qh, rg, bias, "hw") for rg, bias in zip(r, h_bias, strict=True)]
    h_new, c_new = _cell(body, node.op_type, x_t, hs, h_in, c_in)
    news = [h_new] + ([c_new] if lstm else [])
    if m_t:
        news = [body.op("Where", [m_t, new, old], "keep") for new, old in zip(news, [h_in, c_in], strict=False)]
    finals = [body.op("Identity", [s], "out") for s in news]
    ys = []
    if y_values:
        ys = [body.op("Where", [m_t, news[0], body.const("zf", np.zeros(1, np.float32))], "y_t") if m_t
              else body.op("Identity", [news[0]], "y_t")]
    value = helper.make_tensor_value_info
    body_inputs = [value(n, TensorProto.FLOAT, None) for n in [h_in, *([c_in] if lstm else []), *x_t]]
    body_inputs += [value(m_t, TensorProto.BOOL, None)] if m_t else []
    body_graph = helper.make_graph(body.nodes, f"{b.prefix}_body", body_inputs,
                                   [value(n, TensorProto.FLOAT, None) for n in [*finals, *ys]], initializer=body.inits)

    lasts = [b.name("h_last")] + ([b.name("c_last")] if lstm else [])
    y_all = [b.name("ys")] if y_values else []
    b.op("Scan", [*states, *scans], "scan", outputs=[*lasts, *y_all], body=body_graph, num_scan_inputs=len(scans))
    if y_values:
        b.op("Unsqueeze", [y_all[0], b.const("ax", np.array([1], np.int64))], "y", outputs=[outputs[0]])  # (T, 1, B, H)
        bounded.add(outputs[0])
    elif outputs[0] and g.consumers.get(outputs[0]):  # only its shape is read: zeros of that shape
        size = b.op("Concat", [b.op("Slice", [shape_x, b.const("s", np.array([0], np.int64)),
                                             b.const("e", np.array([1], np.int64))], "t"),
                               b.const("one", np.array([1], np.int64)),
                               b.op("Slice", [shape_x, b.const("s", np.array([1], np.int64)),
                                              b.const("e", np.array([2], np.int64))], "b"),
                               b.const("hid", np.array([hidden], np.int64))], "yshape", axis=0)
        b.op("ConstantOfShape", [size], "y", outputs=[outputs[0]],
             value=numpy_helper.from_array(np.zeros(1, np.float32)))
    for last, name in zip(lasts, outputs[1:1 + len(lasts)], strict=True):
        if name:
            b.op("Unsqueeze", [last, axis0], "state", outputs=[name])  # (1, B, H)
    g.graph.initializer.extend(b.inits)
    return b.nodes


def decompose(model: onnx.ModelProto, fused_gates: bool = False) -> onnx.ModelProto:
    """A copy of the sequence graph `model` with every recurrent node decomposed (see the module).

    `fused_gates`: the loop does one recurrent product for all gates and splits it, instead of
    one product per gate (measured slower here; kept for the benchmark)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    g = _Graph(graph)
    new_inits: dict[str, np.ndarray] = {}
    bounded: set[str] = set()
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in list(graph.node):
        if node.op_type in CELLS and node.domain in ("", "ai.onnx", MS_DOMAIN):
            nodes.extend(_rewrite(g, node, count, new_inits, bounded, fused_gates))
            count += 1
        else:
            nodes.append(node)
    if not count:
        raise ValueError("the graph has no recurrent node to decompose")
    del graph.node[:]
    graph.node.extend(live_nodes(nodes, {o.name for o in graph.output}))
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items())
    _drop_unused(graph)
    if not any(o.domain == MS_DOMAIN for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return out


def live_nodes(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """The nodes that something reads (in order): dead ones, such as the fp32 embedding chain a
    uint8 input replaced, are dropped."""
    needed = set(outputs)
    keep: list[onnx.NodeProto] = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output if o):
            keep.append(n)
            needed.update(i for i in n.input if i)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    needed.update(i for m in a.g.node for i in m.input)
    return keep[::-1]


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove initializers no node reads any more (the fp32 weights a decomposition replaced)."""
    used = {i for n in graph.node for i in n.input}
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                used |= {i for m in a.g.node for i in m.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def dequantize_step(step: onnx.ModelProto, seq: onnx.ModelProto, decomposed: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the step graph whose fp32 GRU/RNN/LSTM weights read the int8 weights `decompose`
    wrote (`NAME_int8` (1, G*H, K), `NAME_scale` (G*H,), NAME a weight of the original sequence
    graph `seq` with the same bytes) as q * scale (Cast and Mul): the same values as the decomposed
    sequence graph's, and one copy of them in the file."""
    original = {t.raw_data: t.name for t in seq.graph.initializer if t.raw_data}
    q_seq = {t.name: numpy_helper.to_array(t) for t in decomposed.graph.initializer}
    out = onnx.ModelProto()
    out.CopyFrom(step)
    graph = out.graph
    weights = {t.name: t for t in graph.initializer}
    new_nodes: list[onnx.NodeProto] = []
    replaced: set[str] = set()
    for node in graph.node:
        if node.op_type not in ("GRU", "RNN", "LSTM"):
            continue
        for wi in (1, 2):
            name = node.input[wi]
            tensor = weights.get(name)
            source = original.get(tensor.raw_data) if tensor is not None else None
            if source is None or f"{source}_int8" not in q_seq:
                raise ValueError(f"{node.name}: weight {name!r} is not one the sequence graph's "
                                 "decomposition quantized")
            q_name, s_name = f"{name}_int8", f"{name}_scale"
            graph.initializer.extend([numpy_helper.from_array(q_seq[f"{source}_int8"], q_name),
                                      numpy_helper.from_array(q_seq[f"{source}_scale"], s_name)])
            # Cast and Mul, not DequantizeLinear: onnxruntime folds these at session creation,
            # while it keeps a DequantizeLinear of initializers in the graph (for its QDQ fusions),
            # which would cost every step (+50% step latency measured on the sentiment GRU)
            axes, column = f"{name}_axes", f"{name}_column_scale"
            graph.initializer.append(numpy_helper.from_array(np.array([0, 2], np.int64), axes))
            new_nodes += [helper.make_node("Cast", [q_name], [f"{name}_float"], to=TensorProto.FLOAT,
                                           name=f"{name}_cast"),
                          helper.make_node("Unsqueeze", [s_name, axes], [column], name=f"{name}_column"),
                          helper.make_node("Mul", [f"{name}_float", column], [name], name=f"{name}_dequantize")]
            replaced.add(name)
    kept = [t for t in graph.initializer if t.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return out
