"""`python -m edgeinfer_export.relayout OLD NEW`: files of formats 1-3 (which the runtimes refuse)
and later ones rewritten in the current format, checked against the old file's own graphs."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import edgeinfer
from edgeinfer import ModelFileError, SpecError
from edgeinfer.fileformat import read_metadata
from edgeinfer.session import create_session
from edgeinfer.spec import FORMAT_VERSION, STEP_SHARED_KEY
from edgeinfer_export import relayout
from tests.conftest import ROOT
from tests.edgeinfer.modelfile import rewrite_spec, with_metadata
from tests.fixtures import fixture_path

# each format 3 file beside the same net exported in the current layout
OLDER = {"legacy/digits-gru1-format3": "digits-gru1", "legacy/sentiment-gru1-readout-format3": "sentiment-gru1-readout"}


def _inputs(spec: edgeinfer.ModelSpec) -> np.ndarray:
    vocab = spec.token_vocab
    if vocab is not None:
        return np.arange(2 * 6).reshape(2, 6) % (vocab.vocab_size - 2) + 2
    return np.random.default_rng(1).standard_normal((2, 6, spec.input_size)).astype(np.float32)


@pytest.mark.parametrize("legacy", list(OLDER))
def test_a_format_3_file_is_rewritten_and_gives_the_old_graphs_numbers(legacy, tmp_path) -> None:
    src, dst = fixture_path(legacy), tmp_path / "new.onnx"
    with pytest.raises(ModelFileError, match=r"python -m edgeinfer_export\.relayout OLD\.onnx NEW\.onnx"):
        edgeinfer.load(src)
    done = subprocess.run([sys.executable, "-m", "edgeinfer_export.relayout", str(src), str(dst)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout == f"wrote {dst} ({dst.stat().st_size:,} bytes, format 8)\n"
    new = edgeinfer.load(dst)
    meta = read_metadata(dst.read_bytes(), "new")
    assert new.spec.format_version == FORMAT_VERSION and STEP_SHARED_KEY not in meta
    # the old file's own graphs, run directly (its step graph with the named weights put back)
    spec, seq, step = relayout.read_older(src.read_bytes(), "old")
    assert spec.format_version == 3 and dataclasses.replace(spec, format_version=FORMAT_VERSION) == new.spec
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in onnx.load_from_string(step).graph.initializer)
    x = _inputs(spec)
    feeds = {spec.io.seq_input: x, **spec.initial_state(2)}
    if spec.io.lengths:
        feeds[spec.io.lengths] = np.full(2, x.shape[1], np.int64)
    assert np.array_equal(create_session(seq, "old").run([spec.io.output], feeds)[0], new.sequence_logits(x))
    # the same net exported in the current layout answers the same, step by step and whole
    current = edgeinfer.load(fixture_path(OLDER[legacy]))
    a, b = current.stream(2), new.stream(2)
    for t in range(x.shape[1]):
        assert np.array_equal(a.step(x[:, t]), b.step(x[:, t]))
    assert np.array_equal(current.sequence_logits(x), new.sequence_logits(x))


@pytest.mark.parametrize("version", [1, 2])
def test_files_of_formats_1_and_2_are_rewritten_too(version, tmp_path) -> None:
    src = tmp_path / "old.onnx"
    rewrite_spec(fixture_path("legacy/digits-gru1-format3"), src, lambda raw: raw.update(format_version=version))
    with pytest.raises(ModelFileError, match=f"a format {version} file, whose step graph names its shared weights"):
        edgeinfer.load(src)
    relayout.relayout(src, tmp_path / "new.onnx")
    new, current = edgeinfer.load(tmp_path / "new.onnx"), edgeinfer.load(fixture_path("digits-gru1"))
    x = _inputs(new.spec)
    assert new.spec.format_version == FORMAT_VERSION and np.array_equal(new.predict(x), current.predict(x))


def test_a_rewrite_that_computes_other_numbers_is_not_kept(tmp_path, monkeypatch) -> None:
    """The check compares the new file with the old graphs: a rewrite whose largest weight (in both
    graphs, so still shared) moved by 0.1% is refused, and neither the new file nor its temporary stays."""
    real = relayout.bundle

    def nudged(seq: onnx.ModelProto, step: onnx.ModelProto, spec: edgeinfer.ModelSpec) -> onnx.ModelProto:
        weight = max(seq.graph.initializer, key=lambda t: len(t.raw_data)).raw_data
        moved = (np.frombuffer(weight, np.float32) * np.float32(1.001)).tobytes()
        for t in [*seq.graph.initializer, *step.graph.initializer]:
            if t.raw_data == weight:
                t.raw_data = moved
        return real(seq, step, spec)

    monkeypatch.setattr(relayout, "bundle", nudged)
    dst = tmp_path / "new.onnx"
    with pytest.raises(RuntimeError, match="the relaid file's step graph gives other numbers; nothing kept"):
        relayout.relayout(fixture_path("legacy/digits-gru1-format3"), dst)
    assert list(tmp_path.iterdir()) == []


def test_files_it_cannot_read_are_refused_with_one_line(tmp_path) -> None:
    src = fixture_path("legacy/digits-gru1-format3")
    meta = read_metadata(src.read_bytes(), "src")
    shared = json.loads(meta[STEP_SHARED_KEY])
    first = next(iter(shared))
    cases = {
        "not ONNX": (b"hello", ModelFileError, "not an ONNX model file"),
        "no shared map": (with_metadata(src.read_bytes(), {**meta, STEP_SHARED_KEY: "[1]"}), SpecError,
                          f"a corrupt {STEP_SHARED_KEY}"),
        "a missing weight": (with_metadata(src.read_bytes(), {**meta, STEP_SHARED_KEY: json.dumps(
            {**shared, first: "nothing"})}), ModelFileError, r"weights \['nothing'\] of the step graph are missing"),
        "an external weight not in the map": (with_metadata(src.read_bytes(), {**meta, STEP_SHARED_KEY: json.dumps(
            {k: v for k, v in shared.items() if k != first})}), ModelFileError, f"tensor '{first}' refers to external"),
    }
    for name, (data, error, why) in cases.items():
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(data)
        with pytest.raises(error, match=why):
            relayout.relayout(bad, tmp_path / "new.onnx")
        assert relayout.main([str(bad), str(tmp_path / "new.onnx")]) == 1, name
        assert not (tmp_path / "new.onnx").exists(), name


def test_a_current_file_is_rewritten_as_itself(tmp_path) -> None:
    src = fixture_path("digits-gru1")
    relayout.relayout(src, tmp_path / "same.onnx")
    assert edgeinfer.load(tmp_path / "same.onnx").spec == edgeinfer.load(src).spec
