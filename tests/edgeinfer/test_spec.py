"""The spec as the single source of truth: every field validated, every field read by the code it
describes, older formats still loading, specs hashable; the public API and load-time provider checks."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import pytest

import edgeinfer
from edgeinfer import InputError, ModelFileError, ProviderError, SpecError, WrongTaskError
from edgeinfer.core import LoadedModel, builtin_models
from edgeinfer.preprocess.image import read_gray
from edgeinfer.preprocess.text import CharTokenizer, Tokenizer
from edgeinfer.spec import (
    FORMAT_VERSION,
    MAX_STATE_ELEMENTS,
    SPEC_KEY,
    CharInput,
    FeatureInput,
    GraphIO,
    ImageInput,
    ModelSpec,
    OutputSpec,
    Readout,
    StateTensor,
    TextInput,
    VocabInput,
    parse_input,
)
from tests.conftest import ROOT, run_cli
from tests.edgeinfer.conftest import committed
from tests.edgeinfer.modelfile import read_metadata, rewrite_spec
from tests.fixtures import digits_name

BUILTINS = ("digits", "sentiment", "characters")
KIND_TASK = {"image": "digits", "words": "sentiment", "chars": "characters"}  # formats 1-6: input kind <- task


@pytest.fixture(scope="module")
def specs() -> dict[str, ModelSpec]:
    return {name: edgeinfer.load(name).spec for name in BUILTINS}


@pytest.fixture(scope="module")
def stored() -> dict[str, dict]:
    """The built-ins' specs as their files hold them (of this format, or of an older one)."""
    return {name: json.loads(read_metadata(builtin_models()[name].read_bytes())[SPEC_KEY]) for name in BUILTINS}


def _older(raw: dict, version: int = 6) -> dict:
    """A format 7 spec's plain data as formats 1-6 wrote it: a task (which fixed the input kind),
    labels and a readout instead of output and extras."""
    old = {k: v for k, v in copy.deepcopy(raw).items() if k not in ("output", "extras")}
    old.update(task=KIND_TASK[raw["input"]["kind"]], labels=list(raw["output"]["names"]),
               readout=copy.deepcopy(raw["extras"].get("readout", asdict(Readout()))), format_version=version)
    return old


def test_round_trip_equality_and_hash(specs, stored) -> None:
    for name, spec in specs.items():
        assert spec.format_version == stored[name]["format_version"]  # the file's own version, kept
        again = ModelSpec.from_json(spec.to_json())
        # the JSON is always written in format 7 terms: read back, it is the same spec, of format 7
        assert again == dataclasses.replace(spec, format_version=FORMAT_VERSION)
        assert again.format_version == FORMAT_VERSION and again.to_json() == spec.to_json()
        assert hash(again) == hash(spec)
        assert ModelSpec.from_dict(spec.to_dict()) == again
        assert ModelSpec.from_json(again.to_json()) == again and ModelSpec.from_dict(again.to_dict()) == again
    assert len(set(specs.values())) == 3
    assert specs["digits"] != specs["sentiment"]


