"""The Ray engine and the public Ray worker classes, on a local Ray cluster of 2 CPUs started once
for this module. Needs the `ray` extra (pip install -e '.[ray]'): without it these tests fail
with that message, they never skip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edgeinfer import Model
from edgeinfer.bulk import prepare, run_local, task_for
from tests.conftest import ROOT, kill_batch_after_parts
from tests.fixtures import fixture_path
from tests.web.references import native_int8_saturates

CPUS = 2


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A local Ray cluster (2 CPUs), quiet; yields the edgeinfer.ray module. Its address is
    `ray.get_runtime_context().gcs_address`, for the command line's --address."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        import ray

        import edgeinfer.ray as engine
    except ImportError as exc:
        pytest.fail(f"the Ray tests need Ray: pip install -e '.[ray]' ({exc})")
    engine.start(None, CPUS)
    yield engine
    ray.shutdown()


def _reviews(imdb_test, n: int) -> list[str]:
    texts, _ = imdb_test
    return [" ".join(t.split()) for t in texts[::12][:n]]  # negatives and positives; newlines folded


def _both(engine: Any, model: str, inputs: list[str], tmp_path: Path, shard_size: int,
          threads: int | None = None) -> tuple[Path, Path]:
    m = Model(model, intra_op_threads=threads)
    local, remote = tmp_path / f"local{threads}.jsonl", tmp_path / "ray.jsonl"
    run_local(prepare(local, m, inputs, shard_size=shard_size), task_for(m))
    summary = engine.run_job(prepare(remote, m, inputs, shard_size=shard_size), model, workers=CPUS)
    assert summary.rows_this_run == summary.rows + summary.errors
    return local, remote


def test_ray_engine_equals_local_on_imdb(cluster, imdb_test, tmp_path) -> None:
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(_reviews(imdb_test, 2000)) + "\n")
    local, remote = _both(cluster, "sentiment", [str(path)], tmp_path, 250)
    assert remote.read_text() == local.read_text()  # row for row, byte for byte
    rows = [json.loads(line) for line in remote.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 2001))


def test_ray_engine_equals_local_on_mnist_pngs(cluster, mnist_test, tmp_path) -> None:
    images, labels = mnist_test
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, img in enumerate(images[:500]):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    (folder / "zzz-broken.png").write_bytes(b"not a png")
    # the built-in digits model is an int8 LSTM, whose numbers move with its batch mates and with
    # onnxruntime's thread count: the engines cut the same shards into the same batches, and a
    # local run with one thread (as each Ray worker has) gives the same bytes
    local, remote = _both(cluster, "digits", [str(folder)], tmp_path, 100, threads=1)
    assert remote.read_text() == local.read_text()
    assert Path(f"{remote}.errors.jsonl").read_text() == Path(f"{local}.errors.jsonl").read_text()
    # every core: the same rows and labels, numbers within 0.01 (the int8 LSTM's thread count moves them;
    # 0.05 where onnxruntime's int8 products saturate, x86 without VNNI: measured 0.019 there)
    default = tmp_path / "default.jsonl"
    m = Model("digits")
    run_local(prepare(default, m, [str(folder)], shard_size=100), task_for(m))
    a = [json.loads(line) for line in remote.read_text().splitlines()]
    b = [json.loads(line) for line in default.read_text().splitlines()]
    assert [(r["id"], r["label"]) for r in a] == [(r["id"], r["label"]) for r in b]
    np.testing.assert_allclose([list(r["probabilities"].values()) for r in a],
                               [list(r["probabilities"].values()) for r in b],
                               atol=0.05 if native_int8_saturates() else 0.01)
    assert np.mean(np.array([int(r["label"]) for r in a]) == labels[:500]) > 0.97


def test_ray_engine_resumes_after_sigkill(cluster, imdb_test, tmp_path, monkeypatch) -> None:
    import ray

    reviews = _reviews(imdb_test, 600)
    (tmp_path / "r.txt").write_text("\n".join(reviews) + "\n")
    args = [sys.executable, "-m", "edgeinfer", "batch", "sentiment", "r.txt", "--out", "out.jsonl",
            "--shard-size", "30", "--engine", "ray", "--address", ray.get_runtime_context().gcs_address]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parts = tmp_path / "out.jsonl.parts"
    done = kill_batch_after_parts(args, tmp_path, parts, env, timeout_s=90)
    assert 2 <= done < 20 and not (tmp_path / "out.jsonl").exists()
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    assert again.returncode == 0, again.stderr
    assert "out.jsonl.parts: resuming, " in again.stderr and "600 rows, no errors" in again.stderr
    m = Model("sentiment")
    monkeypatch.chdir(tmp_path)  # ids as the command line gives them: r.txt:LINE
    run_local(prepare(Path("local.jsonl"), m, ["r.txt"], shard_size=30), task_for(m))
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 601))  # every input exactly once
    assert (tmp_path / "out.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()


def test_worker_classes_in_a_users_pipeline(cluster, tmp_path, mnist_test) -> None:
    import ray.data

    texts = ["The movie was great!", "awful", "...", None, "i loved it", "not bad at all"] * 10
    ds = ray.data.from_items([{"text": t, "n": i} for i, t in enumerate(texts)])
    want = Model("sentiment").predict([t for t in texts if t and t != "..."])
    for batch_format in ("numpy", "pandas"):
        rows = ds.map_batches(cluster.Sentiment, fn_constructor_kwargs={"model": "sentiment"}, batch_size=16,
                              batch_format=batch_format, compute=ray.data.ActorPoolStrategy(size=2),
                              num_cpus=1).take_all()
        rows.sort(key=lambda r: r["n"])
        good = [r for r in rows if r["error"] is None]
        # batches of 16 rows hold 13 texts here: the sentiment file's fused form, where predict's
        # batch of 40 runs the decomposed one (docs/format.md): the same within the int8 tolerance
        np.testing.assert_allclose(np.stack([r["probabilities"] for r in good]), want, atol=3e-2)
        assert [r["label"] for r in good] == ["positive" if p[1] > p[0] else "negative" for p in want]
        assert rows[2]["error"] == "empty text (no words); expected at least one word"
        assert rows[3]["error"] == "null in column 'text'" and rows[3]["label"] is None
    images, _ = mnist_test
    for i, img in enumerate(images[:20]):
        Image.fromarray(img).save(tmp_path / f"{i:02d}.png")
    digits = ray.data.read_binary_files(str(tmp_path), include_paths=True).map_batches(
        cluster.Digits, batch_size=8, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1).take_all()
    m = Model("digits")
    task = task_for(m)
    alone = {str(tmp_path / f"{i:02d}.png"): task.predict([tmp_path / f"{i:02d}.png"])[0]["probabilities"][0]
             for i in range(20)}
    for r in digits:  # batches of 8 against each image alone: an int8 LSTM moves a little with its batch
        assert r["label"] == str(int(np.argmax(alone[r["path"]])))
        assert np.abs(r["probabilities"] - alone[r["path"]]).max() < 0.05
    chars = ray.data.from_items([{"text": "First Citizen: speak"}, {"text": "x"}]).map_batches(
        cluster.Characters, batch_size=4, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1).take_all()
    assert chars[0]["nats_per_char"] > 0 and chars[0]["chars"] == 20 and chars[0]["error"] is None
    assert chars[1]["error"] == "text too short to score; expected at least two characters"
    # a user's own model (format 7, features): raw steps in, answers per step or per sequence out
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((t, 3)).astype(np.float32) for t in (4, 4, 7)]
    for name in ("user-gru-features-classes", "user-lstm-features-values-per-step"):
        path = str(fixture_path(name))
        rows = ray.data.from_items([{"steps": s.tolist(), "n": i} for i, s in enumerate(seqs)] + [
            {"steps": [[1.0, 2.0]], "n": 3}]).map_batches(
            cluster.Sequences, fn_constructor_kwargs={"model": path}, batch_size=8,
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1).take_all()
        rows.sort(key=lambda r: r["n"])
        user = Model(path)
        for r, s in zip(rows, seqs, strict=False):
            got = r["probabilities"] if user.spec.gives_classes else np.stack(list(r["answers"]))
            assert r["error"] is None and np.abs(got - user.predict(s)).max() <= 1e-5
        assert rows[3]["error"] == "steps of shape (1, 2); expected (T, 3) with T >= 1"



def test_ray_is_quiet_unless_verbose(tmp_path) -> None:
    """A job on its own local cluster prints only its own lines on stderr; --verbose shows Ray's."""
    (tmp_path / "in.jsonl").write_text('{"text": "a good film"}\n{"text": "a dull film"}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "edgeinfer", "batch", "sentiment", "in.jsonl", "--engine", "ray", "--workers", "1"]
    quiet = subprocess.run([*args, "--out", "q.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                           env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines() == [line for line in quiet.stderr.splitlines() if line.startswith("q.jsonl")]
    assert "q.jsonl: 2 rows, no errors" in quiet.stderr
    loud = subprocess.run([*args, "--out", "v.jsonl", "--verbose"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, env=env)
    assert loud.returncode == 0, loud.stderr
    assert "Started a local Ray instance" in loud.stderr and "v.jsonl: 2 rows, no errors" in loud.stderr
