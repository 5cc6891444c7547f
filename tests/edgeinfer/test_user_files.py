"""Files of users' own models (format 7, tests/fixtures/user-*) through the whole runtime, torch-free:
feature normalisation, values and per-step answers, streams, `edgeinfer run` live, `batch`, `info`."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer.errors import InputError, WrongTaskError
from edgeinfer.spec import ImageInput
from tests.conftest import ROOT, run_cli
from tests.fixtures import REBUILD, USER_MEAN, USER_STD, fixture_path

CLASSES, VALUES, WORDS = "user-gru-features-classes", "user-lstm-features-values-per-step", "user-rnn-words-classes"
TOL = 1e-6


def user(name: str) -> Path:
    path = fixture_path(name)
    if not path.is_file():
        pytest.fail(f"fixture model {path} is missing; rebuild it with `{REBUILD} --only user`")
    return path


def raw(n: int, t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, t, 3)) * USER_STD + USER_MEAN).astype(np.float32)


def normalised(x: np.ndarray) -> np.ndarray:
    return ((x - np.array(USER_MEAN, np.float32)) / np.array(USER_STD, np.float32)).astype(np.float32)


def test_the_runtime_normalises_raw_features_as_the_file_says() -> None:
    model = edgeinfer.load(user(CLASSES))
    assert model.spec.input.kind == "features" and model.spec.input.names == ("ax", "ay", "az")
    x = raw(4, 9)
    io = model.spec.io
    bare = model.session("sequence").run([io.output], {io.seq_input: normalised(x), **model.spec.initial_state(4)})[0]
    assert np.abs(model.predict_logits(x) - bare).max() <= TOL
    p = model.predict(x)
    assert np.allclose(p.sum(1), 1.0, atol=1e-6) and np.abs(p - model.spec.answers(bare)).max() <= TOL
    stream = model.stream()
    steps = [stream.step(row) for row in x[2]]
    assert np.abs(steps[-1] - p[2]).max() <= 1e-5
    assert np.array_equal(x, raw(4, 9))  # the caller's array is never normalised in place


def test_values_per_step_answers_are_the_outputs_themselves() -> None:
    model = edgeinfer.load(user(VALUES))
    spec = model.spec
    assert (spec.output.kind, spec.output.per, spec.labels) == ("values", "step", ("speed", "heading"))
    assert spec.io.step_probabilities == ""
    x = raw(3, 6, seed=1)
    every = model.predict(x)  # (3, 6, 2): one answer per step, no softmax
    assert every.shape == (3, 6, 2) and not np.allclose(every.sum(-1), 1.0)
    stream = model.stream()
    steps = np.stack([stream.step(row) for row in x[0]])
    assert np.abs(steps - every[0]).max() <= 1e-5
    steps[0] += 1  # the answers are copies: the stream's buffers are not the caller's
    assert np.abs(stream.probabilities[0] - every[0, -1]).max() <= 1e-5
    fed = model.stream()
    assert np.abs(fed.feed(x[1]) - every[1, -1]).max() <= 1e-5
    batch = model.stream_batch()
    streams = [batch.open() for _ in range(3)]
    for t in range(6):
        got = batch.step(streams, x[:, t])
        assert np.abs(got - every[:, t]).max() <= 1e-5
    with pytest.raises(InputError, match="early exit needs class probabilities"):
        model.early_exit(x, 0.9)


def test_token_model_reads_texts_and_ids() -> None:
    model = edgeinfer.load(user(WORDS))
    assert model.spec.input.kind == "words" and model.spec.io.lengths == "lengths"
    texts = ["good movie", "not very good", "bad"]
    by_text = model.predict(texts)
    ids = [[2, 6], [4, 5, 2], [3]]  # good=2, bad=3, not=4, very=5, movie=6
    for text_p, row in zip(by_text, ids, strict=True):
        assert np.abs(model.predict(np.array(row)) - text_p).max() <= 1e-5
    with pytest.raises(WrongTaskError, match="a model that reads words; expected a model that reads image"):
        model.require_input(ImageInput)


def test_info_describes_what_the_model_reads_and_gives() -> None:
    got = run_cli("info", str(user(VALUES)))
    assert got.returncode == 0, got.stderr
    assert "features -> values per step; values speed, heading" in got.stdout
    assert "3 features per step (ax, ay, az), normalised per feature" in got.stdout
    assert "output y (B, T, 2)" in got.stdout and "format        8" in got.stdout


def test_run_prints_each_steps_answer_and_names_bad_lines() -> None:
    model = edgeinfer.load(user(CLASSES))
    x = raw(2, 4, seed=2)
    want = [model.predict(x[0, : t + 1]) for t in range(4)]
    lines = [",".join(map(str, r)) for r in x[0, :2].tolist()]
    lines += ["1, two, 3", json.dumps(x[0, 2].tolist()), "1 2", "1 nan 3", "\t".join(map(str, x[0, 3].tolist())),
              "", " ".join(map(str, x[1, 0].tolist()))]
    got = run_cli("run", str(user(CLASSES)), "-", "--json", stdin="\n".join(lines) + "\n")
    assert got.returncode == 1
    assert got.stderr.splitlines() == ["error: stdin:3: 'two' is not a number",
                                       "error: stdin:5: 2 values; the model reads 3 per step",
                                       "error: stdin:6: NaN or infinite value; expected finite numbers"]
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    assert [(r["sequence"], r["step"]) for r in rows] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1)]
    for r, p in zip(rows, want, strict=False):  # bad lines left the state as it was
        assert abs(r["probabilities"]["moving"] - float(p[1])) <= 1e-5
    first = model.predict(x[1, :1])  # after the blank line: a fresh sequence
    assert abs(rows[-1]["probability"] - float(first.max())) <= 1e-5
    stop = run_cli("run", str(user(CLASSES)), "-", "--stop-on-error", stdin="1,2,3\nx\n1,2,3\n")
    assert stop.returncode == 1 and len(stop.stdout.splitlines()) == 1
    every = run_cli("run", str(user(VALUES)), "-", "--every", "2", stdin="1,2,3\n" * 5)
    assert every.returncode == 0 and [line.split()[0] for line in every.stdout.splitlines()] == ["1:2", "1:4"]
    assert every.stdout.splitlines()[0].split()[1].startswith("speed=")


def test_run_answers_each_line_as_it_arrives() -> None:
    """A pipe held open: the answer to a line is printed before the next line is written."""
    proc = subprocess.Popen([sys.executable, "-m", "edgeinfer", "run", str(user(CLASSES)), "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for step in (1, 2, 3):
            proc.stdin.write(b"1.0,2.0,3.0\n")
            proc.stdin.flush()
            deadline = time.monotonic() + 60
            ready: list = []
            while not ready and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            assert ready, f"no answer to line {step} within 60 s while the pipe stayed open"
            assert proc.stdout.readline().decode().startswith(f"1:{step} ")
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_run_token_ids_one_per_line_and_missing_file() -> None:
    got = run_cli("run", str(user(WORDS)), "-", stdin="2\n6\nmovie\n")
    assert got.returncode == 1 and got.stderr.strip() == (
        "error: stdin:3: expected one token id (an integer) per line, got 'movie'")
    assert len(got.stdout.splitlines()) == 2
    missing = run_cli("run", str(user(WORDS)), "no-such-file.csv")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no-such-file.csv: cannot read")


def test_batch_reads_sequences_from_json_lines_csv_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = edgeinfer.load(user(CLASSES))
    x = raw(3, 5, seed=3)
    with (tmp_path / "a.jsonl").open("w") as fh:
        for seq in x:
            fh.write(json.dumps({"steps": seq.tolist()}) + "\n")
        fh.write(json.dumps({"steps": [[1, 2]]}) + "\n")
    (tmp_path / "b.csv").write_text('id,steps\n1,"' + json.dumps(x[0].tolist()).replace('"', '""') + '"\n')
    pq.write_table(pa.table({"steps": [x[1].tolist()]}), tmp_path / "c.parquet")
    got = run_cli("batch", str(user(CLASSES)), str(tmp_path / "a.jsonl"), str(tmp_path / "b.csv"),
                  str(tmp_path / "c.parquet"), "--out", str(tmp_path / "out.jsonl"))
    assert got.returncode == 1  # one input was an error
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    want = model.predict(np.concatenate([x, x[:2]]))
    assert [r["label"] for r in rows] == [model.spec.labels[i] for i in want.argmax(1)]
    assert max(abs(r["probabilities"]["moving"] - p[1]) for r, p in zip(rows, want, strict=True)) <= 1e-5
    errors = (tmp_path / "out.jsonl.errors.jsonl").read_text()
    assert "a.jsonl:4: steps of shape (1, 2); expected (T, 3) with T >= 1" in errors
    per_step = run_cli("batch", str(user(VALUES)), str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "v.parquet"))
    table = pq.read_table(tmp_path / "v.parquet").to_pylist()
    every = edgeinfer.load(user(VALUES)).predict(x)
    assert per_step.returncode == 1 and len(table) == 3 and len(table[0]["steps"]) == 5
    assert abs(table[2]["steps"][4]["values"]["heading"] - every[2, 4, 1]) <= 1e-5


def test_bench_and_info_json_of_a_users_file() -> None:
    got = run_cli("bench", str(user(VALUES)), "--streams", "4")
    assert got.returncode == 0, got.stderr
    assert "features -> values per step, lstm x2 8" in got.stdout and "full sequences of 100 steps" in got.stdout
    info = json.loads(run_cli("info", str(user(WORDS)), "--json").stdout)
    assert info["file_format"] == info["format_version"] == 8 and info["output"]["names"] == ["still", "moving"]
    assert info["input"]["vocab"] == ["good", "bad", "not", "very", "movie"]


def test_run_early_exit_answers_when_sure_and_skips_the_rest_of_the_sequence() -> None:
    model = edgeinfer.load(user(CLASSES))
    x = raw(2, 6, seed=4)
    tops = [float(model.predict(x[0, : t + 1]).max()) for t in range(6)]
    threshold = sorted(tops)[3]  # reached within the sequence, not at its first step necessarily
    first = next(t for t, p in enumerate(tops) if p >= threshold) + 1
    lines = [",".join(map(str, r)) for r in x[0].tolist()] + [""] + [",".join(map(str, r)) for r in x[1].tolist()]
    got = run_cli("run", str(user(CLASSES)), "-", "--json", "--every", "100", "--early-exit", str(threshold),
                  stdin="\n".join(lines) + "\n")
    assert got.returncode == 0, got.stderr
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    assert rows[0]["sequence"] == 1 and rows[0]["step"] == first and rows[0]["early_exit"] is True
    assert all(r["sequence"] == 2 for r in rows[1:])  # the rest of sequence 1 was skipped, 2 read afresh
    values = run_cli("run", str(user(VALUES)), "-", "--early-exit", "0.9", stdin="1,2,3\n")
    assert values.returncode == 2 and "needs class probabilities; this model gives values" in values.stderr
    bad = run_cli("run", str(user(CLASSES)), "-", "--early-exit", "1.5", stdin="1,2,3\n")
    assert bad.returncode == 2 and "expected a probability in (0, 1]" in bad.stderr
