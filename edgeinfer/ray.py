"""Ray: worker classes for Ray Data pipelines, and the Ray engine of `edgeinfer batch`.

Each worker class loads one model per actor and predicts a batch (a dict of numpy arrays, or a
pandas DataFrame), returning the same kind with result columns added:

    import ray
    import edgeinfer.ray

    ds = ray.data.read_parquet("reviews/")
    ds = ds.map_batches(edgeinfer.ray.Sentiment, fn_constructor_kwargs={"model": "sentiment", "column": "text"},
                        compute=ray.data.ActorPoolStrategy(size=4), batch_size=256, num_cpus=1)
    ds.write_parquet("scored/")

`Sentiment` adds label, probability, probabilities (N, C), words and error; `Digits` (column
"bytes" of image files' bytes, as `ray.data.read_binary_files` gives, or decoded arrays as
`read_images` gives, or file paths) adds label, probability, probabilities and error;
`Characters` adds nats_per_char, bits_per_char, chars and error. A value that cannot be read
gets its message in `error` (None otherwise) and empty results, and never fails the batch.

`run_job` is `edgeinfer batch --engine ray`: the job's shards (see edgeinfer.bulk.job) go through
`map_batches` to a pool of actors, each with one loaded model, which read a shard, predict it
and write its part atomically, exactly as the local engine does; the driver follows their
progress and assembles the output. Only `--engine ray` imports this module (it needs the `ray`
extra: pip install 'edgeinfer[ray]').
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeinfer.bulk import (
    CharactersTask,
    DigitsTask,
    Job,
    SentimentTask,
    SequencesTask,
    Summary,
    Task,
    assemble,
    locked,
    run_shard,
    task_for,
)
from edgeinfer.errors import EdgeInferError
from edgeinfer.model import Model
from edgeinfer.session import ProviderRequest

INSTALL_RAY = "the Ray engine needs Ray: pip install 'edgeinfer[ray]'"

try:
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(INSTALL_RAY) from exc


def _null(value: Any) -> bool:
    """None, NaN, or pandas' NA (how a pandas batch holds a null)."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is getattr(pandas, "NA", None)


class _Worker:
    """One loaded model per actor; `__call__` predicts a batch and adds the result columns."""

    task_class: type[Task] = Task

    def __init__(self, model: str, column: str, batch_size: int | None, threads: int,
                 providers: ProviderRequest) -> None:
        self.model = Model(model, providers, intra_op_threads=threads)
        self.task = self.task_class(self.model, batch_size)
        self.column = column

    def _check(self, value: Any) -> str:
        """Why a value cannot be predicted ("" if it can)."""
        if _null(value):
            return f"null in column {self.column!r}"
        if not isinstance(value, str):
            return f"a {type(value).__name__} in column {self.column!r}; expected text (a string)"
        return ""

    def predict(self, values: Sequence[Any]) -> dict[str, Any]:
        """Result columns of the values, in order (failed rows: None label, NaN numbers, error set)."""
        n = len(values)
        errors: list[str | None] = [None] * n
        live = []
        for i, value in enumerate(values):
            problem = self._check(value)
            if problem:
                errors[i] = problem
            else:
                live.append(i)
        out = self._empty(n)
        step = self.task.chunk_records
        for start in range(0, len(live), step):
            rows = live[start : start + step]
            cols, failed = self.task.predict([values[i] for i in rows], [f"row {i}" for i in rows])
            for k, i in enumerate(rows):
                if k in failed:
                    errors[i] = failed[k]
                else:
                    self._fill(out, i, cols, k)
        out["error"] = np.array(errors, dtype=object)
        return out

    def _empty(self, n: int) -> dict[str, Any]:
        labels = self.model.spec.labels
        return {"label": np.full(n, None, dtype=object), "probability": np.full(n, np.nan, np.float32),
                "probabilities": np.full((n, len(labels)), np.nan, np.float32)}

    def _fill(self, out: dict[str, Any], i: int, cols: dict[str, np.ndarray], k: int) -> None:
        p = cols["probabilities"][k]
        best = int(np.argmax(p))
        out["label"][i] = self.model.spec.labels[best]
        out["probability"][i] = p[best]
        out["probabilities"][i] = p

    def __call__(self, batch: Any) -> Any:
        """A batch with the result columns added: a dict of numpy arrays, or a pandas DataFrame."""
        values = list(batch[self.column])
        cols = self.predict(values)
        if isinstance(batch, dict):
            return {**batch, **cols}
        out = batch.copy()
        for name, col in cols.items():
            out[name] = list(col) if col.ndim > 1 else col
        return out


