"""Spec round trip and every validation error of loading a model."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import edgeinfer
from edgeinfer import Model, ModelFileError, ProviderError, SpecError, WrongTaskError
from edgeinfer.spec import (
    FORMAT_VERSION,
    SELF_RANGES_FORMAT,
    SPEC_KEY,
    CharInput,
    ImageInput,
    ModelSpec,
    OutputSpec,
    Readout,
    TextInput,
)
from tests.conftest import ROOT, run_cli
from tests.edgeinfer.conftest import committed
from tests.edgeinfer.modelfile import read_metadata, strip_spec
from tests.edgeinfer.modelfile import rewrite_spec as _rewrite_spec


def test_spec_json_round_trip(make_model) -> None:
    spec = Model(make_model("lstm", 2)).spec
    again = ModelSpec.from_json(spec.to_json())
    # written in the current format whatever the file's (the spec keeps the file's own version)
    assert again == dataclasses.replace(spec, format_version=FORMAT_VERSION) and again.to_json() == spec.to_json()
    assert ModelSpec.from_json(again.to_json()) == again
    assert json.loads(spec.to_json())["format_version"] == FORMAT_VERSION == 8
    assert [(s.name, s.output, s.layers, s.hidden) for s in spec.state] == [("h", "h_next", 2, 16),
                                                                            ("c", "c_next", 2, 16)]
    state = spec.initial_state(3)
    assert state["c"].shape == (2, 3, 16) and state["c"].dtype == np.float32 and not state["c"].any()


def test_not_onnx(tmp_path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match=r"notes\.onnx: not an ONNX model"):
        Model(path)


def test_empty_and_truncated(make_model, tmp_path) -> None:
    data = make_model("gru", 1).read_bytes()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="empty file"):
        Model(tmp_path / "empty.onnx")
    with pytest.raises(ModelFileError, match=r"cut\.onnx: truncated ONNX file"):
        Model(tmp_path / "cut.onnx")


def test_onnx_without_spec(make_model, tmp_path) -> None:
    strip_spec(make_model("rnn", 1), tmp_path / "plain.onnx")
    with pytest.raises(SpecError, match=r"plain\.onnx: ONNX file without an edgeinfer spec"):
        Model(tmp_path / "plain.onnx")


def test_newer_format_version(make_model, tmp_path) -> None:
    _rewrite_spec(make_model("rnn", 1), tmp_path / "future.onnx", lambda raw: raw.update(format_version=99))
    with pytest.raises(SpecError, match=r"format version 99 is newer.*upgrade edgeinfer"):
        Model(tmp_path / "future.onnx")


def test_malformed_spec(make_model, tmp_path) -> None:
    _rewrite_spec(make_model("rnn", 1), tmp_path / "bad.onnx", lambda raw: raw.update(cell="transformer"))
    with pytest.raises(SpecError, match="unknown cell 'transformer'"):
        Model(tmp_path / "bad.onnx")
    # format 7: the state is what the spec declares, and the graphs must take and give exactly that
    _rewrite_spec(make_model("lstm", 1), tmp_path / "nostate7.onnx", lambda raw: raw["state"].pop())
    with pytest.raises(ModelFileError, match="the graph's inputs and outputs do not match the spec"):
        Model(tmp_path / "nostate7.onnx").load_sessions()
    # formats 1-6: the state's names follow from the cell
    _rewrite_spec(committed("legacy/digits-lstm1-int8-decomposed-format6"), tmp_path / "nostate.onnx",
                  lambda raw: raw["state"].pop())
    with pytest.raises(SpecError, match="state must be named"):
        Model(tmp_path / "nostate.onnx")


def test_ngram_pool_in_the_spec(tmp_path) -> None:
    """Format 3 names how the n-gram readout pools; a format-2 readout (no `ngram_pool`) is "mean".
    (That export writes the spec the runtime reads back: tests/export/test_fixtures.py.) The spec of
    a file written by edgeinfer's format-3 exporter, kept in tests/fixtures/legacy/ (the runtime
    refuses the file itself: its step graph's layout is older; the spec is checked first)."""
    sentiment_model = committed("legacy/sentiment-gru1-readout-format3")
    raw = json.loads(read_metadata(sentiment_model.read_bytes())[SPEC_KEY])
    spec = ModelSpec.from_dict(raw)
    assert spec.readout.ngram_buckets and spec.format_version == 3 and spec.readout.ngram_pool == "mean"
    raw["format_version"] = 2
    del raw["readout"]["ngram_pool"]
    assert ModelSpec.from_dict(raw).readout == spec.readout
    _rewrite_spec(sentiment_model, tmp_path / "bad.onnx", lambda raw: raw["readout"].update(ngram_pool="median"))
    with pytest.raises(SpecError, match="unknown ngram_pool 'median'; expected one of mean, sum"):
        Model(tmp_path / "bad.onnx")


