"""Characters: generation determinism, stream snapshots (restore, fork, bytes across processes),
scoring, and the generate/score CLI with its bad inputs."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edgeinfer import InputError, Model, generate, score
from edgeinfer.spec import CharInput
from edgeinfer.stream import Snapshot
from edgeinfer.tasks.characters import char_tokenizer
from tests.conftest import ROOT, run_cli
from tests.fixtures import CHARACTERS_TEXT as TEXT


def test_char_model_spec_and_loss(char_model) -> None:
    model = Model(char_model)
    assert isinstance(model.spec.input, CharInput) and model.spec.precision == "int8"
    assert model.spec.output.kind == "classes" and model.spec.output.per == "sequence"
    # one class per id: padding and unknown, then the vocabulary's characters
    assert model.spec.classes == model.spec.input.vocab_size and model.spec.labels[2:] == model.spec.input.vocab
    val = TEXT[int(len(TEXT) * 0.9):]  # the validation text the export scored
    assert len(val) == model.spec.metrics["val_chars"]
    assert score(model, val) < np.log(len(set(TEXT)))  # measured now: better than uniform (2.69 against 3.40)


def test_same_seed_same_text(char_model) -> None:
    model = Model(char_model)
    a = "".join(generate(model, "First", 200, 0.8, 0, seed=7))
    b = "".join(generate(model, "First", 200, 0.8, 0, seed=7))
    c = "".join(generate(model, "First", 200, 0.8, 0, seed=8))
    assert a == b and a != c and len(a) == 200
    greedy = "".join(generate(model, "First", 50, 0.0))
    assert greedy == "".join(generate(model, "First", 50, 0.0, seed=123))  # temperature 0 ignores the seed
    top1 = "".join(generate(model, "First", 50, 1.0, top_k=1, seed=5))
    assert top1 == greedy  # top-1 sampling is greedy


def test_snapshot_restore_and_fork_continue_exactly(char_model) -> None:
    model = Model(char_model)
    stream = model.stream()
    stream.feed(np.array([5, 6, 7, 8], np.int64))
    snap = stream.snapshot()
    fork = stream.fork()
    want = "".join(generate(model, "", 100, 0.9, seed=3, stream=stream))
    assert "".join(generate(model, "", 100, 0.9, seed=3, stream=fork)) == want
    stream.restore(snap)
    assert "".join(generate(model, "", 100, 0.9, seed=3, stream=stream)) == want
    restored = model.stream()
    restored.restore(Snapshot.from_bytes(snap.to_bytes()))
    assert "".join(generate(model, "", 100, 0.9, seed=3, stream=restored)) == want


def test_snapshot_bytes_resume_in_another_process(char_model, tmp_path) -> None:
    model = Model(char_model)
    stream = model.stream()
    list(generate(model, "Before we", 30, 0.7, seed=1, stream=stream))
    (tmp_path / "snap.bin").write_bytes(stream.snapshot().to_bytes())
    want = "".join(generate(model, "", 80, 0.7, seed=2, stream=stream))
    code = ("import sys; from edgeinfer import Model; from edgeinfer import generate; "
            "m = Model(sys.argv[1]); s = m.stream(); s.restore(open(sys.argv[2], 'rb').read()); "
            "sys.stdout.write(''.join(generate(m, '', 80, 0.7, seed=2, stream=s)))")
    out = subprocess.run([sys.executable, "-c", code, str(char_model), str(tmp_path / "snap.bin")],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout == want


def test_snapshot_of_another_model_is_refused(char_model, make_model) -> None:
    snap = Model(make_model("lstm", 1)).stream().snapshot()
    with pytest.raises(InputError, match="snapshot was taken from another model"):
        Model(char_model).stream().restore(snap)
    with pytest.raises(InputError, match="not an edgeinfer stream snapshot"):
        Model(char_model).stream().restore(b"garbage")


def test_score_range_short_text_and_no_float_predict(char_model) -> None:
    model = Model(char_model)
    with pytest.raises(InputError, match=r"must be token ids \(integers\), got float32"):
        model.predict(np.zeros((1, 3, 16), np.float32))
    # a token model's predict reads ids: the next character's probabilities after them, as a stream's
    ids = np.array(char_tokenizer(model).encode("First Citizen"), np.int64)
    fed = model.stream()
    fed.feed(ids)
    np.testing.assert_allclose(model.predict(ids), fed.probabilities[0], atol=1e-6)
    np.testing.assert_allclose(model.predict(np.stack([ids, ids]))[1], fed.probabilities[0], atol=1e-6)
    with pytest.raises(InputError, match="token id out of range"):
        model.predict(np.array([1, 2, model.spec.classes]))
    nats = score(model, TEXT[:500])
    assert 0.5 < nats < np.log(len(set(TEXT))) + 0.5
    with pytest.raises(InputError, match="too short"):
        score(model, "a")


def test_generate_bad_arguments(char_model) -> None:
    model = Model(char_model)
    for kwargs, match in (({"max_chars": 0}, "max_chars"), ({"temperature": -1.0}, "temperature"),
                          ({"top_k": -2}, "top_k")):
        args = {"max_chars": 5, "temperature": 1.0, "top_k": 0, **kwargs}
        with pytest.raises(InputError, match=match):
            list(generate(model, "Fi", args["max_chars"], args["temperature"], args["top_k"]))


def test_cli_generate_and_score(char_model, tmp_path) -> None:
    m = ["--model", str(char_model)]
    out = run_cli("generate", *m, "--prompt", "First", "--max-chars", "120", "--seed", "1", "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["chars"] == 120 and row["text"] == "".join(generate(Model(char_model), "First", 120, 0.8, 0, 1))
    out = run_cli("generate", *m, "--prompt", "Fürst", "--max-chars", "5", "--seed", "1")
    assert out.returncode == 0 and "read as unknown: 'ü'" in out.stderr and "old name" not in out.stderr
    old = run_cli("generate", *m, "--prompt", "First", "--chars", "120", "--seed", "1", "--json")  # the old name
    assert old.returncode == 0 and json.loads(old.stdout) == row
    assert "--chars is now --max-chars" in old.stderr
    for args, needle in ((["--max-chars", "0"], "--max-chars/--chars/-n: expected a whole number >= 1, got '0'"),
                             (["--top-k", "-1"], "--top-k: expected a whole number >= 0, got '-1'"),
                             (["--temperature", "inf"], "--temperature/-t: expected a finite number, got 'inf'"),
                         (["--temperature", "-0.5"], "--temperature must be >= 0")):
        out = run_cli("generate", *m, *args)
        assert out.returncode == 2 and out.stderr.strip().startswith("error:") and needle in out.stderr
    (tmp_path / "t.txt").write_text(TEXT[:300])
    out = run_cli("score", *m, str(tmp_path / "t.txt"), "--json")
    row = json.loads(out.stdout)
    assert row["nats_per_char"] == pytest.approx(score(Model(char_model), TEXT[:300]), abs=1e-6)
    assert row["bits_per_char"] == pytest.approx(row["nats_per_char"] / np.log(2))
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    for name, needle in (("empty.txt", "empty file"), ("latin1.txt", "invalid UTF-8 at byte 3")):
        out = run_cli("score", *m, str(tmp_path / name))
        # an input that cannot be read: exit 1, as `sentiment --file`, `classify image`, `run` and `batch`
        assert out.returncode == 1 and needle in out.stderr and "Traceback" not in out.stderr


def test_cli_generate_huge_streams_and_ctrl_c_stops_cleanly(char_model) -> None:
    # a shell without job control starts background jobs with SIGINT ignored, and the child would
    # inherit that (as when this suite runs under `cmd &`): give it the default disposition, as a
    # terminal would
    proc = subprocess.Popen([sys.executable, "-m", "edgeinfer", "generate", "--model", str(char_model),
                             "--max-chars", "100000000", "--seed", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    first = proc.stdout.read(2000)  # characters arrive while it runs (flushed as produced)
    assert len(first) == 2000
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"Traceback" not in err and err.strip().endswith(b"interrupted")
