"""The spec as the single source of truth: every field validated, every field read by the code it
describes, older formats still loading, specs hashable; the public API and load-time provider checks."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math

import numpy as np
import pytest

import edgeinfer
from edgeinfer import InputError, ModelFileError, ProviderError, SpecError, WrongTaskError
from edgeinfer.core import LoadedModel
from edgeinfer.preprocess.image import read_gray
from edgeinfer.preprocess.text import CharTokenizer, Tokenizer
from edgeinfer.spec import FORMAT_VERSION, CharInput, ImageInput, ModelSpec, TextInput, VocabInput, parse_input
from tests.conftest import ROOT, run_cli

BUILTINS = ("digits", "sentiment", "characters")


@pytest.fixture(scope="module")
def specs() -> dict[str, ModelSpec]:
    return {name: edgeinfer.load(name).spec for name in BUILTINS}


def test_round_trip_equality_and_hash(specs) -> None:
    for spec in specs.values():
        again = ModelSpec.from_json(spec.to_json())
        assert again == spec and hash(again) == hash(spec)
        assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert len(set(specs.values())) == 3
    assert specs["digits"] != specs["sentiment"]


# (where, bad value): each replaces one field of the digits or sentiment spec and must be refused
BAD_FIELDS = [
    ("task", None), ("task", 3), ("task", "poetry"), ("cell", ["lstm"]), ("cell", "transformer"),
    ("layers", "1"), ("layers", 1.5), ("layers", True), ("layers", 0), ("layers", -3), ("layers", 10**9),
    ("hidden", None), ("hidden", 0), ("hidden", 10**12), ("input_size", 0), ("input_size", "28"),
    ("labels", []), ("labels", "0123456789"), ("labels", [0, 1]), ("labels", ["a"] * 10), ("labels", None),
    ("precision", "int4"), ("precision", 8), ("quantization", 1), ("opset", 0), ("opset", "17"),
    ("metrics", []), ("metrics", {"test_accuracy": "high"}), ("metrics", {"x": True}),
    ("provenance", "me"), ("state", {}), ("state", [1, 2]), ("state", []), ("io", []), ("readout", 5),
    ("input", []), ("input", {"kind": "audio"}), ("input", {"kind": None}),
    ("format_version", "3"), ("format_version", 0), ("format_version", None), ("format_version", 99),
    ("unknown_field", 1),
    ("input.rows", 0), ("input.rows", "28"), ("input.cols", 27), ("input.scale", 0), ("input.scale", -1.0),
    ("input.std", 0.0), ("input.mean", "0.1"), ("input.fit_px", 0), ("input.fit_px", 29), ("input.extra", 1),
    ("state.0.name", "hidden"), ("state.0.layers", 2), ("state.0.hidden", 7), ("state.0.dtype", "float64"),
    ("state.0.initial", "0"), ("state.0.output", ""), ("state.0.output", "y"), ("state.0.output", "\x1b[2J"),
    ("state.0.output", 7), ("state.1.output", "h_next"), ("state.0.bogus", 1),
    ("io.output", ""), ("io.output", "h"), ("io.seq_input", 3), ("io.step_probabilities", "y"),
    ("io.lengths", "x"), ("io.other", "z"), ("io.batch_steps_from", -1), ("io.batch_steps_from", 2**21),
    ("io.batch_steps_from", "64"), ("io.batch_steps_from", 1.5),
]
BAD_SENTIMENT_FIELDS = [
    ("input.vocab", "the movie"), ("input.vocab", ["the", "the"]), ("input.vocab", ["the", ""]),
    ("input.vocab", ["the", 3]), ("input.pad_id", -1), ("input.pad_id", 1), ("input.unk_id", 10**7),
    ("input.unk_id", "1"), ("input.lowercase", "yes"), ("readout.ngram_buckets", -1),
    ("readout.ngram_buckets", 10**12), ("readout.ngram_order", 1), ("readout.ngram_order", 99),
    ("readout.ngram_pool", "median"), ("readout.pool", "no"), ("task", "characters"),
]


def _set(raw: dict, where: str, value: object) -> None:
    *path, last = where.split(".")
    node: object = raw
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]


@pytest.mark.parametrize(("task", "cases"), [("digits", BAD_FIELDS), ("sentiment", BAD_SENTIMENT_FIELDS)])
def test_every_bad_field_is_a_spec_error(specs, task, cases) -> None:
    base = json.loads(specs[task].to_json())
    refused = 0
    for where, value in cases:
        raw = copy.deepcopy(base)
        _set(raw, where, value)
        with pytest.raises(SpecError) as info:
            ModelSpec.from_json(json.dumps(raw))
        assert "\n" not in str(info.value), where
        refused += 1
    assert refused == len(cases)


def test_json_nan_deep_nesting_and_missing_fields(specs) -> None:
    text = specs["digits"].to_json()
    with pytest.raises(SpecError, match="NaN"):
        ModelSpec.from_json(text.replace('"initial": 0.0', '"initial": NaN', 1))
    with pytest.raises(SpecError, match="Infinity"):
        ModelSpec.from_json(text.replace('"mean": 0.1307', '"mean": -Infinity'))
    with pytest.raises(SpecError, match="nested deeper"):
        ModelSpec.from_json(text.replace('"provenance": {', '"provenance": {"deep": ' + "[" * 50_000
                                         + "]" * 50_000 + ", ", 1))
    with pytest.raises(SpecError, match="nested deeper"):
        ModelSpec.from_json(text.replace('"provenance": {', '"provenance": {"deep": ' + "[" * 40 + "]" * 40 + ", ", 1))
    raw = json.loads(text)
    del raw["cell"]
    with pytest.raises(SpecError, match="missing"):
        ModelSpec.from_dict(raw)
    with pytest.raises(SpecError, match="finite numbers"):
        ModelSpec.from_dict({**json.loads(text), "input": {**raw["input"], "std": math.inf}})
    for not_a_spec in ("[]", '"spec"', "3", "{", ""):
        with pytest.raises(SpecError):
            ModelSpec.from_json(not_a_spec)


def test_older_formats_load_with_their_defaults(specs) -> None:
    raw = json.loads(specs["sentiment"].to_json())
    raw["format_version"] = 2
    del raw["readout"]["ngram_pool"]  # format 2: no ngram_pool, the mean pool
    assert ModelSpec.from_dict(raw).readout.ngram_pool == "mean"
    digits = json.loads(specs["digits"].to_json())
    digits["format_version"] = 1
    del digits["readout"]  # format 1: no readout at all
    old = ModelSpec.from_dict(digits)
    assert old.readout == edgeinfer.spec.Readout() and old.format_version == 1
    assert FORMAT_VERSION == 6


def test_typed_input_helpers(specs) -> None:
    d, s, c = specs["digits"], specs["sentiment"], specs["characters"]
    assert isinstance(d.require_input(ImageInput), ImageInput) and d.token_vocab is None and not d.reads_tokens
    assert s.token_vocab is s.input and s.reads_tokens and c.token_vocab is c.input
    with pytest.raises(WrongTaskError, match="a sentiment model reads words; expected a model that reads image"):
        s.require_input(ImageInput)
    with pytest.raises(WrongTaskError, match="reads chars"):
        c.require_input(TextInput)
    assert parse_input({"kind": "chars", "vocab": ["a", "b"]}) == CharInput(vocab=("a", "b"))


def test_tokenizer_reads_case_and_special_ids_from_the_spec() -> None:
    vocab = ("the", "movie", "The")
    plain = Tokenizer(TextInput(vocab=vocab))
    assert plain.encode("The movie") == [2, 3]  # lower-cased, then looked up
    cased = Tokenizer(TextInput(vocab=vocab, lowercase=False))
    assert cased.encode("The movie zebra") == [4, 3, 1]
    moved = Tokenizer(TextInput(vocab=vocab, pad_id=4, unk_id=0))  # words take ids 1, 2, 3
    assert moved.encode("the movie zebra") == [1, 2, 0]
    assert VocabInput(vocab=vocab, pad_id=4, unk_id=0).token_ids == (1, 2, 3)
    chars = CharTokenizer(CharInput(vocab=("a", "b"), pad_id=3, unk_id=2))
    assert chars.encode("abz") == [0, 1, 2] and chars.chars == ("a", "b", "\ufffd", "")


def test_image_scale_is_read_from_the_spec(tmp_path) -> None:
    from PIL import Image

    path = tmp_path / "g.png"
    Image.fromarray(np.array([[0, 51], [102, 255]], np.uint8), mode="L").save(path)
    assert np.allclose(read_gray(path), [[0, 0.2], [0.4, 1.0]])
    assert np.allclose(read_gray(path, scale=1 / 510), [[0, 0.1], [0.2, 0.5]])


def test_graph_names_and_class_count_are_checked_against_the_spec() -> None:
    model = LoadedModel("digits")
    model.spec = dataclasses.replace(model.spec, io=dataclasses.replace(model.spec.io, output="logits"))
    with pytest.raises(ModelFileError, match=r"do not match the spec \(missing \['logits'\]"):
        model.session("sequence")
    model = LoadedModel("digits")
    model.spec = dataclasses.replace(model.spec, labels=tuple("abcdefghi"))
    with pytest.raises(ModelFileError, match="gives 10 classes but the spec has 9 labels"):
        model.session("step")


def test_missing_provider_fails_at_load() -> None:
    with pytest.raises(ProviderError, match="'NoSuchExecutionProvider' is not available"):
        edgeinfer.load("digits", providers="NoSuchExecutionProvider")
    with pytest.raises(ProviderError, match="provider names"):
        edgeinfer.load("digits", providers=[3])  # type: ignore[list-item]


def test_provider_in_use_must_be_the_one_asked_for(monkeypatch) -> None:
    import edgeinfer.session as session

    real = session._Session

    class FellBack(real):  # type: ignore[misc, valid-type]
        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    def cuda_then_cpu(asked: object) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    monkeypatch.setattr(session, "resolve_providers", cuda_then_cpu)
    monkeypatch.setattr(edgeinfer.core, "resolve_providers", cuda_then_cpu)
    monkeypatch.setattr(session, "_Session", lambda data, sess_options, providers: FellBack(
        data, sess_options=sess_options, providers=["CPUExecutionProvider"]))
    with pytest.raises(ProviderError, match="asked for CUDAExecutionProvider but onnxruntime runs it on "
                                            "CPUExecutionProvider"):
        edgeinfer.load("digits", providers="cuda").predict(np.zeros((1, 28, 28), np.float32))


def test_no_provider_fallback_and_nothing_printed(tmp_path, capfd) -> None:
    """onnxruntime retries a failing session on the CPU and prints "EP Error" to stdout; never here."""
    import contextlib
    import io

    import onnxruntime as ort

    import edgeinfer.session as session
    from tests.edgeinfer.fuzz import model_cases

    for _, data in model_cases(edgeinfer.core.builtin_models()["digits"].read_bytes()):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.suppress(Exception):
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])  # onnxruntime as it comes
        if "EP Error" in printed.getvalue():
            break
    else:
        pytest.fail("no fuzz case makes onnxruntime fall back; the test needs another")
    capfd.readouterr()
    with pytest.raises(ModelFileError, match="onnxruntime cannot load this model"):
        session.create_session(data, "broken")
    out, err = capfd.readouterr()
    assert out == "" and "EP Error" not in err


def test_snapshots_compare_by_value_and_are_not_hashable() -> None:
    model = edgeinfer.load("digits")
    a, b = model.stream(), model.stream()
    row = np.full(28, 0.5, np.float32)
    a.step(row)
    b.step(row)
    assert a.snapshot() == b.snapshot()
    assert edgeinfer.Snapshot.from_bytes(a.snapshot().to_bytes()) == a.snapshot()
    b.step(row)
    assert a.snapshot() != b.snapshot()
    with pytest.raises(TypeError, match="unhashable"):
        hash(a.snapshot())


def test_public_api() -> None:
    for name in ("load", "Model", "Stream", "StreamBatch", "TextStream", "Snapshot", "generate", "score",
                 "EdgeInferError", "InputError", "ModelFileError", "SpecError", "ProviderError", "WrongTaskError"):
        assert name in edgeinfer.__all__ and getattr(edgeinfer, name) is not None
    from edgeinfer.cli.characters import generate_cmd
    from edgeinfer.tasks.characters import DEFAULT_TEMPERATURE

    api = inspect.signature(edgeinfer.generate).parameters["temperature"].default
    cli = inspect.signature(generate_cmd).parameters["temperature"].default
    assert api == cli == DEFAULT_TEMPERATURE == 0.8


def test_text_stream_trace_reads_the_whole_text() -> None:
    stream = edgeinfer.load("sentiment").text_stream()
    words = [w for w, _ in stream.trace("I loved it")]
    assert words == ["i", "loved", "it"] and stream.words == 3
    pieces = edgeinfer.load("sentiment").text_stream()
    got = [w for w, _ in pieces.trace("I lo", final=False)] + [w for w, _ in pieces.trace("ved it")]
    assert got == ["i", "loved", "it"]
    with pytest.raises(InputError):
        edgeinfer.load("digits").text_stream()


def test_cli_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"edgeinfer {edgeinfer.__version__}"
    assert (ROOT / "pyproject.toml").read_text().count(f'version = "{edgeinfer.__version__}"') == 1