def test_wrong_task(make_model, sentiment_model, tmp_path) -> None:
    model = Model(sentiment_model)
    with pytest.raises(WrongTaskError, match=f"^{re.escape(str(sentiment_model))}: a model that reads words; "
                                             "expected a model that reads image$"):
        model.require_input(ImageInput)
    with pytest.raises(WrongTaskError, match="reads words; expected a model that reads chars"):
        model.require_input(CharInput)
    assert model.require_input(TextInput) is model.spec.input
    # a spec (formats 1-6) whose task does not match its input is refused when the file loads
    _rewrite_spec(committed("legacy/digits-lstm1-int8-decomposed-format6"), tmp_path / "senti.onnx",
                  lambda raw: raw.update(task="sentiment"))
    with pytest.raises(SpecError, match="a sentiment model must read words input, not image"):
        Model(tmp_path / "senti.onnx")
    # format 7 has no task at all
    def as_format_7(raw: dict, **extra: object) -> None:
        seven = json.loads(ModelSpec.from_dict(raw).to_json())
        raw.clear()
        raw.update(seven, **extra)
    _rewrite_spec(make_model("gru", 1), tmp_path / "seven.onnx", as_format_7)
    assert Model(tmp_path / "seven.onnx").spec.format_version == FORMAT_VERSION
    _rewrite_spec(make_model("gru", 1), tmp_path / "seven-task.onnx", lambda raw: as_format_7(raw, task="digits"))
    with pytest.raises(SpecError, match=r"seven-task\.onnx: spec field 'spec' has unknown field\(s\) 'task'$"):
        Model(tmp_path / "seven-task.onnx")


def test_missing_model_lists_builtins() -> None:
    with pytest.raises(ModelFileError,
                       match=r"no-such-model: no such model file or built-in model \(built-in: .*digits"):
        Model("no-such-model")


def test_unavailable_provider_lists_available(make_model) -> None:
    # refused when the model is loaded, not at the first run
    with pytest.raises(ProviderError,
                       match=r"'NoSuchExecutionProvider' is not available; available: .*CPUExecutionProvider"):
        Model(make_model("lstm", 1), providers="NoSuchExecutionProvider")


def test_auto_provider_and_short_names() -> None:
    assert edgeinfer.session.resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert edgeinfer.session.resolve_providers("auto")[0] in edgeinfer.available_providers()
    assert edgeinfer.session.resolve_providers(None) == ["CPUExecutionProvider"]


def test_bad_input_shapes(make_model) -> None:
    model = Model(make_model("lstm", 1))
    with pytest.raises(edgeinfer.InputError, match=r"expected \(B, T, 28\)"):
        model.predict(np.zeros((2, 5, 27), np.float32))
    with pytest.raises(edgeinfer.InputError, match=r"expected \(1, 28\) or \(28\)"):
        model.stream().step(np.zeros(3))
    with pytest.raises(edgeinfer.InputError, match="read nothing yet"):
        _ = model.stream().probabilities


def test_many_streams_many_threads_share_one_model(make_model) -> None:
    model = Model(make_model("gru", 2))
    xs = np.random.default_rng(3).standard_normal((8, 28, 28)).astype(np.float32)
    want = model.predict(xs)
    got: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        stream = model.stream()
        for _ in range(20):  # many steps per thread, reusing the stream's buffers
            stream.reset()
            for t in range(28):
                out = stream.step(xs[i, t])
        got[i] = out

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.abs(np.stack([got[i] for i in range(8)]) - want).max() <= 1e-6


