"""`edgeinfer batch` as people run it (local engine), and `sentiment --file` on the bulk path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edgeinfer import Model
from edgeinfer.cli.render import preview
from tests.conftest import ROOT, kill_batch_after_parts, run_cli, run_cli_on_terminal
from tests.edgeinfer.conftest import committed
from tests.fixtures import sentiment_name


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _reviews(imdb_test, n: int) -> list[str]:
    texts, _ = imdb_test
    return [" ".join(t.split()) for t in texts[::25][:n]]  # one per line: newlines folded


def test_sentiment_file_equals_predict_on_real_reviews(imdb_test, tmp_path) -> None:
    reviews = _reviews(imdb_test, 400)
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(reviews[:200]) + "\n\n" + "\n".join(reviews[200:]) + "\n")
    out = run_cli("sentiment", "--json", "--file", str(path))
    assert out.returncode == 0 and out.stderr == f"{path}: skipped 1 blank line\n"
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["line"] for r in rows] == [*range(1, 201), *range(202, 402)]
    want = Model("sentiment").predict(reviews)
    np.testing.assert_allclose([r["positive"] for r in rows], want[:, 1], atol=1e-5)
    assert [r["label"] for r in rows] == ["positive" if p[1] > p[0] else "negative" for p in want]
    assert [r["text"] for r in rows] == [r[:200] for r in reviews]  # each text's first 200 characters
    text = run_cli("sentiment", "--file", str(path)).stdout.splitlines()
    assert text[0] == f"{rows[0]['label']} ({rows[0]['positive']:.3f}): {path}:1  {preview(reviews[0])}"
    assert len(text) == 400


def test_sentiment_file_rules_kept_on_the_bulk_path(tmp_path) -> None:
    model = str(committed(sentiment_name("gru2")))
    path = tmp_path / "r.txt"
    path.write_bytes(b"The movie was great!\n\xff\xfebroken\n   \n...\nawful\n\n")
    out = run_cli("sentiment", "--model", model, "--json", "--file", str(path))
    assert out.returncode == 1 and [json.loads(x)["line"] for x in out.stdout.splitlines()] == [1, 5]
    assert out.stderr.splitlines() == [f"error: {path}:2: invalid UTF-8 at byte 0; expected UTF-8 text",
                                       f"error: {path}:4: empty text (no words); expected at least one word",
                                       f"{path}: skipped 2 blank lines"]
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"good\nbad\x00line\n")
    for trace in ([], ["--trace"]):
        got = run_cli("sentiment", "--model", model, "--file", str(nul), *trace)
        assert got.returncode == 1 and got.stderr == f"error: {nul}:2: NUL byte in text; expected plain UTF-8 text\n"
    traced = run_cli("sentiment", "--model", model, "--trace", "--json", "--file", str(path))
    rows = [json.loads(x) for x in traced.stdout.splitlines()]
    assert [t["word"] for t in rows[0]["trace"]] == ["the", "movie", "was", "great", "!"]  # the per-word path
    plain = _rows_of(run_cli("sentiment", "--model", model, "--json", "--file", str(path)))
    assert [r["positive"] for r in rows] == [r["positive"] for r in plain]
    assert traced.stderr == out.stderr


def _rows_of(out: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(x) for x in out.stdout.splitlines()]


def test_batch_every_format_exit_code_and_summary(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("The movie was great!\n\nawful\n...\n")
    (tmp_path / "b.jsonl").write_text('{"body": "not bad"}\n{"text": "x"}\n')
    (tmp_path / "c.csv").write_text("review\ngood\n")
    pq.write_table(pa.table({"review": ["i loved it"]}), tmp_path / "d.parquet")
    out = tmp_path / "out.jsonl"
    got = run_cli("batch", "sentiment", str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl"), str(tmp_path / "*.csv"),
                  str(tmp_path / "d.parquet"), "--field", "body", "--column", "review", "--out", str(out))
    assert got.returncode == 1 and got.stdout == ""
    assert [r["id"] for r in _rows(out)] == [f"{tmp_path}/a.txt:1", f"{tmp_path}/a.txt:3", f"{tmp_path}/b.jsonl:1",
                                             f"{tmp_path}/c.csv:2", f"{tmp_path}/d.parquet#0"]
    errors = _rows(Path(f"{out}.errors.jsonl"))
    assert [e["id"] for e in errors] == [f"{tmp_path}/a.txt:4", f"{tmp_path}/b.jsonl:2"]
    summary = got.stderr.strip()
    assert summary.startswith(f"{out}: 5 rows, 2 errors in {out}.errors.jsonl, 1 blank line skipped; 7 inputs in ")
    assert summary.endswith("/s)") and got.stderr.count("\n") == 1
    clean = run_cli("batch", "sentiment", str(tmp_path / "c.csv"), "--column", "review", "--out",
                    str(tmp_path / "c.parquet"))
    assert clean.returncode == 0 and "1 rows, no errors" in clean.stderr
    assert pq.read_table(tmp_path / "c.parquet").column("label").to_pylist() == [_rows(out)[3]["label"]]
    assert not Path(f"{tmp_path}/c.parquet.errors.jsonl").exists()


def test_batch_usage_errors_are_one_line(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("good\n")
    cases = [(["--out", str(tmp_path / "o.txt")], "must end in .jsonl or .parquet"),
             (["--out", str(tmp_path / "o.jsonl"), "--engine", "spark"],
              "argument --engine: invalid choice: 'spark' (choose from 'local', 'ray')"),
             (["--out", str(tmp_path / "o.jsonl"), "--batch-size", "0"],
              "argument --batch-size: expected a whole number >= 1, got '0'"),
             (["--out", str(tmp_path / "o.jsonl"), "--address", "x:1"], "--address is for --engine ray")]
    for extra, message in cases:
        out = run_cli("batch", "sentiment", str(tmp_path / "a.txt"), *extra)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    out = run_cli("batch", "digits", str(tmp_path / "a.txt"), "--out", str(tmp_path / "d.jsonl"))
    assert out.returncode == 1
    assert "not an image Pillow can read" in _rows(tmp_path / "d.jsonl.errors.jsonl")[0]["error"]
    out = run_cli("batch", str(tmp_path / "a.txt"), str(tmp_path / "a.txt"), "--out", str(tmp_path / "m.jsonl"))
    assert out.returncode == 2 and "not an ONNX model" in out.stderr


def test_ray_engine_without_ray_says_how_to_install(tmp_path) -> None:
    fake = tmp_path / "site"
    fake.mkdir()
    (fake / "ray.py").write_text("raise ImportError('No module named ray')\n")  # as if Ray were not installed
    (tmp_path / "a.txt").write_text("good\n")
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"}
    out = subprocess.run([sys.executable, "-m", "edgeinfer", "batch", "sentiment", str(tmp_path / "a.txt"), "--out",
                          str(tmp_path / "o.jsonl"), "--engine", "ray"], capture_output=True, text=True, env=env,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr == "error: the Ray engine needs Ray: pip install 'edgeinfer[ray]'\n"


def test_resume_after_sigkill_gives_every_input_once(imdb_test, tmp_path) -> None:
    reviews = _reviews(imdb_test, 1000)
    (tmp_path / "r.txt").write_text("\n".join(reviews) + "\n")
    args = [sys.executable, "-m", "edgeinfer", "batch", "sentiment", "r.txt", "--out", "out.jsonl",
            "--shard-size", "50"]
    parts = tmp_path / "out.jsonl.parts"
    done = kill_batch_after_parts(args, tmp_path, parts, {**os.environ, "PYTHONPATH": str(ROOT)})
    assert 2 <= done < 20 and not (tmp_path / "out.jsonl").exists()
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert again.returncode == 0, again.stderr
    assert again.stderr.startswith(f"out.jsonl.parts: resuming, {done} of 20 parts already done\n")
    rows = _rows(tmp_path / "out.jsonl")
    assert [r["line"] for r in rows] == list(range(1, 1001))  # every input exactly once, in order
    want = Model("sentiment").predict(reviews)
    # the sentiment file runs batches under 16 texts through its fused form and larger ones through
    # the decomposed one: the job's batches (per shard) and predict's (by length) are not the same,
    # so a text's answer moves within the int8 tolerance of the two forms (measured: 9e-3)
    np.testing.assert_allclose([r["probabilities"]["positive"] for r in rows], want[:, 1], atol=3e-2)
    assert not parts.exists() and not list(tmp_path.glob(".*.tmp"))


def test_progress_bar_on_a_terminal_only(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("good\nbad\n" * 3000)
    code, text = run_cli_on_terminal("batch", "sentiment", "a.txt", "--out", "o.jsonl", "--shard-size", "1000",
                                     cwd=tmp_path)
    assert code == 0
    assert "batch" in text and "100%  6,000/6,000" in text and "/s" in text and "o.jsonl: 6,000 rows, no errors" in text
