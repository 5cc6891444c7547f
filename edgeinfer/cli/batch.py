"""`edgeinfer batch`: a model over many inputs into one output file, resumable, locally or on Ray."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from edgeinfer.cli.args import Exit, Parser, UsageError, add_provider, describe, runs, whole
from edgeinfer.cli.progress import Bar
from edgeinfer.cli.render import safe
from edgeinfer.errors import InputError
from edgeinfer.model import Model

if TYPE_CHECKING:  # the bulk machinery is imported when a batch runs: other commands start without it
    from edgeinfer.bulk import Job, Summary

INSTALL_RAY = "the Ray engine needs Ray: pip install 'edgeinfer[ray]'"


ENGINES = ("local", "ray")  # where a job runs: this process, or a Ray cluster


class _Progress:
    """A progress bar with the rate and the time left, on stderr when it is a terminal."""

    def __init__(self, job: Job) -> None:
        self.total = job.total_records
        self.done = sum(job.records(i) for i in range(len(job.shards)) if job.done(i) is not None)
        self.start = self.done
        self.t0 = time.perf_counter()
        self.bar = Bar(self.total, "batch", sys.stderr.isatty())

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        self.bar.start_at(self.done)
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def __call__(self, records: int) -> None:
        self.done += records
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        self.bar.update(records, f"{rate:,.0f}/s")


def _ray_engine(verbose: bool) -> ModuleType:
    """edgeinfer.ray, imported only for --engine ray (a one-line error when Ray is missing)."""
    if not verbose:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's C++ notices would cross the progress bar
    try:
        from edgeinfer import ray
    except ImportError:
        raise InputError(INSTALL_RAY) from None
    return ray


def _summary(out: Path, summary: Summary) -> str:
    from edgeinfer.bulk import errors_path

    errors = (f", {summary.errors:,} error{'s' if summary.errors != 1 else ''} in {errors_path(out)}"
              if summary.errors else ", no errors")
    blank = f", {summary.blank:,} blank line{'s' if summary.blank != 1 else ''} skipped" if summary.blank else ""
    resumed = f"; {summary.resumed} of {summary.shards} parts were done before" if summary.resumed else ""
    return (f"{out}: {summary.rows:,} rows{errors}{blank}; {summary.rows_this_run:,} inputs in "
            f"{summary.seconds:.1f} s ({summary.rate:,.0f}/s){resumed}")


def configure(p: Parser) -> None:
    """`edgeinfer batch MODEL INPUT... --out OUT`."""
    p.description = describe(batch)
    p.add_argument("model", help="model file or built-in name (digits, sentiment, characters, motions)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, glob patterns: images (image "
                   "models); text, .jsonl, .csv, .parquet (the others)")
    p.add_argument("--out", "-o", type=Path, required=True, help="the output: OUT.jsonl or OUT.parquet")
    p.add_argument("--field", help="JSON lines: the field holding the text (default text) or the steps (steps)")
    p.add_argument("--column", help="CSV and Parquet: the column holding the text (default text), image bytes "
                   "(image) or the steps (steps: a list of lists, or its JSON text)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process (default); ray: a Ray cluster")
    p.add_argument("--workers", type=whole(1), help="ray: actors, one model each (default: the cluster's CPUs); "
                   "local: onnxruntime threads (default: all cores)")
    p.add_argument("--batch-size", type=whole(1), help="inputs per model call (default 256)")
    p.add_argument("--address", help="ray: an existing cluster (default: start a local one for the job)")
    p.add_argument("--shard-size", type=whole(1), default=10_000,
                   help="inputs per part: the unit of work and of resume (default 10,000)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT (and discard another job's parts)")
    add_provider(p)
    p.add_argument("--verbose", action="store_true",
                   help="ray: show Ray's own log lines (start-up, workers, retries); quiet by default")
    runs(p, batch)


def batch(model: str, inputs: list[str], out: Path, field: str | None = None, column: str | None = None,
          engine: str = "local", workers: int | None = None, batch_size: int | None = None,
          address: str | None = None, shard_size: int = 10_000, overwrite: bool = False,
          provider: str | None = None, verbose: bool = False) -> None:
    """Run a model over many inputs into OUT (JSON lines or Parquet, by its extension).

    One row per input, in input order, with its id (the file, or FILE:LINE, or FILE#ROW for
    Parquet) and the prediction; inputs that cannot be read go to OUT.errors.jsonl. Work is
    written in parts to OUT.parts/ as it goes: rerun the same command after an interruption and
    it continues where it stopped. Exit code 1 when some inputs were errors.
    """
    from edgeinfer.bulk import output_kind, parts_dir, prepare, run_local, task_for

    output_kind(out)
    if address is not None and engine != "ray":
        raise UsageError("--address is for --engine ray", "edgeinfer batch")
    ray_engine = _ray_engine(verbose) if engine == "ray" else None
    local_threads = workers if engine == "local" else None
    m = Model(model, provider, intra_op_threads=local_threads)
    task = task_for(m, batch_size)
    job = prepare(out, m, list(inputs), field, column, shard_size, overwrite)
    done = len(job.shards) - len(job.pending())
    if done:
        print(safe(f"{parts_dir(out)}: resuming, {done} of {len(job.shards)} parts already done"), file=sys.stderr)
    try:
        with _Progress(job) as progress:
            if ray_engine is None:
                summary = run_local(job, task, progress)
            else:
                summary = ray_engine.run_job(job, model, workers, batch_size, address, provider, progress, verbose)
    except KeyboardInterrupt:
        finished = len(job.shards) - len(job.pending())
        print(safe(f"interrupted: {finished} of {len(job.shards)} parts done in {parts_dir(out)}; run the same "
                   "command again to resume"), file=sys.stderr)
        raise Exit(130) from None
    print(safe(_summary(out, summary)), file=sys.stderr)
    if summary.errors:
        raise Exit(1)
