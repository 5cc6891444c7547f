"""`edgeinfer batch`: a model over many inputs into one output file, resumable, locally or on Ray."""
from __future__ import annotations

import os
import sys
import time
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer

from edgeinfer.cli.options import ProviderOpt
from edgeinfer.cli.render import safe
from edgeinfer.errors import InputError
from edgeinfer.model import Model

if TYPE_CHECKING:  # the bulk machinery is imported when a batch runs: other commands start without it
    from edgeinfer.bulk import Job, Summary

INSTALL_RAY = "the Ray engine needs Ray: pip install 'edgeinfer[ray]'"


class Engine(str, Enum):
    """Where the job runs."""

    local = "local"
    ray = "ray"


class _Progress:
    """A progress bar with the rate and the time left, on stderr when it is a terminal."""

    def __init__(self, job: Job) -> None:
        self.total = job.total_records
        self.done = sum(job.records(i) for i in range(len(job.shards)) if job.done(i) is not None)
        self.start = self.done
        self.t0 = time.perf_counter()
        self.show = sys.stderr.isatty()
        self.bar = typer.progressbar(length=self.total, label="batch", file=sys.stderr, hidden=not self.show,
                                     show_eta=True, show_pos=True, item_show_func=lambda rate: rate)

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        self.bar.update(self.done)
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


def batch(
    model: Annotated[str, typer.Argument(help="model file or built-in name (digits, sentiment, characters, motions)")],
    inputs: Annotated[list[str], typer.Argument(
        help="files, folders, glob patterns: images (image models); text, .jsonl, .csv, .parquet (the others)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the output: OUT.jsonl or OUT.parquet")],
    field: Annotated[str | None, typer.Option(
        "--field", help="JSON lines: the field holding the text (default text) or the steps (steps)")] = None,
    column: Annotated[str | None, typer.Option(
        "--column", help="CSV and Parquet: the column holding the text (default text), image bytes (image) or the "
        "steps (steps: a list of lists, or its JSON text)")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="local: this process; ray: a Ray cluster")] = Engine.local,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="ray: actors, one model each (default: the cluster's CPUs); "
        "local: onnxruntime threads (default: all cores)")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, help="inputs per model call (default 256)")] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="ray: an existing cluster (default: start a local one for the job)")] = None,
    shard_size: Annotated[int, typer.Option(
        "--shard-size", min=1, help="inputs per part: the unit of work and of resume")] = 10_000,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="replace OUT (and discard another job's parts)")] = False,
    provider: ProviderOpt = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", help="ray: show Ray's own log lines (start-up, workers, retries); quiet by default")] = False,
) -> None:
    """Run a model over many inputs into OUT (JSON lines or Parquet, by its extension).

    One row per input, in input order, with its id (the file, or FILE:LINE, or FILE#ROW for
    Parquet) and the prediction; inputs that cannot be read go to OUT.errors.jsonl. Work is
    written in parts to OUT.parts/ as it goes: rerun the same command after an interruption and
    it continues where it stopped. Exit code 1 when some inputs were errors.
    """
    from edgeinfer.bulk import output_kind, parts_dir, prepare, run_local, task_for

    output_kind(out)
    if address is not None and engine is not Engine.ray:
        raise typer.BadParameter("--address is for --engine ray")
    ray_engine = _ray_engine(verbose) if engine is Engine.ray else None
    local_threads = workers if engine is Engine.local else None
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
        raise typer.Exit(130) from None
    print(safe(_summary(out, summary)), file=sys.stderr)
    if summary.errors:
        raise typer.Exit(1)
