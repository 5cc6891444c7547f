"""Nothing escapes, nothing leaks: a model file reads no local file, strings from files cannot drive
the terminal, memory stays bounded for huge texts, images and snapshots, and the CLI answers the
way people use it (stdin, pipes, directories, blank lines) with one line per problem."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
import zipfile
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

import edgeinfer
from edgeinfer import ImageError, InputError, ModelFileError, SpecError
from edgeinfer.core import builtin_models
from edgeinfer.preprocess.image import read_gray
from tests.conftest import ROOT, run_cli
from tests.edgeinfer.fuzz import SECRET, _bomb, external
from tests.edgeinfer.modelfile import rewrite_spec

SEVEN = ROOT / "samples" / "digit-7-dark-on-light.pgm"
CLI = [sys.executable, "-m", "edgeinfer"]


def peak_rss_mb(code: str) -> tuple[float, str]:
    """Run `code` in a fresh interpreter; its peak RSS in MB and its stdout. (VmHWM, not
    ru_maxrss, which a child inherits from the parent it was forked from.)"""
    probe = code + ("\nfrom pathlib import Path\nprint('RSS', next(int(line.split()[1]) for line in "
                    "Path('/proc/self/status').read_text().splitlines() if line.startswith('VmHWM')) / 1024)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rss = float(out.stdout.split("RSS")[-1])
    return rss, out.stdout


# --- security ---------------------------------------------------------------------------------

def test_a_model_file_cannot_read_a_local_file(tmp_path, monkeypatch) -> None:
    (tmp_path / SECRET).parent.mkdir()
    (tmp_path / SECRET).write_bytes(np.arange(10, dtype=np.float32).tobytes())  # the head bias's 40 bytes
    evil = tmp_path / "evil.onnx"
    evil.write_bytes(external(builtin_models()["digits"].read_bytes(), "net.head.bias"))
    monkeypatch.chdir(tmp_path)  # where onnxruntime would resolve the relative location
    with pytest.raises(ModelFileError, match=r"tensor 'net\.head\.bias' refers to external data"):
        edgeinfer.load(evil)
    out = subprocess.run([*CLI, "classify", "image", "--model", str(evil), str(SEVEN)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "refers to external data" in out.stderr


def test_control_characters_from_a_model_file_are_escaped(make_model, tmp_path) -> None:
    labels = ["\x1b]0;owned\x07", "\x1b[2J", *(str(i) for i in range(2, 10))]
    path = tmp_path / "labels.onnx"
    rewrite_spec(make_model("gru", 1), path, lambda raw: raw["output"].update(names=labels))
    for args in (["info", str(path)], ["classify", "image", "--model", str(path), "--top", "10", str(SEVEN)]):
        out = run_cli(*args)
        assert out.returncode == 0 and "\x1b" not in out.stdout and "\x07" not in out.stdout
        assert "\\x1b]0;owned\\x07" in out.stdout and "\\x1b[2J" in out.stdout
    js = json.loads(run_cli("classify", "image", "--model", str(path), "--top", "10", "--json", str(SEVEN)).stdout)
    assert {t["label"] for t in js["top"]} == set(labels)  # JSON keeps the strings, escaped by JSON


def test_a_nan_in_the_spec_is_a_spec_error(make_model, tmp_path) -> None:
    path = tmp_path / "nan.onnx"
    rewrite_spec(make_model("gru", 1), path, lambda raw: raw["state"][0].update(initial=float("nan")))
    with pytest.raises(SpecError, match="NaN"):
        edgeinfer.load(path)


# --- bounded memory ---------------------------------------------------------------------------

@pytest.mark.stress
def test_predict_reads_a_huge_text_in_bounded_memory() -> None:
    rss, _ = peak_rss_mb(
        "import edgeinfer\n"
        "m = edgeinfer.load('sentiment')\n"
        "text = ' '.join(['great', 'movie', 'but', 'awful', 'plot', '!'][i % 6] for i in range(300_000))\n"
        "print('P', float(m.predict([text, 'fine'])[0, 1]))\n")
    assert rss < 200, f"peak RSS {rss:.0f} MB for a 300,000-word text (was 1.1 GB before chunking)"
    model = edgeinfer.load("sentiment")
    text = " ".join(["great", "movie", "but", "awful", "plot", "!"][i % 6] for i in range(20_000))  # 100k chars
    assert len(text) > 65_536
    ids = np.array(edgeinfer.tasks.sentiment.tokenizer(model).encode(text), np.int64)[None]
    whole = edgeinfer.arrays.softmax(model.sequence_logits(ids))[0]  # one sequence-graph call
    assert np.abs(model.predict([text])[0] - whole).max() < 1e-5


@pytest.mark.stress
def test_a_huge_image_decodes_in_bounded_memory(tmp_path) -> None:
    big = tmp_path / "seven.png"
    image = Image.new("RGBA", (6300, 6300), (255, 255, 255, 255))
    ImageDraw.Draw(image).line([(2000, 1500), (4300, 1500), (2900, 5000)], fill=(0, 0, 0, 255), width=500)
    image.save(big)
    rss, _ = peak_rss_mb(f"from edgeinfer.preprocess.image import read_gray\nprint(read_gray({str(big)!r}).shape)")
    assert rss < 400, f"peak RSS {rss:.0f} MB decoding a 6300x6300 RGBA PNG (was 1.4 GB)"
    result = run_cli("classify", "image", str(big), "--json")
    assert json.loads(result.stdout)["label"] == "7"


def test_exif_orientation_is_applied(tmp_path) -> None:
    upright = np.asarray(Image.open(SEVEN).convert("L"))
    rotated = tmp_path / "seven-rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": the pixels are stored turned
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(rotated, quality=95, exif=exif)
    assert np.abs(read_gray(rotated) * 255 - upright).mean() < 8  # read upright again
    assert json.loads(run_cli("classify", "image", str(rotated), "--json").stdout)["label"] == "7"


def test_nan_pixels_are_an_image_error_and_the_other_files_are_read(tmp_path) -> None:
    tif = tmp_path / "nan.tif"
    pixels = np.zeros((28, 28), np.float32)
    pixels[10:18, 12:16] = 1.0
    pixels[0, 0] = np.nan
    Image.fromarray(pixels, mode="F").save(tif)
    with pytest.raises(ImageError, match="NaN"):
        read_gray(tif)
    out = run_cli("classify", "image", str(tif), str(SEVEN))
    assert out.returncode == 1 and out.stdout.startswith(f"{SEVEN}: 7") and out.stderr.count("\n") == 1


def test_a_snapshot_bomb_is_refused_before_unpacking() -> None:
    stream = edgeinfer.load("characters").stream()
    bomb = _bomb(64 << 20)  # 64 MB of zeros, deflated to ~64 kB
    assert len(bomb) < 200_000
    with pytest.raises(InputError, match="would unpack to more than"):
        stream.restore(bomb)
    with pytest.raises(InputError, match="would unpack to more than"):
        edgeinfer.Snapshot.from_bytes(bomb, max_bytes=1 << 20)


def test_snapshot_fields_are_checked() -> None:
    model = edgeinfer.load("characters")
    stream = model.stream()
    stream.feed(np.array([5, 6], np.int64))
    snap = stream.snapshot()
    for meta in ({"steps": None}, {"steps": 1e30}, {"steps": -5}, {"steps": "3"}, {"model": 7}):
        buf = io.BytesIO()
        arrays = {f"state.{k}": v for k, v in snap.state.items()}
        np.savez(buf, meta=np.array(json.dumps({"magic": "edgeinfer-snapshot-1", "model": snap.model,
                                                "steps": snap.steps, **meta})), **arrays)
        with pytest.raises(InputError):
            model.stream().restore(buf.getvalue())
    listed = io.BytesIO()
    np.savez(listed, meta=np.array(json.dumps([1, 2])))
    with pytest.raises(InputError):
        edgeinfer.Snapshot.from_bytes(listed.getvalue())
    with zipfile.ZipFile(io.BytesIO(snap.to_bytes())) as z:
        assert sorted(z.namelist()) == ["logits.npy", "meta.npy", *(f"state.{k}.npy" for k in sorted(snap.state))]


def _central_entries(data: bytes) -> list[int]:
    """The offsets of a ZIP's central directory entries, as its end record declares them."""
    end = data.rindex(b"PK\x05\x06")
    count, at = int.from_bytes(data[end + 10:end + 12], "little"), int.from_bytes(data[end + 16:end + 20], "little")
    offsets = []
    for _ in range(count):
        offsets.append(at)
        at += 46 + sum(int.from_bytes(data[at + k:at + k + 2], "little") for k in (28, 30, 32))
    return offsets


