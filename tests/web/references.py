"""Reference data from the Python runtime for the JavaScript runtime's tests (web/test/).

    .venv/bin/python -m tests.web.references OUT_DIR
    EDGEINFER_WEB_REFS=OUT_DIR EDGEINFER_WEB_OUT=OUT_DIR/js node --test web/test/

Torch-free: the Python runtime, numpy and tests/datasets.py (the real data in ../shared/data).
Written to OUT_DIR: `manifest.json` (what follows, with the names of the binary files), and the
binary files themselves: float32 / int32 / uint32 little-endian arrays, row-major, and UTF-8 text.

- per built-in model (digits, sentiment, characters): its spec as `ModelSpec.to_dict()` gives it,
  its sha256; predictions on fixed real inputs (digits: 8 MNIST test images; sentiment: 59 IMDB
  test reviews of all lengths and a few edge texts, one longer than 65,536 characters); 100
  stream steps on real inputs and the probabilities and state after each; two chunks read with
  `feed` and the probabilities and state after each; a snapshot after 50 steps (its bytes, and
  its state as raw arrays), 40 forms of it with one state value changed, each with Python's
  refusal or its answers after one step, and 60 damaged copies of its bytes with Python's
  verdict; sentiment: 5,000 short texts (more than one of predict's chunks) and a review read
  through a TextStream in 37-character pieces;
- characters: greedy generation (temperature 0) of 50 characters from two prompts, and the score
  of 400 validation characters in nats per character;
- the token ids of all 25,000 IMDB test reviews (texts and ids as one blob plus offsets), the
  character ids of the Tiny Shakespeare validation text (its last 10%, as train.tasks.char_corpus
  splits it), and Python's Unicode tables (`[^\\W_]`, lower-casing, assigned code points);
- the test fixture models (tests/fixtures, every cell and readout): logits of a fixed input;
- 60 damaged copies each of digits and motions (bits flipped, bytes overwritten, cut short) and
  what Python makes of each: its error's class and words, or its answers after one step;
- 400 edited specs of the four built-ins (fields changed, removed, added) as JSON text, and
  Python's SpecError words or the spec it reads.

Every session runs on one intra-op thread, as onnxruntime-web's wasm does by default: int8 LSTMs
(DynamicQuantizeLSTM) give slightly different numbers with more threads.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

import edgeinfer
from edgeinfer.errors import EdgeInferError, InputError, SpecError
from edgeinfer.preprocess.image import normalize
from edgeinfer.preprocess.text import CharTokenizer, Tokenizer
from edgeinfer.spec import CharInput, ModelSpec, TextInput
from tests import datasets

ROOT = Path(__file__).resolve().parents[2]


def native_int8_saturates() -> bool:
    """True when this machine's onnxruntime computes uint8 x int8 products with int16 pair sums that
    saturate (x86 without VNNI: AVX2's vpmaddubsw), measured on one product: 64 x (255 x 127) is
    2,072,640 exactly, 1,048,544 saturated. onnxruntime-web (wasm) and VNNI CPUs are exact, so
    there the two runtimes' int8 results are compared more loosely (web/test/models.test.js)."""
    from onnx import TensorProto, helper, numpy_helper  # the probe graph (onnx: the full venv's)

    w = numpy_helper.from_array(np.full((64, 1), 127, np.int8), "w")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "probe",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = int(sess.run(None, {"a": np.full((1, 64), 255, np.uint8)})[0][0, 0])
    return got != 64 * 255 * 127
MODELS = ("digits", "sentiment", "characters")
FIXTURES = ("digits-rnn1", "digits-rnn2", "digits-lstm1", "digits-lstm2", "digits-gru1", "digits-gru2",
            "sentiment-gru2", "sentiment-gru1-readout", "sentiment-gru1-short", "characters-lstm-int8",
            *(f"{b}-int8-decomposed" for b in ("digits-rnn1", "digits-lstm1", "digits-gru2", "sentiment-gru1-readout",
                                               "sentiment-gru1-short")))
STEPS = 100
SNAPSHOT_AT = 50
SPEC_EDITS = 400  # edited specs, a quarter of them each built-in's
DAMAGED_FILES = 60  # per model (digits, motions): altered copies of the file
DAMAGED_SNAPSHOTS = 60  # per model: altered copies of the snapshot's bytes
IMPOSSIBLE_CASES = 40  # per model: the snapshot with one state value changed
IMPOSSIBLE_VALUES = (3e38, -3e38, -5.0, 1e6, -1.0, 2.0, 0.5, 30.0)
FEED_CUTS = (0, 30, 64)  # feed the first 30 steps, then the next 34
PROMPTS = ("ROMEO:", "First Citizen:\nBefore we proceed any further, hear me")
GENERATE_CHARS = 50
SCORE_CHARS = 400
EDGE_TEXTS = (
    "I don\u2019t think it\u2019s bad <br /><BR/>at all!!! Great\u2026",
    "\u00dcn\u00efc\u00f6d\u00e9 w\u00f6rds, \u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 \u0130stanbul "
    "\ufb01ne \u00bd \u0663 \U0001d518\U0001d52b\U0001d526",
    "x", "a" * 5000 + " end", "10/10 would watch again?!", "A great film, not a bad one. " * 2500,  # > 65,536 chars
)
TEXT_PIECE = 37  # characters per piece when a review is read through a TextStream
BULK_TEXTS = 5000  # more than one chunk of predict (CHUNK_TEXTS = 4096)


class Writer:
    """Writes binary files into OUT_DIR and remembers their names."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)

    def array(self, name: str, arr: np.ndarray, dtype: str) -> dict[str, Any]:
        data = np.ascontiguousarray(arr, dtype=dtype)
        data.tofile(self.out / name)
        return {"file": name, "dims": list(data.shape), "dtype": np.dtype(dtype).name}

    def bytes(self, name: str, data: bytes) -> str:
        (self.out / name).write_bytes(data)
        return name


def _ragged(w: Writer, name: str, rows: list[np.ndarray]) -> dict[str, Any]:
    """Rows of int32 ids as one array plus uint32 offsets (N + 1)."""
    offsets = np.zeros(len(rows) + 1, np.uint32)
    offsets[1:] = np.cumsum([len(r) for r in rows])
    flat = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
    return {"values": w.array(f"{name}.i32", flat, "<i4"), "offsets": w.array(f"{name}.offsets.u32", offsets, "<u4")}


def _texts(w: Writer, name: str, texts: list[str]) -> dict[str, Any]:
    """Texts as one UTF-8 blob plus uint32 byte offsets (N + 1)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(texts) + 1, np.uint32)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    return {"utf8": w.bytes(f"{name}.utf8", b"".join(encoded)),
            "offsets": w.array(f"{name}.offsets.u32", offsets, "<u4")}


