"""int8 graphs rewritten into standard fp32 operators at load, the file's int8 weights kept.

An int8 edgeinfer file runs onnxruntime's own int8 operators (com.microsoft): `DynamicQuantizeLSTM`
for LSTMs, `MatMulIntegerToFloat` in a decomposed sequence graph. Execution providers other than
onnxruntime's CPU one (OpenVINO, WebAssembly's, ...) have no kernel for them, and WebAssembly's
int8 kernel is the slower form there. `dequantize_graph` rewrites a serialized graph so that every
such node becomes standard ONNX operators reading the same int8 tensors:

- `DynamicQuantizeLSTM(X, W, R, B, ..., W_scale, W_zero_point, R_scale, R_zero_point)` becomes
  `LSTM(X, Transpose((Cast(W) - Cast(W_zero_point)) * W_scale), ...)`, and the same for R;
- `MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero, b_zero, bias)` becomes
  `MatMul((Cast(A) - Cast(a_zero)) * a_scale, (Cast(B) - Cast(b_zero)) * b_scale) + bias`.

The weights' chains read only initializers, so onnxruntime folds them once when it creates the
session: the file keeps its int8 weights, the session holds fp32 ones. An LSTM's activations are
then no longer quantized (its answers move by less than the int8 tolerance, tests/edgeinfer/
test_dequantize.py); a decomposed graph quantizes them itself, with its own nodes, so it computes
the same products in fp32 arithmetic. The JavaScript runtime's web/src/dequantize.js does the same.

Every other field is copied as it is; a node this cannot rewrite for certain (two directions,
an unknown weight type) is left as it was. Nested graphs (a Scan's body) are rewritten too.
"""
from __future__ import annotations

from collections.abc import Iterable

from edgeinfer.fileformat import Field, proto_fields, tensor_header

_GRAPH = 7  # ModelProto.graph
_NODE, _INITIALIZER = 1, 5  # GraphProto
_N_INPUT, _N_OUTPUT, _N_NAME, _N_OP_TYPE, _N_ATTRIBUTE, _N_DOMAIN = 1, 2, 3, 4, 5, 7  # NodeProto
_A_G, _A_GRAPHS = 6, 11  # AttributeProto: a graph, graphs
_FLOAT, _UINT8, _INT8 = 1, 2, 3
MS_DOMAIN = "com.microsoft"
REWRITTEN = ("DynamicQuantizeLSTM", "MatMulIntegerToFloat")


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, wire: int, value: bytes | int) -> bytes:
    """One field, encoded again as it was read."""
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(int(value))
    if wire == 2:
        assert isinstance(value, bytes)
        return key + _varint(len(value)) + value
    return key + int(value).to_bytes(8 if wire == 1 else 4, "little")


def _encode(fields: Iterable[Field]) -> bytes:
    return b"".join(_field(*f) for f in fields)


def _text(number: int, text: str) -> bytes:
    return _field(number, 2, text.encode())


def _int_attribute(name: str, value: int) -> bytes:  # AttributeProto of type INT (2)
    return _text(1, name) + _field(3, 0, value) + _field(20, 0, 2)


def _ints_attribute(name: str, values: list[int]) -> bytes:  # AttributeProto of type INTS (7)
    return _text(1, name) + b"".join(_field(8, 0, v) for v in values) + _field(20, 0, 7)


def _node(op: str, inputs: list[str], outputs: list[str], attributes: Iterable[bytes] = ()) -> bytes:
    return (b"".join(_text(_N_INPUT, i) for i in inputs) + b"".join(_text(_N_OUTPUT, o) for o in outputs)
            + _text(_N_OP_TYPE, op) + b"".join(_field(_N_ATTRIBUTE, 2, a) for a in attributes))


def _strings(fields: list[Field], number: int) -> list[str]:
    return [v.decode("utf-8", "replace") for n, w, v in fields if n == number and w == 2 and isinstance(v, bytes)]


def _initializers(graph: list[Field]) -> dict[str, tuple[list[int], int]]:
    """A graph's initializers: name -> (dims, data type)."""
    found: dict[str, tuple[list[int], int]] = {}
    for number, wire, value in graph:
        if number == _INITIALIZER and wire == 2 and isinstance(value, bytes):
            name, dims, dtype = tensor_header(proto_fields(value))
            found[name] = (dims, dtype)
    return found


