"""Bulk throughput: Model.predict, the local engine and the Ray engine, on this machine, in one run.

    .venv/bin/python benchmarks/batch.py [--reviews 5000] [--images 2000] [--workers N] [--no-ray]

Needs the real test sets (tests/datasets.py finds them) and, for the Ray rows, the `ray` extra.
Prints markdown tables:

1. `sentiment --file` against `Model.predict` on the same lines (5,000 one-word lines and 5,000
   lines of 5-200 words), in process (the command's file path with stdout to /dev/null).
2. rows/s for sentiment (IMDB test reviews, one per line) and digits (MNIST test images as PNG
   files): `Model.predict` (texts; images decoded in Python then predicted, and the arrays
   alone), the local engine on every core and on one core (what one Ray worker does), and the
   Ray engine with N workers on a local cluster (cluster start-up excluded, then included).
3. Ray's overheads: cluster start-up, a job's fixed cost (one tiny shard), and the cost per
   shard (many small shards against few large ones over the same input).

Medians of repeated runs for the short measurements; the machine may be shared, so compare the
ratios within one run.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgeinfer  # noqa: E402
from edgeinfer.bulk import prepare, run_local, task_for  # noqa: E402
from edgeinfer.cli import sentiment as sentiment_cli  # noqa: E402
from edgeinfer.preprocess.image import load_digit  # noqa: E402
from edgeinfer.spec import ImageInput  # noqa: E402
from tests import datasets  # noqa: E402

rows: list[tuple[str, ...]] = []


def row(*cells: object) -> None:
    rows.append(tuple(str(c) for c in cells))
    print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)


def table(header: tuple[str, ...]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    rows.clear()


def best(fn: Callable[[], object], repeat: int) -> float:
    """The median time of `repeat` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    old = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        try:
            yield
        finally:
            sys.stdout = old


def file_vs_predict(folder: Path, reviews: list[str], repeat: int) -> None:
    """`sentiment --file` (the command's file path, in process) against Model.predict."""
    rng = random.Random(0)
    words = [w for w in " ".join(reviews[:2000]).replace("<br", " ").split() if any(c.isalnum() for c in w)]
    short = [rng.choice(words) for _ in range(5000)]
    long = []
    for _ in range(5000):
        n = rng.randint(5, 200)
        s = rng.randrange(len(words) - n)
        long.append(" ".join(words[s : s + n]))
    m = edgeinfer.load("sentiment")
    for name, lines in (("5,000 one-word lines", short), ("5,000 lines of 5-200 words", long)):
        path = folder / f"{name.split()[1]}.txt"
        path.write_text("\n".join(lines) + "\n")
        predict = best(lambda lines=lines: m.predict(lines), repeat)
        with quiet_stdout():
            file_json = best(lambda path=path: sentiment_cli._answer_file(m, path, True, False), repeat)
            file_text = best(lambda path=path: sentiment_cli._answer_file(m, path, False, False), repeat)
        row(name, f"{predict:.3f} s", f"{file_json:.3f} s", f"{file_text:.3f} s",
            f"{predict / file_json:.2f}x", f"{predict / file_text:.2f}x")
    table(("lines", "Model.predict", "sentiment --file --json", "sentiment --file", "--json vs predict",
           "text vs predict"))


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}"


def run_engine(out: Path, model: edgeinfer.Model, inputs: list[str], shard_size: int) -> float:
    """Seconds for the local engine over `inputs` (output removed afterwards)."""
    t0 = time.perf_counter()
    run_local(prepare(out, model, inputs, shard_size=shard_size, overwrite=True), task_for(model))
    return time.perf_counter() - t0


def run_ray(engine: object, out: Path, model: str, inputs: list[str], shard_size: int, workers: int) -> float:
    t0 = time.perf_counter()
    job = prepare(out, edgeinfer.load(model), inputs, shard_size=shard_size, overwrite=True)
    engine.run_job(job, model, workers=workers)  # type: ignore[attr-defined]
    return time.perf_counter() - t0