def _damaged(good: bytes, rng: np.random.Generator, i: int, kinds: tuple[str, ...]) -> bytes:
    """Case i of damage to `good`, the kinds taken in turn, one to three changes each: "flip" bits
    anywhere, "flip_tail" bits in the last 200 kB (a model file's spec, checksums and step graph),
    "flip_head" bits in the first 4 kB (its graph's header), "overwrite" bytes, "cut" it short."""
    bad = bytearray(good)
    kind = kinds[i % len(kinds)]
    if kind == "cut":
        return bytes(bad[: int(rng.integers(len(bad)))])
    for _ in range(1 + (i // len(kinds)) % 3):
        at = {"flip_tail": len(bad) - 1 - int(rng.integers(min(len(bad), 200_000))),
              "flip_head": int(rng.integers(min(len(bad), 4096)))}.get(kind, int(rng.integers(len(bad))))
        bad[at] = int(rng.integers(256)) if kind == "overwrite" else bad[at] ^ 1 << int(rng.integers(8))
    return bytes(bad)


def _impossible_refs(model: edgeinfer.Model, snapshot: edgeinfer.Snapshot, x: Any) -> list[dict[str, Any]]:
    """The snapshot with one state value changed (IMPOSSIBLE_CASES, seeded), and what Python does
    with each: the message of its refusal, or the answers after one step from it."""
    rng = np.random.default_rng(28)
    cases = []
    for _ in range(IMPOSSIBLE_CASES):
        state = {k: v.copy() for k, v in snapshot.state.items()}
        key = sorted(state)[int(rng.integers(len(state)))]
        index = int(rng.integers(state[key].size))
        value = float(rng.choice(IMPOSSIBLE_VALUES))
        state[key].flat[index] = value
        case: dict[str, Any] = {"key": key, "index": index, "value": value, "refused": None, "probs": None}
        stream = model.stream()
        try:
            stream.restore(edgeinfer.Snapshot(snapshot.model, state, snapshot.logits, snapshot.steps))
            case["probs"] = stream.step(x).tolist()
        except InputError as exc:
            case["refused"] = str(exc)
        cases.append(case)
    return cases


def _damaged_snapshot_refs(w: Writer, model: edgeinfer.Model, name: str, good: bytes) -> list[dict[str, Any]]:
    """DAMAGED_SNAPSHOTS altered copies of a snapshot's bytes (bits flipped, bytes overwritten,
    cut short; seeded) and what Python's restore makes of each: its words, or the steps restored."""
    rng = np.random.default_rng(30)
    cases = []
    for i in range(DAMAGED_SNAPSHOTS):
        bad = _damaged(good, rng, i, ("flip", "overwrite", "cut"))
        file = w.bytes(f"{name}.snap.damaged{i}.npz", bad)
        case: dict[str, Any] = {"bytes": file, "refused": None, "steps": None}
        stream = model.stream()
        try:
            stream.restore(bad)
            case["steps"] = stream.steps
        except InputError as exc:
            case["refused"] = str(exc)
        cases.append(case)
    return cases


def _stream_refs(w: Writer, model: edgeinfer.Model, name: str, inputs: np.ndarray) -> dict[str, Any]:
    """100 steps, feed chunks, a snapshot after SNAPSHOT_AT steps, and impossible forms of it."""
    stream = model.stream()
    probs, states, snapshot = [], [], None
    for t in range(STEPS):
        if t == SNAPSHOT_AT:
            snapshot = stream.snapshot()
        probs.append(stream.step(inputs[t]))
        states.append(stream.state)
    assert snapshot is not None
    feed = model.stream()
    chunks = []
    for a, b in itertools.pairwise(FEED_CUTS):
        p = feed.feed(inputs[a:b])
        chunks.append({"start": a, "end": b, "probs": w.array(f"{name}.feed{a}.p.f32", p, "<f4"),
                       "state": {k: w.array(f"{name}.feed{a}.{k}.f32", v, "<f4") for k, v in feed.state.items()}})
    dtype = "<i4" if model.spec.reads_tokens else "<f4"
    return {
        "inputs": w.array(f"{name}.steps.x.{dtype[1:]}", inputs[:STEPS], dtype),
        "probs": w.array(f"{name}.steps.p.f32", np.stack(probs), "<f4"),
        "states": {k: w.array(f"{name}.steps.{k}.f32", np.stack([st[k] for st in states]), "<f4") for k in states[0]},
        "feed": chunks,
        "snapshot": {"at": SNAPSHOT_AT, "bytes": w.bytes(f"{name}.snap{SNAPSHOT_AT}.npz", snapshot.to_bytes()),
                     "state": {k: w.array(f"{name}.snap{SNAPSHOT_AT}.{k}.f32", v, "<f4")
                               for k, v in snapshot.state.items()},
                     "logits": w.array(f"{name}.snap{SNAPSHOT_AT}.logits.f32", snapshot.logits, "<f4"),
                     "impossible": _impossible_refs(model, snapshot, inputs[SNAPSHOT_AT]),
                     "damaged": _damaged_snapshot_refs(w, model, name, snapshot.to_bytes())},
    }


def _model_refs(path: Path, model: edgeinfer.Model) -> dict[str, Any]:
    return {"path": str(path), "fingerprint": model.fingerprint, "spec": model.spec.to_dict()}


def digits_refs(w: Writer, root: Path) -> dict[str, Any]:
    images, labels = datasets.mnist_test(root)
    path = edgeinfer.builtin_models()["digits"]
    model = edgeinfer.load(path, intra_op_threads=1)
    x = normalize(images[:8].astype(np.float32) / 255.0, model.spec.input).astype(np.float32)
    rows = x[:4].reshape(-1, x.shape[2])  # four digits' rows, one after another
    return {**_model_refs(path, model),
            "predict": {"input": w.array("digits.predict.x.f32", x, "<f4"), "labels": labels[:8].tolist(),
                        "probs": w.array("digits.predict.p.f32", model.predict(x), "<f4")},
            **_stream_refs(w, model, "digits", rows)}


def sentiment_refs(w: Writer, reviews: list[str]) -> dict[str, Any]:
    path = edgeinfer.builtin_models()["sentiment"]
    model = edgeinfer.load(path, intra_op_threads=1)
    texts = [reviews[i] for i in range(0, len(reviews), len(reviews) // 59)][:59] + list(EDGE_TEXTS)
    tok = Tokenizer(model.spec.require_input(TextInput))
    ids = np.array([i for r in reviews[:3] for i in tok.encode(r)][:STEPS], np.int64)
    rng = np.random.default_rng(1)  # many short texts: predict's chunks (CHUNK_TEXTS) and batches
    vocab = np.array(model.spec.require_input(TextInput).vocab[:3000])
    bulk = [" ".join(rng.choice(vocab, int(rng.integers(1, 40)))) for _ in range(BULK_TEXTS)]
    text_stream = model.text_stream()
    review = reviews[1]
    for start in range(0, len(review), TEXT_PIECE):
        text_stream.feed(review[start : start + TEXT_PIECE])
    final = text_stream.finish()
    return {**_model_refs(path, model),
            "predict": {"texts": texts, "probs": w.array("sentiment.predict.p.f32", model.predict(texts), "<f4")},
            "bulk": {"texts": _texts(w, "sentiment.bulk", bulk),
                     "probs": w.array("sentiment.bulk.p.f32", model.predict(bulk), "<f4")},
            "text_stream": {"text": review, "piece": TEXT_PIECE, "words": text_stream.words,
                            "probs": w.array("sentiment.text_stream.p.f32", final, "<f4")},
            **_stream_refs(w, model, "sentiment", ids)}


def characters_refs(w: Writer, val: str) -> dict[str, Any]:
    path = edgeinfer.builtin_models()["characters"]
    model = edgeinfer.load(path, intra_op_threads=1)
    tok = CharTokenizer(model.spec.require_input(CharInput))
    ids = np.array(tok.encode(val[:STEPS]), np.int64)
    generated = [{"prompt": p, "chars": GENERATE_CHARS,
                  "text": "".join(edgeinfer.generate(model, p, GENERATE_CHARS, temperature=0))} for p in PROMPTS]
    text = val[:SCORE_CHARS]
    return {**_model_refs(path, model), "generate": generated,
            "score": {"text": text, "nats": edgeinfer.score(model, text)},
            **_stream_refs(w, model, "characters", ids)}


def fixture_refs(w: Writer) -> dict[str, Any]:
    """Each fixture model's logits (sequence graph) of a fixed input, and 5 steps' probabilities."""
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for name in FIXTURES:
        path = ROOT / "tests" / "fixtures" / f"{name}.onnx"
        model = edgeinfer.load(path, intra_op_threads=1)
        vocab = model.spec.token_vocab
        if vocab is None:
            x = rng.standard_normal((3, 7, model.spec.input_size)).astype(np.float32)
            ref = w.array(f"fixture.{name}.x.f32", x, "<f4")
        else:
            x = rng.integers(2, vocab.vocab_size, (3, 7)).astype(np.int64)
            ref = w.array(f"fixture.{name}.x.i32", x, "<i4")
        stream = model.stream()
        steps = np.stack([stream.step(x[0, t]) for t in range(5)])
        out[name] = {**_model_refs(path, model), "input": ref,
                     "logits": w.array(f"fixture.{name}.y.f32", model.predict_logits(x) if vocab is None
                                       else model.sequence_logits(x), "<f4"),
                     "steps": w.array(f"fixture.{name}.steps.p.f32", steps, "<f4")}
    return out


def damaged_file_refs(w: Writer) -> list[dict[str, Any]]:
    """DAMAGED_FILES altered copies of two built-ins (bits flipped near the end, where the spec,
    checksums and step graph are, or in the graph's first 4 kB; bytes overwritten anywhere; cut
    short), seeded, and what Python makes of each: the error's class and words, or the answers
    after one step."""
    rng = np.random.default_rng(29)
    cases = []
    for name in ("digits", "motions"):
        good = edgeinfer.builtin_models()[name].read_bytes()
        for i in range(DAMAGED_FILES):
            bad = _damaged(good, rng, i, ("flip_tail", "overwrite", "cut", "flip_head"))
            file = w.bytes(f"damaged.{name}.{i}.onnx", bad)
            case: dict[str, Any] = {"file": file, "error": None, "message": None, "probs": None}
            try:
                model = edgeinfer.load(w.out / file, intra_op_threads=1)
                case["probs"] = model.stream().step(np.full(model.spec.input_size, 0.2, np.float32)).tolist()
            except EdgeInferError as exc:
                case["error"], case["message"] = type(exc).__name__, str(exc)
            cases.append(case)
    return cases


SPEC_VALUES = (0, 1, -1, 2, 3, 7, 64, 65, 256, 1 << 40, 1e30, -1e30, 0.5, 1.0, 2.0, -0.0, "", "x", "h", "y", "p",
               "gru", "lstm", "rnn", "int8", "fp32", "classes", "values", "step", "sequence", "features", "words",
               "chars", "image", None, True, False, [], [1], {}, {"a": 1})


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into parsed JSON, the root's own included."""
    found = [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found += _paths(inner, (*path, key))
    return found


def spec_edit_refs() -> list[dict[str, Any]]:
    """SPEC_EDITS edited specs of the four built-ins (a field set to another value or kind,
    removed, or a field added; one or two edits each; seeded) as JSON text, and what Python makes
    of each: its SpecError's words, or the spec it reads (`to_dict`)."""
    import random

    rnd = random.Random(31)
    cases = []
    for name in ("digits", "sentiment", "characters", "motions"):
        base = json.loads(edgeinfer.load(name).spec.to_json())
        paths = [p for p in _paths(base) if p and p[0] not in ("metrics", "provenance", "quantization")
                 and not any(type(k) is int and k >= 2 for k in p)]  # a list's later items are like its first
        for i in range(SPEC_EDITS // 4):
            raw = json.loads(json.dumps(base))
            for _ in range(1 + i % 2):
                *parents, last = rnd.choice(paths)
                try:
                    parent = raw
                    for key in parents:
                        parent = parent[key]
                    roll = rnd.random()
                    if roll < 0.15 and isinstance(parent, dict):
                        parent.pop(last, None)
                    elif roll < 0.25 and isinstance(parent, dict):
                        parent[f"zz_{last}"] = rnd.choice(SPEC_VALUES)
                    else:
                        parent[last] = json.loads(json.dumps(rnd.choice(SPEC_VALUES)))
                except (KeyError, IndexError, TypeError):
                    pass  # an earlier edit took the path away
            text = json.dumps(raw)
            case: dict[str, Any] = {"model": name, "text": text, "error": None, "spec": None}
            try:
                case["spec"] = ModelSpec.from_json(text).to_dict()
            except SpecError as exc:
                case["error"] = str(exc)
            cases.append(case)
    return cases


def unicode_refs(w: Writer) -> dict[str, Any]:
    """Python's `[^\\W_]` (str.isalnum) and assigned code points as bitsets, and its lower-casing."""
    size = 0x110000
    alnum = np.zeros(size, bool)
    assigned = np.zeros(size, bool)
    lower: dict[str, str] = {}
    for cp in range(size):
        c = chr(cp)
        alnum[cp] = c.isalnum()
        assigned[cp] = unicodedata.category(c) != "Cn"
        low = c.lower()
        if low != c and not 0xD800 <= cp < 0xE000:
            lower[str(cp)] = low
    (w.out / "unicode.lower.json").write_text(json.dumps(lower))
    return {"version": unicodedata.unidata_version,
            "alnum": w.bytes("unicode.alnum.bits", np.packbits(alnum, bitorder="little").tobytes()),
            "assigned": w.bytes("unicode.assigned.bits", np.packbits(assigned, bitorder="little").tobytes()),
            "lower": "unicode.lower.json"}


def write_references(out: Path, root: Path | None = None) -> dict[str, Any]:
    """Write every reference into `out`; returns the manifest (also written as manifest.json)."""
    root = root or datasets.data_dir()
    w = Writer(out)
    reviews, labels = datasets.imdb_test(root)
    text = (root / "text" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    val = text[int(len(text) * 0.9):]  # as train.tasks.char_corpus splits it
    sentiment = sentiment_refs(w, reviews)
    characters = characters_refs(w, val)
    spec = edgeinfer.load("sentiment").spec.require_input(TextInput)
    tok = Tokenizer(spec)
    chars = CharTokenizer(edgeinfer.load("characters").spec.require_input(CharInput))
    manifest = {
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "onnxruntime": onnxruntime.__version__},
        "native_int8": "saturating" if native_int8_saturates() else "exact",
        "models": {"digits": digits_refs(w, root), "sentiment": sentiment, "characters": characters},
        "fixtures": fixture_refs(w),
        "damaged_files": damaged_file_refs(w),
        "spec_edits": spec_edit_refs(),
        "legacy": [str(p) for p in sorted((ROOT / "tests" / "fixtures" / "legacy").glob("*.onnx"))],
        "imdb": {"count": len(reviews), "texts": _texts(w, "imdb.texts", reviews),
                 "ids": _ragged(w, "imdb.ids", [np.array(tok.encode(r), np.int32) for r in reviews]),
                 "words": [tok.words(r) for r in reviews[:200]], "labels": labels[:200].tolist()},
        "shakespeare": {"chars": len(val), "text": w.bytes("shakespeare.val.utf8", val.encode("utf-8")),
                        "ids": w.array("shakespeare.val.i32", np.array(chars.encode(val), np.int32), "<i4")},
        "unicode": unicode_refs(w),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.web.references", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="folder to write the references into")
    a = p.parse_args(argv)
    write_references(a.out)
    print(f"wrote {a.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
