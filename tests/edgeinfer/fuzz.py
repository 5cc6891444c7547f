"""Seeded fuzzing of the runtime: mutated model files, odd inputs and damaged snapshots.

Every case must end in a typed error (an `EdgeInferError`) or a correct result (finite
probabilities of the right shape); anything else is a defect. Run as a worker process by
tests/edgeinfer/test_fuzz.py, with a memory limit (RLIMIT_AS) set by the parent:

    python -m tests.edgeinfer.fuzz models SHARD SHARDS   # model-file mutations
    python -m tests.edgeinfer.fuzz inputs                # input and snapshot mutations

It prints one JSON object: case counts, typed errors, correct results, and the cases that broke
the rule (kind, exception), plus the slowest case's seconds and the peak RSS.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import edgeinfer
from edgeinfer import EdgeInferError
from edgeinfer.core import builtin_models
from edgeinfer.spec import SPEC_KEY, STEP_GRAPH_KEY
from tests.edgeinfer.modelfile import _encode_varint, _length_delimited, fields, read_metadata, with_metadata

SEED = 20261201
MODEL_KINDS = {  # mutation kind -> cases
    "bit flips": 800, "random bytes": 400, "truncation": 300, "metadata bytes": 300, "spec json": 650,
    "step graph": 300, "step ranges": 200, "external data": 100, "huge dims": 100,
}
SECRET = "notes/secret.txt"  # a file in the fuzz's working directory that a model must never read
BAD_VALUES: list[Any] = [
    None, True, False, -1, 0, 1, 2, 10**18, -(10**18), 1e308, -1e308, 0.5, "x", "", "NaN", [], {}, [1, 2],
    {"a": 1}, [[[]]], "\x1b[2J", ["a"] * 3, 2**63, -(2**63) - 1,
]


# --- building mutated files ------------------------------------------------------------------

def _message(parts: list[tuple[int, int, bytes, bytes]]) -> bytes:
    return b"".join(raw for *_, raw in parts)


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint(number << 3) + _encode_varint(value)


def _edit_initializer(data: bytes, rng: np.random.Generator | None, edit: Callable[[list[Any]], bytes],
                      name: str = "") -> bytes:
    """`data` (a ModelProto) with one main-graph initializer (a random one, or the one named)
    replaced by `edit(its fields)`."""
    top = fields(data)
    g = next(i for i, f in enumerate(top) if f[0] == 7)
    graph = fields(top[g][2])
    inits = [i for i, f in enumerate(graph) if f[0] == 5]
    if name:
        k = next(i for i in inits if read_name(graph[i][2]) == name)
    else:
        assert rng is not None
        k = inits[int(rng.integers(len(inits)))]
    tensor = edit(fields(graph[k][2]))
    graph[k] = (5, 2, tensor, _length_delimited(5, tensor))
    body = _message(graph)
    top[g] = (7, 2, body, _length_delimited(7, body))
    return _message(top)


def external(data: bytes, name: str, location: str = SECRET) -> bytes:
    """The model with initializer `name` stored as external data at `location` (offset 0, 40 bytes)."""
    return _edit_initializer(data, None, lambda parts: _external(parts, location), name)


def _external(parts: list[Any], location: str = SECRET) -> bytes:
    kept = [raw for f, _, _, raw in parts if f not in (9, 13, 14)]  # raw_data, external_data, data_location
    entries = b"".join(_length_delimited(13, _length_delimited(1, k.encode()) + _length_delimited(2, v.encode()))
                       for k, v in (("location", location), ("offset", "0"), ("length", "40")))
    return b"".join(kept) + entries + _varint_field(14, 1)


def _huge_dims(rng: np.random.Generator) -> Callable[[list[Any]], bytes]:
    def edit(parts: list[Any]) -> bytes:
        kept = [raw for f, _, _, raw in parts if f != 1]
        dims = [int(rng.choice([2**31, 2**40, 2**62, 2**64 - 1, 0, 3, 10**6]))
                for _ in range(int(rng.integers(1, 5)))]
        return b"".join(_varint_field(1, d) for d in dims) + b"".join(kept)
    return edit


def _bad_spec(raw: dict[str, Any], rng: np.random.Generator) -> str:
    """The spec JSON with one random node replaced, removed or added, or nested absurdly deep."""
    how = int(rng.integers(10))
    if how == 0:
        return json.dumps(raw).replace('"provenance": {', '"provenance": {"d": ' + "[" * 50_000 + "]" * 50_000 + ", ")
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            if not (isinstance(node, list) and len(node) > 50 and rng.random() < 0.9):
                paths.append((node, key))
            walk(value)

    walk(raw)
    node, key = paths[int(rng.integers(len(paths)))]
    if how == 1 and isinstance(node, dict):
        del node[key]
    elif how == 2 and isinstance(node, dict):
        node["unexpected_" + str(key)] = 1
    elif how == 3:
        node[key] = float("nan")
    else:
        node[key] = BAD_VALUES[int(rng.integers(len(BAD_VALUES)))]
    return json.dumps(raw)


def _flip(data: bytes, rng: np.random.Generator, lo: int = 0, hi: int | None = None, bits: int = 0) -> bytes:
    out = bytearray(data)
    hi = len(out) if hi is None else hi
    for _ in range(bits or int(rng.integers(1, 9))):
        pos = int(rng.integers(lo, hi))
        out[pos] ^= 1 << int(rng.integers(8))
    return bytes(out)


def _step_graph_variant(step: bytes, rng: np.random.Generator) -> str:
    how = int(rng.integers(5))
    if how == 0:
        return base64.b64encode(_flip(step, rng)).decode()
    if how == 1:
        return base64.b64encode(step[: int(rng.integers(len(step)))]).decode()
    if how == 2:
        return base64.b64encode(rng.bytes(int(rng.integers(1, 4096)))).decode()
    if how == 3:
        text = base64.b64encode(step).decode()
        pos = int(rng.integers(len(text)))
        return text[:pos] + "!*~"[int(rng.integers(3))] + text[pos + 1 :]
    return base64.b64encode(_edit_initializer(step, rng, _external)).decode()


def _range_variant(step: bytes, size: int, rng: np.random.Generator) -> str:
    """The step graph with one of its byte-range references to the file changed."""
    refs = [read_name(p) for f, _, p, _ in fields(next(p for f, _, p, _ in fields(step) if f == 7))
            if f == 5 and any(g == 13 for g, *_ in fields(p))]
    choice = [("location", "edgeinfer-shared"), ("location", SECRET), ("location", ""), ("offset", "-4"),
              ("offset", str(size)), ("offset", str(size - 8)), ("offset", "1"), ("offset", "x"),
              ("length", "4"), ("length", str(10**20)), ("length", "-1"), ("offset", str(10**30))]
    key, value = choice[int(rng.integers(len(choice)))]

    def edit(parts: list[Any]) -> bytes:
        out = []
        for f, _, payload, raw in parts:
            if f == 13 and read_entry(payload)[0] == key:
                raw = _length_delimited(13, _length_delimited(1, key.encode()) + _length_delimited(2, value.encode()))
            out.append(raw)
        return b"".join(out)

    name = refs[int(rng.integers(len(refs)))]
    return base64.b64encode(_edit_initializer(step, None, edit, name)).decode()


def read_entry(entry: bytes) -> tuple[str, str]:
    parts = {f: p for f, w, p, _ in fields(entry) if w == 2}
    return parts.get(1, b"").decode(), parts.get(2, b"").decode()


def model_cases(base: bytes) -> Iterator[tuple[str, bytes]]:
    """(kind, mutated file) for every case, in a fixed order, each from its own seeded generator."""
    meta = read_metadata(base)
    spec = json.loads(meta[SPEC_KEY])
    step = base64.b64decode(meta[STEP_GRAPH_KEY])
    top = fields(base)
    meta_lo = sum(len(raw) for f, _, _, raw in top[: next(i for i, t in enumerate(top) if t[0] == 14)])
    index = 0
    for kind, count in MODEL_KINDS.items():
        for _ in range(count):
            rng = np.random.default_rng([SEED, index])
            index += 1
            if kind == "bit flips":
                yield kind, _flip(base, rng)
            elif kind == "random bytes":
                pos = int(rng.integers(len(base)))
                yield kind, base[:pos] + rng.bytes(int(rng.integers(1, 64))) + base[pos + 64 :]
            elif kind == "truncation":
                yield kind, base[: int(rng.integers(len(base)))]
            elif kind == "metadata bytes":
                yield kind, _flip(base, rng, lo=meta_lo)
            elif kind == "spec json":
                yield kind, with_metadata(base, {**meta, SPEC_KEY: _bad_spec(json.loads(json.dumps(spec)), rng)})
            elif kind == "step graph":
                yield kind, with_metadata(base, {**meta, STEP_GRAPH_KEY: _step_graph_variant(step, rng)})
            elif kind == "step ranges":
                yield kind, with_metadata(base, {**meta, STEP_GRAPH_KEY: _range_variant(step, len(base), rng)})
            elif kind == "external data":
                yield kind, _edit_initializer(base, rng, _external)
            else:
                yield kind, _edit_initializer(base, rng, _huge_dims(rng))


def read_name(tensor: bytes) -> str:
    return next((p.decode() for f, w, p, _ in fields(tensor) if f == 8 and w == 2), "")


# --- running cases ----------------------------------------------------------------------------

def finite_probabilities(value: Any, classes: int) -> bool:
    arr = np.asarray(value)
    return bool(arr.shape[-1] == classes and np.isfinite(arr).all() and np.allclose(arr.sum(-1), 1, atol=1e-3))


class Tally:
    """Counts outcomes; keeps the cases that broke the rule."""

    def __init__(self) -> None:
        self.cases = self.typed = self.correct = 0
        self.bad: list[str] = []
        self.slowest_s = 0.0
        self.seconds: dict[str, float] = {}

    def run(self, kind: str, case: Callable[[], bool]) -> None:
        self.cases += 1
        start = time.perf_counter()
        try:
            ok = bool(case())
            self.correct += ok
            if not ok:
                self.bad.append(f"{kind}: a wrong result")
        except EdgeInferError as exc:
            self.typed += 1
            if "\n" in str(exc):
                self.bad.append(f"{kind}: a multi-line message {str(exc)[:120]!r}")
        except Exception as exc:  # the defect this fuzzing looks for
            self.bad.append(f"{kind}: {type(exc).__name__}: {str(exc)[:160]}")
        took = time.perf_counter() - start
        self.slowest_s = max(self.slowest_s, took)
        self.seconds[kind] = self.seconds.get(kind, 0.0) + took

    def report(self) -> dict[str, Any]:
        return {"cases": self.cases, "typed": self.typed, "correct": self.correct, "other": len(self.bad),
                "bad": self.bad[:20], "slowest_s": round(self.slowest_s, 3),
                "seconds": {k: round(v, 2) for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])},
                "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM: ru_maxrss would include the parent's at fork time)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024


def run_models(shard: int, shards: int) -> dict[str, Any]:
    """Load each mutated digits file, predict once and step once, from a folder holding SECRET."""
    bases = [(builtin_models()["digits"].read_bytes(), 1),  # every case
             (DECOMPOSED_FIXTURE.read_bytes(), 3)]  # a Scan of int8 products (issue 18): every third case
    tally = Tally()
    x = np.random.default_rng(0).standard_normal((1, 28, 28)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        Path(SECRET).parent.mkdir()
        Path(SECRET).write_bytes(np.arange(10, dtype=np.float32).tobytes() * 4)
        cases = ((i, kind, data) for base, every in bases
                 for i, (kind, data) in enumerate(model_cases(base)) if i % every == 0)
        for i, kind, data in cases:
            if i % shards != shard:
                continue
            path = Path(tmp) / "m.onnx"
            path.write_bytes(data)

            def case(path: Path = path) -> bool:
                model = edgeinfer.load(path, intra_op_threads=1)
                p = model.predict(x)
                step = model.stream().step(x[0, 0])
                return finite_probabilities(p, model.spec.classes) and finite_probabilities(step, model.spec.classes)

            tally.run(kind, case)
            if i % 5 == 0:  # and through the command line: one line on stderr, never exit 70
                for argv in (["info", str(path)], ["classify", "image", "--model", str(path), str(SAMPLE)]):
                    tally.run(f"cli {argv[0]} {kind}", lambda argv=argv: _cli_ok(argv))
    return tally.report()


SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "digit-7-dark-on-light.pgm"
DECOMPOSED_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "digits-gru2-int8-decomposed.onnx"


def _cli_ok(argv: list[str]) -> bool:
    """Run the CLI in this process; True when it ends with 0, 1 or 2 and at most one stderr line."""
    from edgeinfer.cli import main as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    lines = err.getvalue().splitlines()
    if code not in (0, 1, 2) or len(lines) > 1:
        raise AssertionError(f"exit {code}, stderr {err.getvalue()[:200]!r}")
    return True


def _odd_inputs(rng: np.random.Generator, features: int) -> list[Any]:
    shapes = [(), (0,), (features,), (1, features), (3, features), (1, 5, features), (2, 0, features), (1, 5, 3),
              (4,), (2, 3), (1, 1, 1, features), (1, 28, features + 1)]
    shape = shapes[int(rng.integers(len(shapes)))]
    pool: list[Any] = [
        None, "text", b"bytes", {}, {"a": 1}, [None], [[1, 2], [3]], [["a"]], object(), 3, -7, 2**70, 1.5, True,
        np.zeros(shape, np.float64), np.full(shape, np.nan, np.float32), np.full(shape, np.inf, np.float32),
        np.zeros(shape, np.complex64), np.zeros(shape, bool), np.array(["x"] * max(1, int(np.prod(shape)))),
        rng.standard_normal(shape).astype(np.float32), rng.integers(-5, 100_000, shape), np.zeros(shape, object),
        (i for i in range(3)), [1e40] * features, list(rng.standard_normal(features)),
    ]
    return pool


def input_cases(models: dict[str, edgeinfer.Model], rng: np.random.Generator
                ) -> Iterator[tuple[str, Callable[[], bool]]]:
    """Odd values to every public entry point that takes input."""
    digits, sentiment, chars = models["digits"], models["sentiment"], models["characters"]
    for _ in range(3):
        for value in _odd_inputs(rng, 28):
            yield from (
                ("predict", lambda v=value: finite_probabilities(digits.predict(v), 10)),
                ("stream.step", lambda v=value: finite_probabilities(digits.stream().step(v), 10)),
                ("stream.feed", lambda v=value: finite_probabilities(digits.stream().feed(v), 10)),
                ("early_exit", lambda v=value: finite_probabilities(digits.early_exit(v, 0.9).probabilities, 10)),
                ("early_exit threshold", lambda v=value: finite_probabilities(
                    digits.early_exit(np.zeros((28, 28), np.float32), v).probabilities, 10)),
                ("token step", lambda v=value: finite_probabilities(chars.stream().step(v), chars.spec.classes)),
                ("text predict", lambda v=value: finite_probabilities(sentiment.predict([v]), 2)),
                ("text predict list", lambda v=value: finite_probabilities(sentiment.predict(v), 2)),
                ("text feed", lambda v=value: sentiment.text_stream().feed(v) is None),
                ("batch step", lambda v=value: _batch_step(digits, v)),
                ("stream batch size", lambda v=value: digits.stream(v) is not None),
                ("generate", lambda v=value: len("".join(edgeinfer.generate(chars, v, 3))) == 3),
                ("generate args", lambda v=value: len("".join(edgeinfer.generate(chars, "a", 3, v, seed=1))) == 3),
                ("score", lambda v=value: np.isfinite(edgeinfer.score(chars, v))),
            )
    for i in range(420):
        yield "snapshot", _snapshot_case(chars, np.random.default_rng([SEED, 7, i]))


def _batch_step(model: edgeinfer.Model, value: Any) -> bool:
    batch = model.stream_batch()
    handles = [batch.open(), batch.open()]
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[0] != 2:
        return finite_probabilities(batch.step([None, handles[0]], value), 10)
    return finite_probabilities(batch.step(handles, value), 10)


def _npz(meta: Any, arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def _snapshot_case(model: edgeinfer.Model, rng: np.random.Generator) -> Callable[[], bool]:
    stream = model.stream()
    stream.feed(np.array([5, 6, 7], np.int64))
    snap = stream.snapshot()
    good = snap.to_bytes()
    meta = {"magic": "edgeinfer-snapshot-1", "model": snap.model, "steps": snap.steps}
    arrays = {f"state.{k}": v for k, v in snap.state.items()} | {"logits": snap.logits}
    how = int(rng.integers(10))
    if how == 0:
        data: Any = _flip(good, rng)
    elif how == 1:
        data = good[: int(rng.integers(len(good)))]
    elif how == 2:
        key = ["magic", "model", "steps"][int(rng.integers(3))]
        data = _npz({**meta, key: BAD_VALUES[int(rng.integers(len(BAD_VALUES)))]}, arrays)
    elif how == 3:
        data = _npz(BAD_VALUES[int(rng.integers(len(BAD_VALUES)))], arrays)
    elif how == 4:
        name = list(arrays)[int(rng.integers(len(arrays)))]
        arr = arrays[name]
        bad = [arr.astype(np.float64), arr[..., :1], np.full_like(arr, np.nan), arr.astype(np.int32), np.zeros(()),
               arr[None]][int(rng.integers(6))]
        data = _npz(meta, {**arrays, name: bad})
    elif how == 5:
        data = _npz(meta, {**arrays, "extra": np.zeros(3)})
    elif how == 6:
        data = _bomb(int(rng.integers(1, 4)) << 22)
    elif how == 7:
        data = _lying_header(good)
    elif how == 8:
        data = edgeinfer.Snapshot(snap.model, {k: v for k, v in snap.state.items() if rng.random() < 0.5},
                                  snap.logits, int(rng.integers(-5, 5)))
    else:
        data = rng.bytes(int(rng.integers(0, 2048)))
    return lambda: _restored(model, data)


def _restored(model: edgeinfer.Model, data: Any) -> bool:
    stream = model.stream()
    stream.restore(data)
    return finite_probabilities(stream.step(3), model.spec.classes)


def _bomb(size: int) -> bytes:
    """A small zip whose member inflates to `size` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open("state.h.npy", "w", force_zip64=True) as f:
        chunk = b"\0" * (1 << 22)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return buf.getvalue()


def _lying_header(good: bytes) -> bytes:
    """The snapshot with one member's .npy header declaring a vast shape."""
    src = zipfile.ZipFile(io.BytesIO(good))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if name.startswith("state."):
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                            "shape": (1 << 28, 1 << 8)})
                data = head.getvalue() + data[128:]
            out.writestr(name, data)
    return buf.getvalue()


def run_inputs() -> dict[str, Any]:
    models = {name: edgeinfer.load(name, intra_op_threads=1) for name in ("digits", "sentiment", "characters")}
    tally = Tally()
    for kind, case in input_cases(models, np.random.default_rng(SEED)):
        tally.run(kind, case)
    return tally.report()


def main(argv: list[str]) -> None:
    with contextlib.redirect_stderr(io.StringIO()):  # onnxruntime's own warnings
        report = run_models(int(argv[1]), int(argv[2])) if argv[0] == "models" else run_inputs()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