class _Rewriter:
    """Rewrites the nodes of one model, naming new tensors uniquely."""

    def __init__(self) -> None:
        self.count = 0

    def _name(self, tag: str) -> str:
        return f"edgeinfer.fp32.{self.count}.{tag}"

    def _dequantized(self, out: list[bytes], q: str, scale: str, zero: str, tag: str) -> str:
        """Nodes for (Cast(q) - Cast(zero)) * scale; the result's name."""
        value = self._name(f"{tag}.float")
        out.append(_node("Cast", [q], [value], [_int_attribute("to", _FLOAT)]))
        if zero:
            zero_f, centred = self._name(f"{tag}.zero"), self._name(f"{tag}.centred")
            out.append(_node("Cast", [zero], [zero_f], [_int_attribute("to", _FLOAT)]))
            out.append(_node("Sub", [value, zero_f], [centred]))
            value = centred
        scaled = self._name(f"{tag}.scaled")
        out.append(_node("Mul", [value, scale], [scaled]))
        return scaled

    def lstm(self, node: list[Field], inits: dict[str, tuple[list[int], int]]) -> list[bytes] | None:
        inputs = _strings(node, _N_INPUT)
        if len(inputs) != 12:
            return None
        x, w, r, b, lens, h0, c0, p, w_scale, w_zero, r_scale, r_zero = inputs
        for weight, scale, zero in ((w, w_scale, w_zero), (r, r_scale, r_zero)):
            wi, si, zi = inits.get(weight), inits.get(scale), inits.get(zero)
            if wi is None or si is None or zi is None:
                return None
            (w_dims, w_type), (s_dims, s_type), (z_dims, z_type) = wi, si, zi
            if len(w_dims) != 3 or w_dims[0] != 1 or w_type not in (_INT8, _UINT8) or z_type != w_type \
                    or s_type != _FLOAT or s_dims != z_dims or s_dims not in ([1], [1, w_dims[2]]):
                return None  # one direction; a scale per tensor (1) or per gate unit (1, 4H) broadcasts as it is
        out: list[bytes] = []
        weights = []
        for weight, scale, zero, tag in ((w, w_scale, w_zero, "W"), (r, r_scale, r_zero, "R")):
            scaled = self._dequantized(out, weight, scale, zero, tag)
            transposed = self._name(f"{tag}.weight")
            out.append(_node("Transpose", [scaled], [transposed], [_ints_attribute("perm", [0, 2, 1])]))
            weights.append(transposed)
        args = [x, *weights, b, lens, h0, c0, p]
        while args and not args[-1]:
            args.pop()
        kept = _encode(f for f in node if f[0] in (_N_OUTPUT, _N_NAME, _N_ATTRIBUTE))  # LSTM's attributes
        out.append(b"".join(_text(_N_INPUT, a) for a in args) + kept + _text(_N_OP_TYPE, "LSTM"))
        self.count += 1
        return out

    def matmul(self, node: list[Field]) -> list[bytes] | None:
        inputs = _strings(node, _N_INPUT) + [""] * 7
        a, b, a_scale, b_scale, a_zero, b_zero, bias = inputs[:7]
        outputs = _strings(node, _N_OUTPUT)
        if not (a and b and a_scale and b_scale) or len(outputs) != 1:
            return None
        out: list[bytes] = []
        a_f = self._dequantized(out, a, a_scale, a_zero, "A")
        b_f = self._dequantized(out, b, b_scale, b_zero, "B")
        if bias:
            product = self._name("product")
            out.append(_node("MatMul", [a_f, b_f], [product]))
            out.append(_node("Add", [product, bias], outputs))
        else:
            out.append(_node("MatMul", [a_f, b_f], outputs))
        self.count += 1
        return out

    def graph(self, data: bytes, outer: dict[str, tuple[list[int], int]]) -> bytes | None:
        """A GraphProto with its int8 nodes rewritten (nested graphs too), or None if unchanged."""
        fields = proto_fields(data)
        inits = {**outer, **_initializers(fields)}
        changed = False
        parts: list[bytes] = []
        for number, wire, value in fields:
            if number != _NODE or wire != 2 or not isinstance(value, bytes):
                parts.append(_field(number, wire, value))
                continue
            node = proto_fields(value)
            op, domain = _strings(node, _N_OP_TYPE), _strings(node, _N_DOMAIN)
            nodes: list[bytes] | None = None
            if domain == [MS_DOMAIN] and op == ["DynamicQuantizeLSTM"]:
                nodes = self.lstm(node, inits)
            elif domain == [MS_DOMAIN] and op == ["MatMulIntegerToFloat"]:
                nodes = self.matmul(node)
            else:
                inner = self._subgraphs(node, inits)
                if inner is not None:
                    nodes = [inner]
            if nodes is None:
                parts.append(_field(number, wire, value))
            else:
                changed = True
                parts.extend(_field(_NODE, 2, n) for n in nodes)
        return b"".join(parts) if changed else None

    def _subgraphs(self, node: list[Field], inits: dict[str, tuple[list[int], int]]) -> bytes | None:
        """The node with the graphs in its attributes rewritten, or None if none changed."""
        changed = False
        parts: list[bytes] = []
        for number, wire, value in node:
            if number == _N_ATTRIBUTE and isinstance(value, bytes):
                attribute = proto_fields(value)
                new_attr: list[bytes] = []
                for n, w, v in attribute:
                    inner = self.graph(v, inits) if n in (_A_G, _A_GRAPHS) and isinstance(v, bytes) else None
                    changed |= inner is not None
                    new_attr.append(_field(n, w, inner if inner is not None else v))
                parts.append(_field(number, wire, b"".join(new_attr)))
            else:
                parts.append(_field(number, wire, value))
        return b"".join(parts) if changed else None