class Sentiment(_Worker):
    """Ray Data worker: texts (column "text") -> label, probability, probabilities, words, known
    (the share of the words in the model's vocabulary), low_coverage, error."""

    task_class = SentimentTask

    def __init__(self, model: str = "sentiment", column: str = "text", batch_size: int | None = None,
                 threads: int = 1, providers: ProviderRequest = None) -> None:
        super().__init__(model, column, batch_size, threads, providers)

    def _empty(self, n: int) -> dict[str, Any]:
        return {**super()._empty(n), "words": np.zeros(n, np.int64), "known": np.zeros(n, np.float32),
                "low_coverage": np.zeros(n, bool)}

    def _fill(self, out: dict[str, Any], i: int, cols: dict[str, np.ndarray], k: int) -> None:
        super()._fill(out, i, cols, k)
        for name in ("words", "known", "low_coverage"):
            out[name][i] = cols[name][k]


class Digits(_Worker):
    """Ray Data worker: images (column "bytes": encoded files; or decoded arrays, or paths) ->
    label, probability, probabilities, error."""

    task_class = DigitsTask

    def __init__(self, model: str = "digits", column: str = "bytes", batch_size: int | None = None,
                 threads: int = 1, providers: ProviderRequest = None) -> None:
        super().__init__(model, column, batch_size, threads, providers)

    def _check(self, value: Any) -> str:
        return f"null in column {self.column!r}" if _null(value) else ""


class Characters(_Worker):
    """Ray Data worker: texts (column "text") -> nats_per_char, bits_per_char, chars, error."""

    task_class = CharactersTask

    def __init__(self, model: str = "characters", column: str = "text", batch_size: int | None = None,
                 threads: int = 1, providers: ProviderRequest = None) -> None:
        super().__init__(model, column, batch_size, threads, providers)

    def _empty(self, n: int) -> dict[str, Any]:
        return {"nats_per_char": np.full(n, np.nan), "bits_per_char": np.full(n, np.nan),
                "chars": np.zeros(n, np.int64)}

    def _fill(self, out: dict[str, Any], i: int, cols: dict[str, np.ndarray], k: int) -> None:
        out["nats_per_char"][i] = cols["nats"][k]
        out["bits_per_char"][i] = cols["nats"][k] / np.log(2)
        out["chars"][i] = cols["chars"][k]


class Sequences(_Worker):
    """Ray Data worker: feature sequences (column "steps": a (T, F) list of raw steps, or its JSON
    text) -> answers: label, probability, probabilities (classes) or values (C,), after the last
    step; every step's for a model that answers every step ((T, C)), error."""

    task_class = SequencesTask

    def __init__(self, model: str, column: str = "steps", batch_size: int | None = None,
                 threads: int = 1, providers: ProviderRequest = None) -> None:
        super().__init__(model, column, batch_size, threads, providers)

    def _check(self, value: Any) -> str:
        return f"null in column {self.column!r}" if _null(value) else ""

    def _empty(self, n: int) -> dict[str, Any]:
        spec = self.model.spec
        if spec.per_step or not spec.gives_classes:
            return {"answers": np.full(n, None, dtype=object)}
        return super()._empty(n)

    def _fill(self, out: dict[str, Any], i: int, cols: dict[str, np.ndarray], k: int) -> None:
        spec = self.model.spec
        if spec.per_step or not spec.gives_classes:
            out["answers"][i] = np.asarray(cols["answers"][k], np.float32)
        else:
            super()._fill(out, i, {"probabilities": cols["answers"]}, k)