def test_a_snapshot_whose_directory_lost_or_doubled_a_member_is_refused() -> None:
    """Damage that zipfile reads past is refused, as the JavaScript runtime refuses it: an entry's
    comment grown over the next entry (the last member, the logits, was silently dropped and the
    stream restored to step 0 with the state of step 3), a member twice, a stored member whose
    sizes differ; and a snapshot counting steps without logits, which no stream writes."""
    from edgeinfer.snapshot import Snapshot

    model = edgeinfer.load("sentiment")
    stream = model.stream()
    for t in (3, 5, 7):
        stream.step(t)
    snap = stream.snapshot()
    good = snap.to_bytes()
    damaged = "not an edgeinfer stream snapshot \\(damaged or of another kind\\)"
    entries = _central_entries(good)
    grown = bytearray(good)
    grown[entries[-2] + 32:entries[-2] + 34] = (len(good) - entries[-1]).to_bytes(2, "little")  # its comment
    with zipfile.ZipFile(io.BytesIO(bytes(grown))) as z:
        assert "logits.npy" not in z.namelist()  # what zipfile alone reads
    sizes = bytearray(good)
    sizes[entries[1] + 20:entries[1] + 24] = (int.from_bytes(good[entries[1] + 20:entries[1] + 24], "little")
                                              - 4).to_bytes(4, "little")  # compressed size of a stored member
    twice = io.BytesIO()
    with zipfile.ZipFile(twice, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name, and writes it
        with zipfile.ZipFile(io.BytesIO(good)) as src:
            for name in src.namelist():
                z.writestr(name, src.read(name))
            z.writestr("state.h.npy", src.read("state.h.npy"))
    for data in (bytes(grown), bytes(sizes), twice.getvalue()):
        fresh = model.stream()
        with pytest.raises(InputError, match=damaged):
            fresh.restore(data)
        assert fresh.steps == 0
    no_logits = Snapshot(snap.model, snap.state, None, snap.steps)
    for form in (no_logits, no_logits.to_bytes()):
        with pytest.raises(InputError, match="snapshot counts 3 steps but holds no logits; it is damaged"):
            model.stream().restore(form)
    model.stream().restore(good)


# --- the CLI as people use it -----------------------------------------------------------------

def _cli(*args: str, stdin: bytes | None = None, close_stdin: bool = False) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120,
                          stdin=subprocess.DEVNULL if close_stdin and stdin is None else None)