# (where, bad value): each replaces one field of the digits or sentiment spec (format 7) and must be refused
BAD_FIELDS = [
    ("task", "digits"), ("labels", list("0123456789")), ("readout", {}),  # formats 1-6 only
    ("cell", ["lstm"]), ("cell", "transformer"),
    ("layers", "1"), ("layers", 1.5), ("layers", True), ("layers", 0), ("layers", -3), ("layers", 10**9),
    ("hidden", None), ("hidden", 0), ("hidden", 10**12), ("input_size", 0), ("input_size", "28"),
    ("output", None), ("output", []), ("output", "classes"), ("output.kind", "probabilities"), ("output.kind", 3),
    ("output.per", "token"), ("output.per", None), ("output.names", []), ("output.names", "0123456789"),
    ("output.names", [0, 1]), ("output.names", ["a"] * 10), ("output.names", None), ("output.extra", 1),
    ("precision", "int4"), ("precision", 8), ("quantization", 1), ("opset", 0), ("opset", "17"),
    ("metrics", []), ("metrics", {"test_accuracy": "high"}), ("metrics", {"x": True}),
    ("provenance", "me"), ("extras", []), ("extras", "readout"), ("extras", {"readout": 5}),
    ("extras", {"readout": {"pool": "no"}}), ("extras", {"readout": {"ngram_buckets": 101}}),  # n-grams: words only
    ("extras", {"readout": {"short_hidden": 8, "short_words": 4.0}}),  # a short-text branch: rnn or gru only
    ("extras", {"readout": {"bogus": 1}}),
    ("state", {}), ("state", [1, 2]), ("state", []), ("io", []),
    ("input", []), ("input", {"kind": "audio"}), ("input", {"kind": None}),
    ("format_version", "3"), ("format_version", 0), ("format_version", None), ("format_version", 99),
    ("unknown_field", 1),
    ("input.rows", 0), ("input.rows", "28"), ("input.cols", 27), ("input.scale", 0), ("input.scale", -1.0),
    ("input.std", 0.0), ("input.std", 1e-50), ("input.mean", 1e39), ("input.mean", "0.1"), ("input.fit_px", 0),
    ("input.fit_px", 29), ("input.extra", 1),
    ("input.kind", "features"),  # a features input has no rows, cols...
    ("state.0.name", ""), ("state.0.name", "c"), ("state.0.name", "x"), ("state.0.name", 7),
    ("state.0.layers", 0), ("state.0.hidden", 0), ("state.0.hidden", 10**6), ("state.0.dtype", "float64"),
    ("state.0.initial", 1e308),
    ("state.0.initial", "0"), ("state.0.output", ""), ("state.0.output", "y"), ("state.0.output", "\x1b[2J"),
    ("state.0.output", 7), ("state.1.output", "h_next"), ("state.0.bogus", 1),
    ("io.output", ""), ("io.output", "h"), ("io.seq_input", 3), ("io.step_probabilities", "y"),
    ("io.lengths", "x"), ("io.lengths", "lengths"),  # a lengths input: token models only
    ("io.other", "z"), ("io.batch_steps_from", -1), ("io.batch_steps_from", 2**21),
    ("io.batch_steps_from", "64"), ("io.batch_steps_from", 1.5),
]
BAD_SENTIMENT_FIELDS = [
    ("input.vocab", "the movie"), ("input.vocab", ["the", "the"]), ("input.vocab", ["the", ""]),
    ("input.vocab", ["the", 3]), ("input.pad_id", -1), ("input.pad_id", 1), ("input.unk_id", 10**7),
    ("input.unk_id", "1"), ("input.lowercase", "yes"), ("input.kind", "chars"),  # words are not characters
    ("extras.readout.ngram_buckets", -1), ("extras.readout.ngram_buckets", 10**12),
    ("extras.readout.ngram_order", 1), ("extras.readout.ngram_order", 99), ("extras.readout.ngram_pool", "median"),
    ("extras.readout.pool", "no"), ("extras.readout.short_hidden", -1), ("extras.readout.short_words", 0.0),
    ("extras.readout.other", 1), ("extras.readout", []),
]
# formats 1-6: the task fixes the input kind, the state follows from the cell and the readout
BAD_OLDER_FIELDS = [
    ("task", None), ("task", 3), ("task", "poetry"), ("task", "sentiment"),
    ("labels", []), ("labels", "0123456789"), ("labels", [0, 1]), ("labels", ["a"] * 10), ("labels", None),
    ("readout", 5), ("readout.pool", "no"), ("readout.pool", True),  # a pooled readout has more state
    ("readout.ngram_buckets", 101),  # n-grams: words only
    ("state.0.name", "hidden"), ("state.0.layers", 2), ("state.0.hidden", 7), ("state.0.dtype", "float64"),
    ("state", [{"name": "h", "output": "h_next", "layers": 1, "hidden": 128}]),  # an lstm has h and c
]
BAD_OLDER_SENTIMENT_FIELDS = [
    ("task", "characters"), ("task", "digits"), ("labels", ["negative", "negative"]),
    ("readout.ngram_buckets", -1), ("readout.ngram_pool", "median"), ("readout.pool", "no"),
    ("readout.short_hidden", 7), ("readout.short_hidden", 0), ("readout.ngram_order", 4), ("readout.bogus", 1),
    ("state.4.name", "h_b"), ("state.3.layers", 3),
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


@pytest.mark.parametrize(("task", "cases", "older"), [
    ("digits", BAD_FIELDS, False), ("sentiment", BAD_SENTIMENT_FIELDS, False),
    ("digits", BAD_OLDER_FIELDS, True), ("sentiment", BAD_OLDER_SENTIMENT_FIELDS, True)],
    ids=["digits", "sentiment", "digits-format6", "sentiment-format6"])
def test_every_bad_field_is_a_spec_error(specs, task, cases, older) -> None:
    base = json.loads(specs[task].to_json())
    if older:
        base = _older(base)
    ModelSpec.from_json(json.dumps(base))  # the base itself loads
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
    with pytest.raises(SpecError, match="nested deeper"):
        ModelSpec.from_json(text.replace('"extras": {', '"extras": {"deep": ' + "[" * 40 + "]" * 40, 1))
    raw = json.loads(text)
    del raw["cell"]
    with pytest.raises(SpecError, match="missing"):
        ModelSpec.from_dict(raw)
    for field in ("output", "state"):
        with pytest.raises(SpecError, match=f"'{field}' must be"):
            ModelSpec.from_dict({k: v for k, v in json.loads(text).items() if k != field})
    with pytest.raises(SpecError, match="finite numbers"):
        ModelSpec.from_dict({**json.loads(text), "input": {**raw["input"], "std": math.inf}})
    for not_a_spec in ("[]", '"spec"', "3", "{", ""):
        with pytest.raises(SpecError):
            ModelSpec.from_json(not_a_spec)


def test_older_formats_load_with_their_defaults(specs) -> None:
    raw = _older(json.loads(specs["sentiment"].to_json()), 2)
    del raw["readout"]["ngram_pool"]  # format 2: no ngram_pool, the mean pool
    two = ModelSpec.from_dict(raw)
    assert two.readout.ngram_pool == "mean" and two.extras["readout"]["ngram_pool"] == "mean"
    assert two.readout == dataclasses.replace(specs["sentiment"].readout, ngram_pool="mean")
    digits = _older(json.loads(specs["digits"].to_json()), 1)
    del digits["readout"]  # format 1: no readout at all
    old = ModelSpec.from_dict(digits)
    assert old.readout == Readout() and old.extras == {} and old.format_version == 1
    assert old.output == OutputSpec("classes", "sequence", tuple("0123456789"))
    assert old == dataclasses.replace(specs["digits"], format_version=1)
    assert FORMAT_VERSION == 8


# files an older edgeinfer wrote (format 3), kept as they are: the runtime refuses the files (their
# step graph's layout; tests/edgeinfer/test_model_loading.py), `relayout` reads their specs like this
OLDER_FILES = ("legacy/digits-gru1-format3", "legacy/sentiment-gru1-readout-format3")


@pytest.mark.parametrize("name", OLDER_FILES)
def test_specs_of_older_formats_are_read_into_format_7_terms(name) -> None:
    path = committed(name)
    text = read_metadata(path.read_bytes())[SPEC_KEY]
    raw, spec = json.loads(text), ModelSpec.from_json(text)
    with pytest.raises(ModelFileError, match=r"a format 3 file, .*`python -m edgeinfer_export\.relayout OLD\.onnx"):
        edgeinfer.load(path)
    assert raw["format_version"] == spec.format_version == 3
    assert {"task", "labels", "readout"} <= set(raw) and not {"output", "extras"} & set(raw)
    assert spec.input.kind == {task: kind for kind, task in KIND_TASK.items()}[raw["task"]]
    assert spec.output == OutputSpec("classes", "sequence", tuple(raw["labels"])) and spec.labels == spec.output.names
    readout = Readout(**raw["readout"])
    assert spec.readout == readout and readout.active == (raw["task"] == "sentiment")
    assert spec.extras == ({"readout": asdict(readout)} if readout.active else {})
    written = json.loads(spec.to_json())
    assert written["format_version"] == FORMAT_VERSION and not {"task", "labels", "readout"} & set(written)
    assert written["output"]["names"] == raw["labels"] and written["state"] == raw["state"]
    assert ModelSpec.from_json(spec.to_json()) == dataclasses.replace(spec, format_version=FORMAT_VERSION)


def test_a_format_6_spec_round_trips_into_format_7_terms(specs) -> None:
    seven = json.loads(specs["sentiment"].to_json())
    six = _older(seven)
    assert six["format_version"] == 6 and six["readout"]["short_hidden"] == 256
    spec = ModelSpec.from_dict(six)
    assert spec.format_version == 6 and spec.labels == tuple(six["labels"]) == ("negative", "positive")
    written = json.loads(spec.to_json())
    assert written == {**seven, "format_version": FORMAT_VERSION}
    assert written["output"] == {"kind": "classes", "per": "sequence", "names": six["labels"]}
    assert written["extras"] == {"readout": six["readout"]} and not {"task", "labels", "readout"} & set(written)
    again = ModelSpec.from_json(spec.to_json())
    assert again == dataclasses.replace(spec, format_version=FORMAT_VERSION) and again.readout == spec.readout
    assert again.readout == Readout(**six["readout"])
    # a readout that reads nothing besides the last hidden state is no extra
    plain = _older(json.loads(specs["digits"].to_json()))
    assert plain["readout"] == asdict(Readout()) and ModelSpec.from_dict(plain).extras == {}
    # the old rules still hold for the old versions only: any state names from format 7 on
    renamed = copy.deepcopy(seven)
    renamed["state"][0].update(name="hidden", output="hidden_next")
    assert ModelSpec.from_dict(renamed).state[0].name == "hidden"
    with pytest.raises(SpecError, match="state must be named"):
        ModelSpec.from_dict(_older(renamed))


def test_typed_input_helpers(specs) -> None:
    d, s, c = specs["digits"], specs["sentiment"], specs["characters"]
    assert isinstance(d.require_input(ImageInput), ImageInput) and d.token_vocab is None and not d.reads_tokens
    assert s.token_vocab is s.input and s.reads_tokens and c.token_vocab is c.input
    assert s.require_input(TextInput) is s.input and c.require_input(CharInput) is c.input
    with pytest.raises(WrongTaskError, match=r"^a model that reads words; expected a model that reads image$"):
        s.require_input(ImageInput)
    with pytest.raises(WrongTaskError, match="reads chars; expected a model that reads words"):
        c.require_input(TextInput)
    with pytest.raises(WrongTaskError, match="reads image; expected a model that reads features"):
        d.require_input(FeatureInput)
    assert parse_input({"kind": "chars", "vocab": ["a", "b"]}) == CharInput(vocab=("a", "b"))
    assert parse_input({"kind": "features", "size": 2, "mean": [1, 2.5], "std": [3, 4], "names": ["a", "b"]}) == \
        FeatureInput(size=2, mean=(1.0, 2.5), std=(3.0, 4.0), names=("a", "b"))


# format 7: a features model that gives values every step, with state tensors named as it likes
FEATURES = {
    "input": {"kind": "features", "size": 3, "mean": [1.5, -2.0, 0.25], "std": [2.0, 0.5, 4.0],
              "names": ["temperature", "pressure", "humidity"]},
    "output": {"kind": "values", "per": "step", "names": ["forecast", "error"]},
    "cell": "gru", "layers": 2, "hidden": 8, "input_size": 3,
    "state": [{"name": "h0", "output": "h0_next", "layers": 1, "hidden": 8},
              {"name": "h1", "output": "h1_next", "layers": 1, "hidden": 5, "initial": 0.5}],
    "io": {"seq_input": "x", "step_input": "x", "output": "y"},
    "extras": {"trained_on": "weather", "window": [1, 2]},
    "format_version": FORMAT_VERSION,
}


def _features(**changes: object) -> dict:
    return {**copy.deepcopy(FEATURES), **copy.deepcopy(changes)}


@pytest.mark.parametrize("per", ["sequence", "step"])
@pytest.mark.parametrize("kind", ["classes", "values"])
def test_a_features_spec_round_trips(kind, per) -> None:
    names = ["forecast", "error"]
    raw = _features(output={"kind": kind, "per": per, "names": names},
                    io={"step_probabilities": "p"} if kind == "classes" else {})
    spec = ModelSpec.from_dict(raw)
    assert spec.input == FeatureInput(size=3, mean=(1.5, -2.0, 0.25), std=(2.0, 0.5, 4.0),
                                      names=("temperature", "pressure", "humidity"))
    assert spec.output == OutputSpec(kind, per, tuple(names)) and spec.labels == tuple(names) and spec.classes == 2
    assert spec.gives_classes == (kind == "classes") and spec.per_step == (per == "step")
    assert not spec.reads_tokens and spec.token_vocab is None and spec.readout == Readout()
    assert spec.extras == {"trained_on": "weather", "window": [1, 2]} and spec.format_version == FORMAT_VERSION
    assert spec.require_input(FeatureInput) is spec.input
    with pytest.raises(WrongTaskError, match=r"^a model that reads features; expected a model that reads words$"):
        spec.require_input(TextInput)
    state = spec.initial_state(3)
    assert {k: (v.shape, v.dtype, set(v.flat)) for k, v in state.items()} == {
        "h0": ((1, 3, 8), np.float32, {0.0}), "h1": ((1, 3, 5), np.float32, {0.5})}
    assert spec.state_outputs == ["h0_next", "h1_next"]
    text = spec.to_json()
    again = ModelSpec.from_json(text)
    assert again == spec and hash(again) == hash(spec) and again.to_json() == text
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    written = json.loads(text)
    assert written["format_version"] == FORMAT_VERSION and not {"task", "labels", "readout"} & set(written)
    assert (written["input"], written["output"], written["extras"]) == (raw["input"], raw["output"], raw["extras"])
    assert [(s["name"], s["output"], s["layers"], s["hidden"]) for s in written["state"]] == [
        ("h0", "h0_next", 1, 8), ("h1", "h1_next", 1, 5)]
    built = ModelSpec(
        FeatureInput(size=3, mean=(1.5, -2.0, 0.25), std=(2.0, 0.5, 4.0),
                     names=("temperature", "pressure", "humidity")),
        OutputSpec(kind, per, tuple(names)), "gru", 2, 8, 3,
        (StateTensor("h0", "h0_next", 1, 8), StateTensor("h1", "h1_next", 1, 5, initial=0.5)),
        io=GraphIO(step_probabilities="p" if kind == "classes" else ""),
        extras={"trained_on": "weather", "window": [1, 2]})
    assert built == spec and built.to_json() == text
    assert spec != ModelSpec.from_dict(_features(output={"kind": kind, "per": per, "names": names[::-1]},
                                                 io=raw["io"]))


def test_features_without_statistics_or_names_are_read_as_given() -> None:
    spec = ModelSpec.from_dict(_features(input={"kind": "features", "size": 3}))
    assert spec.input == FeatureInput(size=3) and spec.input.mean == spec.input.std == spec.input.names == ()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert spec.input.normalize(x) is x and np.array_equal(x, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert ModelSpec.from_json(spec.to_json()) == spec


# (where, bad value, what the message says): each replaces one field of FEATURES and must be refused
BAD_FEATURES = [
    ("input.size", 4, "reads 4 values per step; input_size is 3"),
    ("input_size", 4, "reads 3 values per step; input_size is 4"),
    ("input.size", 0, "'input.size' must be between 1"),
    ("input.size", "3", "'input.size' must be a int"),
    ("input.mean", [0.0, 1.0], "'input.mean' and 'input.std' must hold 3 numbers each"),
    ("input.mean", [], "'input.mean' and 'input.std' must hold 3 numbers each"),
    ("input.std", [1.0, 1.0, 1.0, 1.0], "'input.mean' and 'input.std' must hold 3 numbers each"),
    ("input.std", [1.0, 0.0, 1.0], "'input.std' must hold float32 numbers, std positive"),
    ("input.std", [1.0, -2.0, 1.0], "'input.std' must hold float32 numbers, std positive"),
    ("input.std", [1.0, 1e-50, 1.0], "'input.std' must hold float32 numbers, std positive"),
    ("input.mean", [1.0, 1e39, 1.0], "'input.mean' and 'input.std' must hold float32 numbers"),
    ("input.mean", [0.0, "1", 0.0], "'input.mean' must be a list of finite numbers"),
    ("input.mean", [0.0, True, 0.0], "'input.mean' must be a list of finite numbers"),
    ("input.mean", 0.5, "'input.mean' must be a list of finite numbers"),
    ("input.std", None, "'input.std' must be a list of finite numbers"),
    ("input.names", ["a", "a", "b"], "'input.names' must hold 3 distinct names"),
    ("input.names", ["a", "b"], "'input.names' must hold 3 distinct names"),
    ("input.names", ["a", 2, "c"], "'input.names' must be a list of strings"),
    ("input.rows", 28, "'input' has unknown field(s) 'rows'"),
    ("input.vocab", ["a"], "'input' has unknown field(s) 'vocab'"),
    ("output", None, "'output' must be an object"),
    ("output", ["values"], "'output' must be an object"),
    ("output.kind", "probabilities", "unknown output kind 'probabilities'"),
    ("output.kind", 1, "'output.kind' must be a str"),
    ("output.per", "token", "unknown output.per 'token'"),
    ("output.per", True, "'output.per' must be a str"),
    ("output.names", [], "'output.names' must not be empty"),
    ("output.names", ["forecast", "forecast"], "'output.names' must hold 1 to"),
    ("output.names", ["forecast", 2], "'output.names' must be a list of strings"),
    ("output.unit", "mm", "'output' has unknown field(s) 'unit'"),
    ("io.step_probabilities", "p", "a model that gives values has no probabilities: io.step_probabilities"),
    ("io.lengths", "lengths", "io.lengths must be empty"),
    ("state", [], "'state' must list at least one state tensor"),
    ("state.1.dtype", "float16", "state 'h1' must be float32, not float16"),
    ("state.1.name", "h0", "names in 'io' and 'state' must all be distinct"),
    ("state.1.output", "h0_next", "names in 'io' and 'state' must all be distinct"),
    ("state.1.name", "x", "names in 'io' and 'state' must all be distinct"),
    ("state.1.name", "", "'state..name' must be a printable name"),
    ("state.1.layers", 0, "'state.h1.layers' must be between 1"),
    ("state.1.hidden", 1 << 17, "'state.h1.hidden' must be between 1"),
    ("state.1.other", 1, "'state[1]' has unknown field(s) 'other'"),
    ("state.0", {"name": "h0", "output": "h0_next", "layers": 512, "hidden": 1 << 15},  # 2**24 + h1's 5
     f"the state holds 16,777,221 values per stream; at most {MAX_STATE_ELEMENTS:,}"),
    ("extras", [], "'extras' must be an object"),
    ("extras", "readout", "'extras' must be an object"),
    ("extras", {"readout": 5}, "'extras.readout' must be an object"),
    ("extras", {"readout": {"ngram_buckets": 101}}, "an n-gram readout needs word-token input"),
    ("task", "digits", "unknown field(s) 'task'"),
    ("labels", ["forecast", "error"], "unknown field(s) 'labels'"),
    ("readout", {}, "unknown field(s) 'readout'"),
]


@pytest.mark.parametrize(("where", "value", "says"), BAD_FEATURES,
                         ids=[f"{where}={value!r}"[:48] for where, value, _ in BAD_FEATURES])
def test_every_bad_features_field_is_a_spec_error(where, value, says) -> None:
    raw = _features()
    ModelSpec.from_json(json.dumps(raw))  # the base itself loads
    _set(raw, where, value)
    with pytest.raises(SpecError, match=re.escape(says)) as info:
        ModelSpec.from_json(json.dumps(raw))
    assert "\n" not in str(info.value)


def test_feature_statistics_must_be_finite_and_the_state_bounded() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        for name in ("mean", "std"):
            raw = _features()
            raw["input"][name][1] = bad
            with pytest.raises(SpecError, match="finite numbers only"):
                ModelSpec.from_dict(raw)
            with pytest.raises(SpecError, match=f"'input.{name}' must be a list of finite numbers"):
                parse_input(raw["input"])
    text = json.dumps(FEATURES)
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        with pytest.raises(SpecError, match="finite numbers only"):
            ModelSpec.from_json(text.replace("1.5", literal, 1))
    # exactly MAX_STATE_ELEMENTS values per stream are allowed
    raw = _features()
    raw["state"][0].update(layers=256, hidden=1 << 15)
    raw["state"][1].update(layers=256, hidden=1 << 15)
    assert sum(s.layers * s.hidden for s in ModelSpec.from_dict(raw).state) == MAX_STATE_ELEMENTS
    raw["state"][1]["hidden"] += 1
    with pytest.raises(SpecError, match="the state holds"):
        ModelSpec.from_dict(raw)


def test_feature_input_normalizes_per_feature_in_float32() -> None:
    inp = FeatureInput(size=3, mean=(0.1, -2.0, 1e3), std=(0.3, 0.5, 7.0))
    assert inp.mean_array.dtype == inp.std_array.dtype == np.float32
    assert np.array_equal(inp.mean_array, np.float32([0.1, -2.0, 1e3]))
    raw = np.random.default_rng(0).standard_normal((4, 5, 3)).astype(np.float32) * 100
    want = (raw - np.float32([0.1, -2.0, 1e3])) / np.float32([0.3, 0.5, 7.0])  # float32 throughout
    assert want.dtype == np.float32
    x = raw.copy()
    got = inp.normalize(x)
    assert got is x and got.dtype == np.float32  # in place
    assert np.array_equal(got, want)
    assert not np.array_equal(got, ((raw.astype(np.float64) - [0.1, -2.0, 1e3]) / [0.3, 0.5, 7.0]).astype(np.float32))
    row = np.float32([0.1, 0.0, 1007.0])
    np.testing.assert_array_equal(inp.normalize(row.copy()), np.float32([0.0, 4.0, 1.0]))


FEATURE_MEAN = np.linspace(-1.0, 1.0, 28, dtype=np.float32)
FEATURE_STD = np.linspace(0.5, 2.0, 28, dtype=np.float32)


@pytest.fixture(scope="module")
def feature_models(tmp_path_factory) -> dict[str, edgeinfer.Model]:
    """The digits-gru1 fixture as it is ("image"), and with a format 7 spec of 28 normalised
    features giving class probabilities ("classes") or its logits as values ("values")."""
    src = committed(digits_name("gru", 1))
    out = tmp_path_factory.mktemp("features")

    def as_features(kind: str) -> Callable[[dict], None]:
        def edit(raw: dict) -> None:
            spec = json.loads(ModelSpec.from_dict(raw).to_json())
            spec["input"] = {"kind": "features", "size": 28, "mean": FEATURE_MEAN.tolist(),
                             "std": FEATURE_STD.tolist(), "names": [f"f{i}" for i in range(28)]}
            spec["output"]["kind"] = kind
            if kind == "values":
                spec["io"]["step_probabilities"] = ""
            raw.clear()
            raw.update(spec)
        return edit

    models = {"image": edgeinfer.load(src)}
    for kind in ("classes", "values"):
        rewrite_spec(src, out / f"{kind}.onnx", as_features(kind))
        models[kind] = edgeinfer.load(out / f"{kind}.onnx")
    return models


def test_a_features_model_reads_raw_features_normalised_by_its_spec(feature_models) -> None:
    image, classes, values = feature_models["image"], feature_models["classes"], feature_models["values"]
    assert classes.spec.format_version == values.spec.format_version == FORMAT_VERSION
    assert isinstance(values.spec.input, FeatureInput) and values.spec.output.kind == "values"
    x = np.random.default_rng(5).standard_normal((3, 6, 28)).astype(np.float32) * 4
    before = x.copy()
    seen = (x - FEATURE_MEAN) / FEATURE_STD  # what the graphs must read, float32
    assert np.array_equal(values.predict(x), image.sequence_logits(seen))  # values: the logits as they are
    assert np.array_equal(classes.predict(x), image.predict(seen))
    assert not np.allclose(values.predict(x), image.sequence_logits(x), atol=1e-3)  # raw x is not what it reads
    assert np.array_equal(values.predict(x[0]), values.predict(x)[0])
    ref, got, probs = image.stream(3), values.stream(3), classes.stream(3)
    for t in range(6):
        answer, p = got.step(x[:, t]), probs.step(x[:, t])
        ref.step(seen[:, t])
        assert np.array_equal(answer, ref.logits) and np.array_equal(got.logits, ref.logits)
        assert np.allclose(p, ref.probabilities, atol=1e-6) and np.allclose(p.sum(1), 1, atol=1e-6)
    assert np.array_equal(got.probabilities, ref.logits)
    fed = values.stream(3)
    np.testing.assert_allclose(fed.feed(x[:, :2]), image.sequence_logits(seen[:, :2]), atol=1e-6)
    np.testing.assert_allclose(fed.feed(x[:, 2:]), ref.logits, atol=1e-6)  # the state carried
    batch = values.stream_batch()
    a, b = batch.open(), batch.open()
    first = batch.step([a, b], x[:2, 0])
    assert np.allclose(first, image.sequence_logits(seen[:2, :1]), atol=1e-6)
    assert np.array_equal(x, before)  # the caller's raw features are never normalised in place


def test_values_answers_are_not_overwritten_by_later_steps(feature_models) -> None:
    """Each answer is an array of its own: a later step never changes one already returned."""
    values = feature_models["values"]
    x = np.random.default_rng(6).standard_normal((4, 28)).astype(np.float32)
    stream = values.stream()
    kept = [stream.step(row) for row in x]
    kept += [stream.feed(x[:2]), stream.probabilities, stream.logits]
    snapshot = [a.copy() for a in kept]
    stream.step(x[2])
    stream.feed(x[1:])
    batch = values.stream_batch()
    one = batch.open()
    kept += [batch.step([one], x[:1]), one.probabilities]
    snapshot += [a.copy() for a in kept[len(snapshot):]]
    batch.step([one], x[1:2])
    assert len(kept) == 9 and all(np.array_equal(a, b) for a, b in zip(kept, snapshot, strict=True))
    assert not np.array_equal(kept[0], kept[1])  # the steps did give different answers


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
    nine = dataclasses.replace(model.spec.output, names=tuple("abcdefghi"))
    model.spec = dataclasses.replace(model.spec, output=nine)
    with pytest.raises(ModelFileError, match="gives 10 classes but the spec has 9 labels"):
        model.session("step")


def test_missing_provider_fails_at_load() -> None:
    with pytest.raises(ProviderError, match="'NoSuchExecutionProvider' is not available"):
        edgeinfer.load("digits", providers="NoSuchExecutionProvider")
    with pytest.raises(ProviderError, match="provider names"):
        edgeinfer.load("digits", providers=[3])  # type: ignore[list-item]


def test_provider_in_use_must_be_the_one_asked_for(monkeypatch) -> None:
    import onnxruntime as ort

    import edgeinfer.session as session

    real = ort.InferenceSession

    class FellBack(real):  # type: ignore[misc, valid-type]
        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    def cuda_then_cpu(asked: object, cpu_fallback: bool = True) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    monkeypatch.setattr(session, "resolve_providers", cuda_then_cpu)
    monkeypatch.setattr(edgeinfer.core, "resolve_providers", cuda_then_cpu)
    monkeypatch.setattr(session.ort, "InferenceSession", lambda data, sess_options, providers: FellBack(
        data, sess_options=sess_options, providers=["CPUExecutionProvider"]))
    with pytest.raises(ProviderError, match="asked for CUDAExecutionProvider but onnxruntime runs it on "
                                            r"CPUExecutionProvider; check the provider's installation \(`edgeinfer"):
        edgeinfer.load("digits", providers="cuda").predict(np.zeros((1, 28, 28), np.float32))


def test_a_provider_failing_at_session_creation_is_a_provider_error_and_nothing_is_printed(monkeypatch, capfd) -> None:
    """A provider that fails while the session is created: onnxruntime retries on the CPU and prints
    "EP Error" to stdout; here the retry is refused (ProviderError, with the provider's own error)
    and stdout stays clean, while what others print meanwhile still reaches it. The failure is
    provoked in onnxruntime's `_create_inference_session` (the one step a provider can fail in on a
    CPU-only machine): if onnxruntime renames it, this test fails loudly (monkeypatch's AttributeError)."""
    import onnxruntime as ort

    import edgeinfer.session as session

    real = ort.InferenceSession._create_inference_session
    calls: list[list[str]] = []

    def azure_fails(self, providers, provider_options, disabled_optimizers=None):  # type: ignore[no-untyped-def]
        calls.append(list(providers))
        print("printed meanwhile")  # as another thread would
        created = real(self, providers, provider_options, disabled_optimizers)
        if "AzureExecutionProvider" in providers:
            raise RuntimeError("Azure EP: no endpoint configured\nsecond line")
        return created

    monkeypatch.setattr(ort.InferenceSession, "_create_inference_session", azure_fails)
    data = edgeinfer.core.builtin_models()["digits"].read_bytes()
    capfd.readouterr()
    with pytest.raises(ProviderError, match=r"^d: asked for AzureExecutionProvider but onnxruntime runs it on "
                                            r"CPUExecutionProvider \(Azure EP: no endpoint configured\); check the "
                                            r"provider's installation \(`edgeinfer doctor`\)$"):
        session.create_session(data, "d", "azure")
    assert calls == [["AzureExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]]  # it did retry
    out, err = capfd.readouterr()
    assert out == "printed meanwhile\nprinted meanwhile\n" and "EP Error" not in out + err
    # through a model, at its first run
    with pytest.raises(ProviderError, match=r"asked for AzureExecutionProvider .*no endpoint configured"):
        edgeinfer.load("digits", providers="azure").predict(np.zeros((1, 28, 28), np.float32))
    assert "EP Error" not in "".join(capfd.readouterr())
    # the retry on the CPU fails too: the first failure is the one reported
    def always_fails(self, providers, provider_options, disabled_optimizers=None):  # type: ignore[no-untyped-def]
        real(self, providers, provider_options, disabled_optimizers)
        raise RuntimeError(f"failed on {providers[0]}")

    monkeypatch.setattr(ort.InferenceSession, "_create_inference_session", always_fails)
    with pytest.raises(ModelFileError, match=r"^d: onnxruntime cannot load this model \(failed on "
                                             r"AzureExecutionProvider\)$"):
        session.create_session(data, "d", "azure")
    out, err = capfd.readouterr()
    assert out == "" and "EP Error" not in err
    # and a session that could be created runs without the run-time fallback either
    monkeypatch.setattr(ort.InferenceSession, "_create_inference_session", real)
    assert session.create_session(data, "d")._enable_fallback is False


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
                 "classify_texts", "load_digit", "EdgeInferError", "InputError", "ModelFileError", "SpecError",
                 "ProviderError", "WrongTaskError", "UnreadableInput"):
        assert name in edgeinfer.__all__ and getattr(edgeinfer, name) is not None
    assert set(edgeinfer.__all__) <= set(dir(edgeinfer))  # every public name resolves (lazily imported)
    with pytest.raises(AttributeError, match="has no attribute 'nonesuch'"):
        edgeinfer.nonesuch  # noqa: B018
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


def test_integers_are_json_integers_in_the_readout_extra_too() -> None:
    """1.0 is a float, as JSON and the JavaScript runtime read it: a readout's whole-number
    fields refuse it (the JavaScript runtime once took 800011.0 where this one refused it)."""
    text = read_metadata(builtin_models()["sentiment"].read_bytes())[SPEC_KEY]
    assert '"ngram_buckets": 800011,' in text
    with pytest.raises(SpecError, match=r"^spec field 'extras\.readout\.ngram_buckets' must be a int, got float$"):
        ModelSpec.from_json(text.replace('"ngram_buckets": 800011,', '"ngram_buckets": 800011.0,'))
