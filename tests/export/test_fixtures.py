"""The committed fixture models (tests/fixtures/) are what the project's export makes today.

The runtime's tests read those files without torch; these tests rebuild the random-weight ones
with `tests.fixtures.build` and fail when a committed file is stale, and check the runtime's
torch-free metadata writer (tests/edgeinfer/modelfile.py) against the onnx package.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeinfer import Model
from edgeinfer.spec import CHECKSUMS_KEY, FORMAT_VERSION, SPEC_KEY, STEP_GRAPH_KEY, ModelSpec
from edgeinfer_export.bundle import unbundle
from export.parity import random_state
from tests.edgeinfer.modelfile import read_metadata, rewrite_spec, strip_spec
from tests.fixtures import (
    CHARACTERS,
    DECOMPOSED,
    DIGITS,
    REBUILD,
    SENTIMENT,
    decomposed_name,
    digits_name,
    fixture_path,
    sentiment_name,
)
from tests.fixtures.build import build_random
from tests.nets import tiny_sentiment_net

RANDOM = ([digits_name(c, n) for c, n in DIGITS] + [sentiment_name(v) for v in SENTIMENT]
          + [decomposed_name(b) for b in DECOMPOSED])


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("fixtures")
    return {p.stem: p.read_bytes() for p in build_random(out)}


def _outputs(model: onnx.ModelProto, spec: ModelSpec, seq: bool) -> list[np.ndarray]:
    """Every output of a graph on a fixed input (B = 3, T = 5) and a fixed random state."""
    rng = np.random.default_rng(0)
    vocab = spec.input.vocab_size if hasattr(spec.input, "vocab_size") else 0
    shape = (3, 5) if seq else (3,)
    if vocab:
        x = rng.integers(0, vocab, shape).astype(np.int64)
    else:
        x = rng.standard_normal((*shape, spec.input_size)).astype(np.float32)
    feed = {spec.io.seq_input if seq else spec.io.step_input: x, **random_state(spec, 3, rng, vocab)}
    if seq and spec.io.lengths:
        feed[spec.io.lengths] = np.array([5, 1, 3], np.int64)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


@pytest.mark.parametrize("name", RANDOM)
def test_committed_fixture_is_current(rebuilt, name: str) -> None:
    committed = fixture_path(name).read_bytes()
    fresh = rebuilt[name]
    stale = f"tests/fixtures/{name}.onnx is stale; rebuild with `{REBUILD}` and commit"
    old, new = onnx.load_from_string(committed), onnx.load_from_string(fresh)
    old_props = {p.key: p.value for p in old.metadata_props}
    new_props = {p.key: p.value for p in new.metadata_props}
    assert set(old_props) == set(new_props) == {SPEC_KEY, STEP_GRAPH_KEY, CHECKSUMS_KEY}, stale
    spec = ModelSpec.from_json(new_props[SPEC_KEY])
    assert ModelSpec.from_json(old_props[SPEC_KEY]) == spec, stale
    assert Model(fixture_path(name)).spec == spec, stale
    assert old_props[STEP_GRAPH_KEY] == new_props[STEP_GRAPH_KEY], stale  # same structure, same byte ranges
    for seq, (a, b) in ((True, (unbundle(old)[0], unbundle(new)[0])), (False, (unbundle(old)[1], unbundle(new)[1]))):
        assert [o.name for o in a.graph.output] == [o.name for o in b.graph.output], stale
        for x, y in zip(_outputs(a, spec, seq), _outputs(b, spec, seq), strict=True):
            assert x.shape == y.shape and np.abs(x - y).max() <= 1e-6, stale


def test_export_is_byte_for_byte_reproducible(rebuilt, tmp_path) -> None:
    """Two exports of one net are the same bytes (so a fixture differs only when export changed)."""
    again = {p.stem: p.read_bytes() for p in build_random(tmp_path)}
    assert again == rebuilt


def test_characters_fixture_is_a_trained_int8_export() -> None:
    spec = Model(fixture_path(CHARACTERS)).spec
    assert (spec.input.kind, spec.cell, spec.hidden, spec.precision) == ("chars", "lstm", 32, "int8")
    assert {"val_loss", "fp32_val_loss", "val_chars"} <= set(spec.metrics)


def test_ngram_pool_spec_round_trip(tmp_path) -> None:
    """Export writes the current format with the readout's ngram_pool; the runtime reads back the same spec
    (moved from tests/edgeinfer/test_model_loading.py: it exports a net)."""
    from tests.nets import write_model
    net, spec = tiny_sentiment_net(readout=True, layers=1)
    sentiment_model = write_model(net, spec, tmp_path / "s.onnx")
    assert Model(sentiment_model).spec == spec
    assert spec.format_version == FORMAT_VERSION == 8 and spec.readout.ngram_pool == "mean"


def test_modelfile_edits_only_the_metadata(tmp_path) -> None:
    """The runtime tests' onnx-free metadata writer agrees with the onnx package."""
    src = fixture_path(sentiment_name("gru1-readout"))
    model = onnx.load(src)
    props = {p.key: p.value for p in model.metadata_props}
    assert read_metadata(src.read_bytes()) == props
    rewrite_spec(src, tmp_path / "edited.onnx", lambda raw: raw.update(cell="lstm", precision="int8"))
    edited = onnx.load(tmp_path / "edited.onnx")
    onnx.checker.check_model(edited)
    got = {p.key: p.value for p in edited.metadata_props}
    assert [p.key for p in edited.metadata_props] == [p.key for p in model.metadata_props]
    assert got[STEP_GRAPH_KEY] == props[STEP_GRAPH_KEY]
    assert json.loads(got[SPEC_KEY]) == {**json.loads(props[SPEC_KEY]), "cell": "lstm", "precision": "int8"}
    del edited.metadata_props[:], model.metadata_props[:]
    assert edited.SerializeToString() == model.SerializeToString()  # the graph and the rest untouched
    strip_spec(src, tmp_path / "plain.onnx")
    plain = onnx.load(tmp_path / "plain.onnx")
    assert len(plain.metadata_props) == 0 and plain.SerializeToString() == model.SerializeToString()