def test_stdin_rules() -> None:
    twice = _cli("sentiment", "-", "-", stdin=b"good")
    assert twice.returncode == 2 and twice.stderr.decode().count("\n") == 1 and b"at most once" in twice.stderr
    closed = subprocess.run(f"{sys.executable} -m edgeinfer sentiment - <&-", shell=True, capture_output=True,
                            cwd=ROOT, timeout=120)
    assert closed.returncode == 2 and b"stdin is closed" in closed.stderr and closed.stderr.count(b"\n") == 1
    image = _cli("classify", "image", "-", "--json", stdin=SEVEN.read_bytes())
    assert image.returncode == 0 and json.loads(image.stdout) == {**json.loads(image.stdout), "file": "stdin",
                                                                    "label": "7"}
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    scored = _cli("score", "-", "--json", stdin=text.encode())
    assert scored.returncode == 0 and json.loads(scored.stdout)["chars"] == len(text)


def test_directories_are_named_as_directories(tmp_path) -> None:
    for args in (["classify", "image", str(tmp_path)], ["sentiment", "--file", str(tmp_path)],
                 ["score", str(tmp_path)]):
        out = run_cli(*args)
        assert out.returncode in (1, 2) and out.stderr.count("\n") == 1 and "a directory" in out.stderr, args