def throughput(folder: Path, reviews: list[str], images: np.ndarray, workers: int, use_ray: bool) -> object:
    """Rows/s per task and way of running; returns the Ray engine module (or None)."""
    text_file = folder / "reviews.txt"
    text_file.write_text("\n".join(" ".join(r.split()) for r in reviews) + "\n")
    lines = text_file.read_text().splitlines()
    png = folder / "png"
    png.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(png / f"{i:05d}.png")
    paths = sorted(png.iterdir())
    every, one = edgeinfer.load("sentiment"), edgeinfer.load("sentiment", intra_op_threads=1)
    dig, dig1 = edgeinfer.load("digits"), edgeinfer.load("digits", intra_op_threads=1)
    spec = dig.spec.require_input(ImageInput)
    arrays = np.stack([load_digit(p, spec) for p in paths])
    shard = max(1000, min(len(lines), len(paths)) // (2 * workers))  # shards for every worker, each sorted well
    t = {
        ("sentiment", "Model.predict (texts in memory)"): best(lambda: every.predict(lines), 1),
        ("sentiment", "local engine, every core"): run_engine(folder / "s.jsonl", every, [str(text_file)], shard),
        ("sentiment", "local engine, 1 core (= one Ray worker)"): run_engine(folder / "s1.jsonl", one,
                                                                             [str(text_file)], shard),
        ("digits", "Model.predict (arrays in memory)"): best(lambda: dig.predict(arrays), 3),
        ("digits", "load_digit + Model.predict"): best(
            lambda: dig.predict(np.stack([load_digit(p, spec) for p in paths])), 1),
        ("digits", "local engine, every core"): run_engine(folder / "d.jsonl", dig, [str(png)], shard),
        ("digits", "local engine, 1 core (= one Ray worker)"): run_engine(folder / "d1.jsonl", dig1, [str(png)], shard),
    }
    engine = None
    startup = 0.0
    if use_ray:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        import ray

        import edgeinfer.ray as engine

        t0 = time.perf_counter()
        engine.start(None, workers)
        startup = time.perf_counter() - t0
        t[("sentiment", f"Ray engine, {workers} workers")] = run_ray(engine, folder / "r.jsonl", "sentiment",
                                                                     [str(text_file)], shard, workers)
        t[("digits", f"Ray engine, {workers} workers")] = run_ray(engine, folder / "rd.jsonl", "digits", [str(png)],
                                                                  shard, workers)
        assert ray.is_initialized()
    for task, n in (("sentiment", len(lines)), ("digits", len(paths))):
        base = t[(task, "Model.predict (texts in memory)" if task == "sentiment" else "load_digit + Model.predict")]
        for (name_task, how), seconds in t.items():
            if name_task == task:
                row(task, how, f"{seconds:.2f}", rate(n, seconds), f"{base / seconds:.2f}x")
        if use_ray:
            seconds = t[(task, f"Ray engine, {workers} workers")] + startup
            row(task, f"Ray engine, {workers} workers, cluster start-up included", f"{seconds:.2f}", rate(n, seconds),
                f"{base / seconds:.2f}x")
    table(("task", "how", "seconds", "rows/s", "vs predict"))
    if use_ray:
        row("cluster start-up (ray.init, local, quiet)", f"{startup:.2f} s")
        row(f"shard size in these runs ({workers} workers)", f"{shard:,} inputs")
    return engine


def overheads(engine: object, folder: Path, workers: int) -> None:
    """A job's fixed cost on a running cluster, and the cost per shard."""
    tiny = folder / "tiny.txt"
    tiny.write_text("a great film\n")
    fixed = statistics.median(run_ray(engine, folder / "t.jsonl", "sentiment", [str(tiny)], 10, workers)
                              for _ in range(3))
    row("a job of one tiny shard (actors start, one model load each, assembly)", f"{fixed:.2f} s")
    lines = folder / "short.txt"
    lines.write_text("a great film\nawful\n" * 2000)
    few = run_ray(engine, folder / "f.jsonl", "sentiment", [str(lines)], 2000, workers)  # 2 shards
    many = run_ray(engine, folder / "m.jsonl", "sentiment", [str(lines)], 20, workers)  # 200 shards
    row("per shard (200 shards of 20 lines against 2 of 2,000, same 4,000 lines)",
        f"{(many - few) / 198 * 1000:.1f} ms of cluster time ({(many - few) / 198 * workers * 1000:.1f} ms "
        f"of worker time at {workers} workers)")
    table(("Ray overhead", "cost"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reviews", type=int, default=5000, help="IMDB test reviews for the throughput table")
    p.add_argument("--images", type=int, default=2000, help="MNIST test images (as PNG files)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Ray workers (default: all cores)")
    p.add_argument("--repeat", type=int, default=5, help="runs of each short measurement (median)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    a = p.parse_args()
    texts, _ = datasets.imdb_test()
    images, _ = datasets.mnist_test()
    reviews = texts[:: max(1, len(texts) // a.reviews)][: a.reviews]
    print(f"edgeinfer {edgeinfer.__version__}, {os.cpu_count()} cores, {a.reviews:,} reviews, {a.images:,} images\n")
    folder = Path(tempfile.mkdtemp(prefix="edgeinfer-batch-bench-"))
    try:
        file_vs_predict(folder, texts, a.repeat)
        engine = throughput(folder, reviews, images[: a.images], a.workers, not a.no_ray)
        if engine is not None:
            overheads(engine, folder, a.workers)
            engine.ray.shutdown()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