def test_import_never_loads_torch_or_onnx() -> None:
    code = ("import sys, edgeinfer, edgeinfer.cli, edgeinfer.cli.app; edgeinfer.cli.app.build(); "
            "print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_builtin_digits_model_spec() -> None:
    spec = Model("digits").spec
    assert (spec.input.kind, spec.cell, spec.precision) == ("image", "lstm", "int8")
    assert spec.output == OutputSpec("classes", "sequence", tuple("0123456789")) and spec.labels == tuple("0123456789")
    assert spec.extras == {} and spec.readout == Readout()
    assert len(spec.provenance["checkpoint_sha256"]) == 64
    assert dataclasses.asdict(spec)["input"]["rows"] == 28


LEGACY = ["legacy/sentiment-gru1-short-format6", "legacy/digits-lstm1-int8-decomposed-format6",
          "legacy/characters-lstm-int8-format4"]


@pytest.mark.parametrize("legacy", LEGACY)
def test_files_of_formats_4_to_6_load_as_their_format_7_rewrite(legacy) -> None:
    """A file of format 4-6 (task, labels, readout) is read in format 7 terms: the same spec as
    its format 7 rewrite beside it (edgeinfer_export.relayout: graphs and weights byte for byte),
    and the same numbers, step by step and whole."""
    old, new = Model(committed(legacy)), Model(committed(re.sub(r"-format\d$", "-format7", legacy)))
    assert 4 <= old.spec.format_version <= 6 and new.spec.format_version == 7  # the rewrite kept as it was written
    assert dataclasses.replace(old.spec, format_version=0, provenance={}, metrics={}) == \
        dataclasses.replace(new.spec, format_version=0, provenance={}, metrics={})
    vocab = old.spec.token_vocab
    x = np.arange(2 * 6).reshape(2, 6) % (vocab.vocab_size - 2) + 2 if vocab is not None else \
        np.random.default_rng(0).standard_normal((2, 6, old.spec.input_size)).astype(np.float32)
    a, b = old.stream(2), new.stream(2)
    for t in range(6):
        assert np.array_equal(a.step(x[:, t]), b.step(x[:, t]))
    assert np.array_equal(old.sequence_logits(x), new.sequence_logits(x))


OLDER_LAYOUT = ["legacy/digits-gru1-format3", "legacy/sentiment-gru1-readout-format3"]


@pytest.mark.parametrize("legacy", OLDER_LAYOUT)
@pytest.mark.parametrize("version", [1, 2, 3])
def test_files_of_formats_1_to_3_are_refused_with_the_command_that_rewrites_them(legacy, version, tmp_path) -> None:
    """Formats 1-3 named the sequence initializers holding the step graph's weights (format 4 on:
    their byte ranges in the file). The runtime refuses them, and the message is the fix: the
    command that rewrites one in the current format (tests/edgeinfer_export/test_relayout.py)."""
    path = tmp_path / f"old{version}.onnx"
    _rewrite_spec(committed(legacy), path, lambda raw: raw.update(format_version=version))
    hint = (f"^{re.escape(str(path))}: a format {version} file, whose step graph names its shared weights by "
            f"tensor name \\(formats 1-3\\), which edgeinfer no longer reads; rewrite it in format {FORMAT_VERSION} "
            "with `python -m edgeinfer_export\\.relayout OLD\\.onnx NEW\\.onnx` \\(weights untouched\\)$")
    assert SELF_RANGES_FORMAT == 4
    with pytest.raises(ModelFileError, match=hint):
        Model(path)
    out = run_cli("info", str(path))
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "python -m edgeinfer_export.relayout OLD.onnx NEW.onnx" in out.stderr and "Traceback" not in out.stderr


def test_a_name_is_the_built_in_even_beside_a_file_of_that_name(tmp_path, monkeypatch, caplog) -> None:
    """A file called `digits` in the working folder never replaces the built-in: the name loads
    the built-in (and the shadowed file is noted); ./digits or a Path is the file."""
    (tmp_path / "digits").write_bytes(b"not a model")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="edgeinfer"):
        model = edgeinfer.load("digits")
    assert model.path == edgeinfer.builtin_models()["digits"]
    assert "'digits' is the built-in model" in caplog.text and "give ./digits" in caplog.text
    for path in ("./digits", tmp_path / "digits"):
        with pytest.raises(ModelFileError, match="not an ONNX model file"):
            edgeinfer.load(path)
    done = subprocess.run([sys.executable, "-m", "edgeinfer", "info", "digits"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0 and str(edgeinfer.builtin_models()["digits"]) in done.stdout
    assert done.stderr.startswith("note: 'digits' is the built-in model"), done.stderr
    (tmp_path / "digits").unlink()
    caplog.clear()
    with caplog.at_level("WARNING", logger="edgeinfer"):
        edgeinfer.load("digits")
    assert caplog.text == ""  # nothing to note without such a file


FLIPS = 600  # random single-bit flips of the spec JSON


def test_the_checksums_cover_the_spec(tmp_path) -> None:
    """Format 8: a spec changed after export (its labels reversed, or any single flipped bit) is a
    damaged file, never another model. Format 7 files, written before, keep their rules."""
    from tests.edgeinfer.modelfile import read_metadata, with_metadata

    src = edgeinfer.builtin_models()["sentiment"]
    _rewrite_spec(src, tmp_path / "reversed.onnx", lambda raw: raw["output"]["names"].reverse(), fix=False)
    with pytest.raises(ModelFileError, match=r"the spec is damaged \(its sha256 does not match"):
        Model(tmp_path / "reversed.onnx")
    data = committed("digits-gru1").read_bytes()
    text = read_metadata(data)["edgeinfer.spec"].encode()
    rng = np.random.default_rng(600)
    outcomes: dict[str, int] = {}
    for _ in range(FLIPS):
        flipped = bytearray(text)
        flipped[int(rng.integers(len(flipped)))] ^= 1 << int(rng.integers(8))
        meta = read_metadata(data)
        meta["edgeinfer.spec"] = flipped.decode("utf-8", "replace")
        path = tmp_path / "flipped.onnx"
        path.write_bytes(with_metadata(data, meta))
        try:
            Model(path)
            outcomes["loaded"] = outcomes.get("loaded", 0) + 1
        except edgeinfer.EdgeInferError as exc:
            kind = "checksum" if "the spec is damaged" in str(exc) else type(exc).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1
    assert "loaded" not in outcomes and sum(outcomes.values()) == FLIPS, outcomes
    seven = committed("legacy/sentiment-gru1-short-format7")
    _rewrite_spec(seven, tmp_path / "seven.onnx", lambda raw: raw.update(metrics={"note": 1.0}), fix=False)
    assert Model(tmp_path / "seven.onnx").spec.metrics == {"note": 1.0}  # format 7: the spec is not covered


def test_millions_of_tiny_protobuf_fields_are_refused_fast(tmp_path) -> None:
    """A 30 MB file of 10 million one-byte fields: refused after the first 100,000, in well under
    a second and without a list of every field (it took 1.84 GB and 50 s before the cap)."""
    import time

    from edgeinfer.fileformat import MAX_FIELDS_TOTAL, external_tensors

    path = tmp_path / "tiny.onnx"
    path.write_bytes(b"\x08\x08" + b"\xa0\x01\x00" * 10_000_000)
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"tiny\.onnx: more protobuf fields than any model needs"):
        edgeinfer.load(path)
    assert time.perf_counter() - t0 < 5.0
    # every message under the cap, the file over the total: 20 nodes of 99,000 empty attributes
    node = b"\x2a\x00" * 99_000
    graph = (b"\x0a" + _varint(len(node)) + node) * 20
    model = b"\x08\x08" + b"\x3a" + _varint(len(graph)) + graph
    assert MAX_FIELDS_TOTAL < 20 * 99_000
    with pytest.raises(ModelFileError, match=r"many\.onnx: more protobuf fields than any model needs"):
        external_tensors(model, "many.onnx")


def test_the_one_protobuf_walker_checks_every_bound() -> None:
    """fileformat.proto_spans walks every message the runtime reads (fields, checksums, initializer
    ranges): each field's key start, value start and value end, as offsets into the whole buffer
    also for a sub-message, whose end is a bound like the buffer's."""
    from edgeinfer.fileformat import check_self_ranges, initializer_ranges, proto_fields, proto_spans

    msg = b"\x08\x96\x01" + b"\x12\x03abc" + b"\x1d\x01\x02\x03\x04" + b"\x21" + bytes(8)
    assert list(proto_spans(msg)) == [(1, 0, 0, 1, 3), (2, 2, 3, 5, 8), (3, 5, 8, 9, 13), (4, 1, 13, 14, 22)]
    assert proto_fields(msg) == [(1, 0, 150), (2, 2, b"abc"), (3, 5, 0x04030201), (4, 1, 0)]
    outer = b"\x0a\x05" + b"\x12\x03abc" + b"\x08\x01"
    assert list(proto_spans(outer, 2, 7)) == [(2, 2, 2, 4, 7)]
    for data, begin, end in ((outer, 2, 6), (b"\x08\x96", 0, None), (b"\x08\x96\x01", 0, 2), (b"\x12\x05ab", 0, None),
                             (b"\x1d\x01\x02", 0, None), (b"\x08\x01\x21" + bytes(8), 0, 9)):
        with pytest.raises(EOFError):
            list(proto_spans(data, begin, end))
    for data, why in ((b"\x00\x01", "field number 0"), (b"\x0b", "wire type 3"), (b"\x0f", "wire type 7"),
                      (b"\x08" + b"\xff" * 10 + b"\x01", "varint too long")):
        with pytest.raises(ValueError, match=why):
            list(proto_spans(data))
    # a model whose graph holds a cut initializer: no ranges, and the range check names the file
    cut = b"\x08\x08" + b"\x3a\x02" + b"\x2a\x05"
    with pytest.raises(EOFError):
        initializer_ranges(cut)
    with pytest.raises(ModelFileError, match=r"^cut: corrupt ONNX file; export it again$"):
        check_self_ranges(b"", cut, "cut")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_a_file_larger_than_any_model_is_refused_unread(tmp_path) -> None:
    path = tmp_path / "sparse.onnx"
    with open(path, "wb") as fh:
        fh.truncate(2**31 + 1)  # sparse: no disk used; reading it would take 2 GiB of memory
    with pytest.raises(ModelFileError, match=r"sparse\.onnx: 2,147,483,649 bytes is larger than any model file can be"):
        edgeinfer.load(path)