def test_sentiment_file_rules(tmp_path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    out = run_cli("sentiment", "--file", str(empty))
    assert out.returncode == 1 and out.stderr == f"error: {empty}: empty file; expected one text per line\n"
    blanks = tmp_path / "blanks.txt"
    blanks.write_bytes(b"a great film\n\n  \nterrible\n")
    out = run_cli("sentiment", "--file", str(blanks), "--json")
    assert out.returncode == 0 and [json.loads(x)["line"] for x in out.stdout.splitlines()] == [1, 4]
    assert out.stderr == f"{blanks}: skipped 2 blank lines\n"
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a great film\nbad\x00line\nterrible\n")
    out = run_cli("sentiment", "--file", str(nul), "--json")
    assert out.returncode == 1 and [json.loads(x)["line"] for x in out.stdout.splitlines()] == [1, 3]
    assert out.stderr == f"error: {nul}:2: NUL byte in text; expected plain UTF-8 text\n"
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    out = run_cli("sentiment", "--file", str(binary))
    assert out.returncode == 1 and out.stdout == "" and "binary file" in out.stderr


def test_trace_json_is_json_lines() -> None:
    out = run_cli("sentiment", "--trace", "--json", "not bad at all", "awful")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and len(rows) == 2
    assert [t["word"] for t in rows[0]["trace"]] == ["not", "bad", "at", "all"]
    assert rows[0]["trace"][-1]["positive"] == rows[0]["positive"]


def test_bad_seed_usage_errors_and_closed_pipes() -> None:
    seed = run_cli("generate", "--seed", "-1", "--max-chars", "5")
    assert seed.returncode == 2 and seed.stderr.count("\n") == 1 and "seed must be" in seed.stderr
    usage = run_cli("classify", "image", "--top", "zero", str(SEVEN))
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and usage.stderr.startswith("error: ")
    piped = subprocess.run(f"{sys.executable} -m edgeinfer generate --max-chars 200000 --temperature 0 | head -c 20",
                           shell=True, capture_output=True, cwd=ROOT, timeout=120, executable="/bin/bash")
    assert len(piped.stdout) == 20 and piped.stderr == b""
    status = subprocess.run(f"set -o pipefail; {sys.executable} -m edgeinfer generate --max-chars 200000 | head -c 5 "
                            ">/dev/null", shell=True, cwd=ROOT, timeout=120, executable="/bin/bash")
    assert status.returncode == 0



@pytest.mark.parametrize(("key", "value", "why"), [
    ("location", "notes/secret.txt", "only 'edgeinfer-self'"),
    ("location", "edgeinfer-shared", "only 'edgeinfer-self'"),
    ("offset", "99999999", "outside the file"), ("length", "4", "where its shape needs"),
    ("offset", "1", "not a weight of the sequence graph"), ("offset", "-3", "outside the file"),
])
def test_the_step_graphs_byte_ranges_are_checked(tmp_path, key, value, why) -> None:
    """Format 4: the step graph's shared weights must be exactly a sequence-graph weight's bytes."""
    import base64

    from edgeinfer.spec import STEP_GRAPH_KEY
    from tests.edgeinfer.fuzz import _edit_initializer, _length_delimited, read_entry
    from tests.edgeinfer.modelfile import read_metadata, with_metadata

    data = builtin_models()["digits"].read_bytes()
    meta = read_metadata(data)
    step = base64.b64decode(meta[STEP_GRAPH_KEY])

    def edit(parts: list) -> bytes:
        return b"".join(_length_delimited(13, _length_delimited(1, key.encode()) + _length_delimited(2, value.encode()))
                        if f == 13 and read_entry(payload)[0] == key else raw for f, _, payload, raw in parts)

    bad = _edit_initializer(step, None, edit, "net.head.weight_Transposed")
    path = tmp_path / "ranges.onnx"
    path.write_bytes(with_metadata(data, {**meta, STEP_GRAPH_KEY: base64.b64encode(bad).decode()}))
    with pytest.raises(ModelFileError, match="damaged"):  # the step graph's checksum catches it first
        edgeinfer.load(path)
    from edgeinfer.fileformat import check_self_ranges

    with pytest.raises(ModelFileError, match=why):  # and the range check on its own
        check_self_ranges(bad, data, "ranges")


SNAPSHOT_CASES = 200  # per model: one state value of a real snapshot made impossible


@pytest.mark.parametrize("name", ["sentiment", "digits", "motions"])
def test_impossible_snapshot_states_are_refused_and_no_answer_is_ever_non_finite(name: str) -> None:
    """Finite but impossible values in a snapshot's state (a tanh state of 3e38, a negative step
    count): refused on restore where the model says what a state may hold, and never a NaN
    answer, through Stream and StreamBatch."""
    from edgeinfer.snapshot import Snapshot

    model = edgeinfer.load(name)
    rng = np.random.default_rng(27)
    x = [3, 5, 7] if model.spec.reads_tokens else list(rng.random((3, model.spec.input_size), np.float32))
    stream = model.stream()
    for t in x:
        stream.step(t)
    snap = stream.snapshot()
    refused = answered = 0
    for _ in range(SNAPSHOT_CASES):
        state = {k: v.copy() for k, v in snap.state.items()}
        key = list(state)[int(rng.integers(len(state)))]
        state[key].flat[int(rng.integers(state[key].size))] = rng.choice([3e38, -3e38, -5.0, 1e6, -1.0, 2.0])
        bad = Snapshot(snap.model, state, snap.logits, snap.steps)
        for through in ("Stream", "StreamBatch"):
            try:
                if through == "Stream":
                    alone = model.stream()
                    alone.restore(bad)
                    p = alone.step(x[0])
                else:
                    batch = model.stream_batch()
                    p = batch.step([batch.open(bad)], np.asarray([x[0]]))
            except InputError as exc:
                assert "damaged" in str(exc) or "non-finite" in str(exc), exc
                refused += 1
                continue
            assert np.isfinite(p).all()
            answered += 1
    assert refused + answered == 2 * SNAPSHOT_CASES and refused > 0
    if "h" in snap.state:
        state = {k: v.copy() for k, v in snap.state.items()}
        state["h"][...] = 3e38
        with pytest.raises(InputError, match="snapshot state 'h' holds 3e\\+38, beyond the 1 a stream"):
            model.stream().restore(Snapshot(snap.model, state, snap.logits, snap.steps))
    if "count" in snap.state:
        state = {k: v.copy() for k, v in snap.state.items()}
        state["count"][...] = -5
        with pytest.raises(InputError, match="snapshot state 'count' must count the steps read"):
            model.stream().restore(Snapshot(snap.model, state, snap.logits, snap.steps))


def test_a_readouts_impossible_state_is_refused_on_restore() -> None:
    """The pooled and n-gram readout's state (tests/fixtures, sentiment-gru1-readout): a running
    maximum beyond the tanh's [-1, 1], a sum beyond one a step, and previous words that are no
    token ids of the vocabulary are refused; the reachable state it had is taken back."""
    from edgeinfer.snapshot import Snapshot

    model = edgeinfer.load(ROOT / "tests" / "fixtures" / "sentiment-gru1-readout.onnx")
    stream = model.stream()
    for t in (3, 5, 7, 9):
        stream.step(t)
    snap = stream.snapshot()
    vocab = model.spec.token_vocab
    assert vocab is not None
    cases = [("pool_max", 1.5, "'pool_max' holds 1.5, beyond the 1 a stream"),
             ("pool_max", -3e38, r"'pool_max' holds 3e\+38, beyond the 1 a stream"),
             ("pool_sum", 4.5, "'pool_sum' holds 4.5, beyond the 4 a stream of this model can reach after 4 steps"),
             ("prev", -1.0, "'prev' must hold the latest words' token ids"),
             ("prev", 2.5, "'prev' must hold the latest words' token ids"),
             ("prev", float(vocab.vocab_size), rf"token ids \(whole numbers from 0 to {vocab.vocab_size - 1}\)"),
             ("prev", 3e38, "'prev' must hold the latest words' token ids")]
    for key, value, message in cases:
        state = {k: v.copy() for k, v in snap.state.items()}
        state[key].flat[0] = value
        fresh = model.stream()
        with pytest.raises(InputError, match=message):
            fresh.restore(Snapshot(snap.model, state, snap.logits, snap.steps))
        assert fresh.steps == 0
    fresh = model.stream()
    fresh.restore(snap)
    assert fresh.steps == 4 and np.array_equal(fresh.state["prev"], snap.state["prev"])


@pytest.mark.stress
def test_memory_bounds_of_a_tall_strip_image_and_of_open_streams(tmp_path) -> None:
    """A 1 x 39,999,999 palette PNG (78 kB, under the pixel limit) is refused by its length
    before it is decoded; a StreamBatch holds at most 65,536 open streams."""
    import resource

    from edgeinfer.batch import MAX_OPEN_STREAMS
    from edgeinfer.preprocess.image import load_digit

    strip = tmp_path / "strip.png"
    Image.new("P", (1, 39_999_999)).save(strip, optimize=True)
    assert strip.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match="longer than 32,768 on a side; resize the image first"):
        load_digit(strip, edgeinfer.load("digits").spec.input)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing decoded
    batch = edgeinfer.load("digits").stream_batch()
    streams = [batch.open() for _ in range(MAX_OPEN_STREAMS)]
    with pytest.raises(InputError, match="a StreamBatch holds at most 65,536 open streams"):
        batch.open()
    streams[0].close()
    batch.open()  # room again once one is closed