def graph_ops(model: bytes) -> set[str]:
    """The op types of a serialized ModelProto's main graph, nested graphs (a Scan's body) included."""
    found: set[str] = set()

    def walk(graph: bytes) -> None:
        for number, _, value in proto_fields(graph):
            if number != _NODE or not isinstance(value, bytes):
                continue
            node = proto_fields(value)
            found.update(_strings(node, _N_OP_TYPE))
            for n, _, attribute in node:
                if n == _N_ATTRIBUTE and isinstance(attribute, bytes):
                    for a, _, g in proto_fields(attribute):
                        if a in (_A_G, _A_GRAPHS) and isinstance(g, bytes):
                            walk(g)

    for number, _, value in proto_fields(model):
        if number == _GRAPH and isinstance(value, bytes):
            walk(value)
    return found


def dequantize_graph(model: bytes) -> bytes | None:
    """A serialized ModelProto with its onnxruntime int8 operators rewritten into standard ONNX
    operators reading the same int8 weights (see the module), or None when it has none that can
    be. The model was validated before (a file's checksums and layout): this only reads it."""
    rewriter = _Rewriter()
    parts: list[bytes] = []
    changed = False
    for number, wire, value in proto_fields(model):
        graph = rewriter.graph(value, {}) if number == _GRAPH and isinstance(value, bytes) else None
        changed |= graph is not None
        parts.append(_field(number, wire, graph if graph is not None else value))
    return b"".join(parts) if changed else None


FORM_NODE = "edgeinfer/form"  # the If of a file holding both sequence forms (edgeinfer_export.both)


def fused_form(model: bytes) -> bytes | None:
    """A serialized ModelProto holding both sequence forms behind an If on the batch size
    (docs/format.md, section 3) reduced to its fused form alone, or None for any other graph.

    For providers that take the If but cannot run the decomposed form's Scan (OpenVINO): the
    fused branch's nodes become the main graph's, its outputs renamed back (`OUTPUT::fused` ->
    `OUTPUT`); the shared initializers stay, so nothing is copied."""
    parts: list[bytes] = []
    changed = False
    for number, wire, value in proto_fields(model):
        graph = _only_fused(value) if number == _GRAPH and isinstance(value, bytes) else None
        changed |= graph is not None
        parts.append(_field(number, wire, graph if graph is not None else value))
    return b"".join(parts) if changed else None


def _only_fused(graph: bytes) -> bytes | None:
    fields = proto_fields(graph)
    nodes = [proto_fields(v) for n, _, v in fields if n == _NODE and isinstance(v, bytes)]
    form = [node for node in nodes if _strings(node, _N_NAME) == [FORM_NODE] and _strings(node, _N_OP_TYPE) == ["If"]]
    if len(form) != 1:
        return None
    outputs = _strings(form[0], _N_OUTPUT)
    branch = None
    for n, _, attribute in form[0]:
        if n == _N_ATTRIBUTE and isinstance(attribute, bytes):
            attr = proto_fields(attribute)
            if _strings(attr, 1) == ["else_branch"]:
                branch = next((v for a, _, v in attr if a == _A_G and isinstance(v, bytes)), None)
    if branch is None:
        return None
    rename = {f"{o}::fused": o for o in outputs}
    body = [v for n, _, v in proto_fields(branch) if n == _NODE and isinstance(v, bytes)]
    renamed = [b"".join(_text(n, rename.get(v.decode(), v.decode())) if n in (_N_INPUT, _N_OUTPUT)
                        and isinstance(v, bytes) else _field(n, w, v) for n, w, v in proto_fields(node))
               for node in body]
    # the graph's own fields but its nodes (the batch-size test and the If), then the fused nodes
    kept = [_field(n, w, v) for n, w, v in fields if n != _NODE]
    return b"".join(kept) + b"".join(_field(_NODE, 2, node) for node in renamed)