WORKERS: dict[str, type[_Worker]] = {"sentiment": Sentiment, "digits": Digits, "characters": Characters,
                                     "sequences": Sequences}


class ShardRunner:
    """The Ray engine's actor: one loaded model; each call runs whole shards of a job (read,
    predict, write the part atomically), as the local engine does, and returns their counts."""

    def __init__(self, out: str, model: str, cwd: str, batch_size: int | None = None, threads: int = 1,
                 providers: ProviderRequest = None) -> None:
        os.chdir(cwd)  # the job's paths are the driver's (relative ones too)
        self.job = Job.load(Path(out))
        self.task = task_for(Model(model, providers, intra_op_threads=threads), batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        got = [run_shard(self.job, int(i), self.task) for i in batch["shard"]]
        return {"shard": np.array([s.index for s in got], np.int64), "rows": np.array([s.rows for s in got], np.int64),
                "errors": np.array([s.errors for s in got], np.int64),
                "records": np.array([s.records for s in got], np.int64)}


def start(address: str | None, workers: int | None, verbose: bool = False) -> tuple[int, bool]:
    """Connect to the cluster at `address`, or start a local one with `workers` CPUs (default:
    all cores); returns the CPUs available and whether this call started Ray.

    Quiet unless `verbose`: Ray's own log lines (its start-up notices, the workers' logs, retry
    notices) would run into the progress bar, so they are kept at errors only and what Ray's C++
    core prints while it starts is held back (shown if the start fails)."""
    if ray.is_initialized():
        return int(ray.cluster_resources().get("CPU", 1)), False
    level = logging.INFO if verbose else logging.ERROR
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": level, "log_to_driver": verbose}
    with _held_stderr(not verbose):
        if address is None:
            ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = verbose
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)
    return int(ray.cluster_resources().get("CPU", 1)), True


@contextlib.contextmanager
def _held_stderr(hold: bool) -> Iterator[None]:
    """While held, what this process writes to file descriptor 2 (C++ code included) goes to a
    temporary file: dropped on success, written out if the block raises."""
    if not hold:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read()[-4000:].decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run_job(job: Job, model: str, workers: int | None = None, batch_size: int | None = None,
            address: str | None = None, providers: ProviderRequest = None,
            progress: Callable[[int], None] | None = None, verbose: bool = False) -> Summary:
    """The Ray engine: the job's pending shards on a pool of actors (`workers`, default and at most
    one per CPU of the cluster; a local cluster is started with `workers` CPUs), each with one
    loaded model and one onnxruntime thread; then the output assembled here."""
    t0 = time.perf_counter()
    fresh = 0
    with locked(job):
        pending = job.pending()
        if pending:
            cpus, ours = start(address, workers, verbose)
            size = max(1, min(workers or cpus, cpus, len(pending)))
            try:
                ds = ray.data.from_items([{"shard": i} for i in pending], override_num_blocks=len(pending))
                ds = ds.map_batches(
                    ShardRunner, batch_size=1, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=size),
                    fn_constructor_kwargs={"out": str(job.out.resolve()), "model": model, "cwd": os.getcwd(),
                                           "batch_size": batch_size, "providers": providers})
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    fresh += int(batch["rows"].sum() + batch["errors"].sum())
                    if progress is not None:
                        progress(int(batch["records"].sum()))
            except ray.exceptions.RayError as exc:
                raise EdgeInferError(f"the Ray job failed: {_first_line(exc)}") from None
            finally:
                if ours:
                    ray.shutdown()
        rows, errors, blank = assemble(job)
    return Summary(rows, errors, blank, len(job.shards), len(job.shards) - len(pending),
                   time.perf_counter() - t0, fresh)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


__all__ = ["INSTALL_RAY", "WORKERS", "Characters", "Digits", "Sentiment", "Sequences", "ShardRunner", "run_job",
           "start"]