class _NaNSession:
    """A session whose every answer is NaN, state included: what a model gives on inputs far
    outside any it was trained on. Steps run the real session, then fill what it wrote."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def run_with_iobinding(self, binding: Any) -> None:
        self.real.run_with_iobinding(binding)
        for value in binding.get_outputs():
            value.update_inplace(np.full(value.shape(), np.nan, np.float32))

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.full_like(v, np.nan) for v in self.real.run(outputs, feeds)]


@pytest.mark.parametrize("name", ["digits", "sentiment"])
def test_non_finite_answers_are_refused_and_nothing_is_kept(name: str) -> None:
    """A step or a feed whose answers are NaN raises InputError naming the model, and the stream
    stays where it was: its state, logits and step count (a refused step once left NaN logits
    behind, and a snapshot that no stream would restore)."""
    model = edgeinfer.load(name)
    rows = np.random.default_rng(3).random((2, model.spec.input_size), np.float32)
    x = [3, 5] if model.spec.reads_tokens else list(rows)
    stream = model.stream()
    stream.step(x[0])
    before = stream.snapshot()
    stream._session = _NaNSession(stream._session)
    with pytest.raises(InputError, match="gave non-finite answers \\(NaN or infinity\\) and nothing was kept"):
        stream.step(x[1])
    loaded = stream.model
    real = loaded.session("sequence")
    loaded.session = lambda graph: _NaNSession(real)  # type: ignore[method-assign]
    with pytest.raises(InputError, match="gave non-finite answers"):
        stream.feed(np.asarray(x))
    after = stream.snapshot()
    assert after.steps == before.steps == 1
    for k, v in before.state.items():
        assert np.array_equal(after.state[k], v), k
    assert np.array_equal(after.logits, before.logits)
    assert np.isfinite(stream.probabilities).all()
    model.stream().restore(after.to_bytes())  # its snapshot is whole: no NaN logits in it
