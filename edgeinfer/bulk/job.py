"""A bulk job: its plan, its parts on disk, resume, and the final output.

Layout: the job works in `OUT.parts/` beside OUT: `job.json` (the plan, written once), and per
shard `part-NNNNN.jsonl` (or `.parquet`), `part-NNNNN.errors.jsonl` and `part-NNNNN.done` (the
shard's counts), each written atomically (edgeinfer.atomic), the `.done` file last: a shard is
done when its `.done` file exists. When every shard is done, OUT is assembled from the parts in
order (atomically, streaming), the error rows go to `OUT.errors.jsonl` (removed when there are
none), and `OUT.parts/` is removed. Rerunning the same command after an interruption finds
`OUT.parts/`, checks that the inputs, model and options are the same, and runs only the shards
that are not done, so OUT holds every input exactly once. A lock file keeps two runs of one job
apart.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (keeping one run per job is then up to the user)
    fcntl = None  # type: ignore[assignment]

from edgeinfer import __version__
from edgeinfer.atomic import atomic_path, write_atomic
from edgeinfer.bulk.predict import ChunkResult, Task, error_json, run_chunk, task_name
from edgeinfer.bulk.sources import Piece, ReadStats, Record, Source, expand, plan, pyarrow_modules, read_piece
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError, UnreadableInput
from edgeinfer.tasks import TASKS, task_of

JOB_FORMAT = 1
DEFAULT_SHARD_SIZE = 10_000  # records per part
OUTPUT_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def output_kind(out: Path) -> str:
    """JSON lines or Parquet, from OUT's extension."""
    kind = OUTPUT_KINDS.get(out.suffix.lower())
    if kind is None:
        raise InputError(f"{out}: the output's name must end in .jsonl or .parquet (it chooses the format)")
    if kind == "parquet":
        pyarrow_modules()
    return kind


@dataclass(frozen=True)
class JobOptions:
    """What decides a job's results: compared when a job is resumed."""

    task: str
    model_sha256: str  # the model file's (the model may be named differently on a rerun)
    inputs: tuple[str, ...]
    field: str  # JSON lines: the text's field
    column: str  # CSV, Parquet: the text's (or image bytes') column
    output: str  # jsonl | parquet
    shard_size: int


@dataclass(frozen=True)
class ShardStats:
    """A finished shard's counts (its `.done` file)."""

    index: int
    rows: int
    errors: int
    blank: int
    records: int
    seconds: float


class Job:
    """A planned job: options, sources, shards, and its parts folder."""

    def __init__(self, out: Path, options: JobOptions, sources: list[Source], shards: list[tuple[Piece, ...]]) -> None:
        self.out = out
        self.options = options
        self.sources = sources
        self.shards = shards
        self.parts = parts_dir(out)
        self.errors_out = errors_path(out)
        self.images = any(t.input_kind == "image" for t in TASKS if t.name == options.task)

    @property
    def suffix(self) -> str:
        return ".parquet" if self.options.output == "parquet" else ".jsonl"

    def part(self, index: int) -> Path:
        return self.parts / f"part-{index:05d}{self.suffix}"

    def part_errors(self, index: int) -> Path:
        return self.parts / f"part-{index:05d}.errors.jsonl"

    def marker(self, index: int) -> Path:
        return self.parts / f"part-{index:05d}.done"

    def records(self, index: int) -> int:
        """Records planned in shard `index` (blank lines included)."""
        return sum(p.records for p in self.shards[index])

    @property
    def total_records(self) -> int:
        return sum(self.records(i) for i in range(len(self.shards)))

    def done(self, index: int) -> ShardStats | None:
        """The shard's counts if it is done."""
        try:
            return ShardStats(**json.loads(self.marker(index).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def pending(self) -> list[int]:
        """The shards not done yet, in order."""
        return [i for i in range(len(self.shards)) if self.done(i) is None]

    def read(self, index: int, stats: ReadStats) -> Iterator[Record]:
        """The records of shard `index`, in order."""
        for piece in self.shards[index]:
            yield from read_piece(self.sources, piece, self.images, self.options.field, self.options.column, stats)

    @staticmethod
    def load(out: Path) -> Job:
        """The job planned in OUT.parts (its options, sources and shards as written)."""
        manifest = parts_dir(out) / "job.json"
        try:
            raw = json.loads(manifest.read_text())
            options = JobOptions(**{**raw["options"], "inputs": tuple(raw["options"]["inputs"])})
            sources = [Source.from_list(s) for s in raw["sources"]]
            shards = [tuple(Piece(*p) for p in shard) for shard in raw["shards"]]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            raise InputError(f"{manifest}: not a job this edgeinfer can read") from None
        return Job(out, options, sources, shards)

    def to_json(self) -> str:
        return json.dumps({"format": JOB_FORMAT, "edgeinfer": __version__, "options": asdict(self.options),
                           "sources": [s.to_list() for s in self.sources],
                           "shards": [[p.to_list() for p in shard] for shard in self.shards]})


def parts_dir(out: Path) -> Path:
    """Where a job writes its parts: OUT.parts beside OUT."""
    return out.with_name(out.name + ".parts")


def errors_path(out: Path) -> Path:
    """The error rows of a job: OUT.errors.jsonl."""
    return out.with_name(out.name + ".errors.jsonl")


_WHAT = {"task": "task", "model_sha256": "model", "inputs": "inputs", "field": "--field", "column": "--column",
         "output": "output format", "shard_size": "--shard-size"}


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    return next((what for key, what in _WHAT.items() if old.get(key) != new.get(key)), "options")


def prepare(out: Path, model: LoadedModel, inputs: list[str], field: str | None = None, column: str | None = None,
            shard_size: int = DEFAULT_SHARD_SIZE, overwrite: bool = False) -> Job:
    """Plan a new job, or take up the interrupted one in OUT.parts (same inputs, model and options)."""
    task = task_name(model)
    info = task_of(model.spec)
    if type(shard_size) is not int or shard_size < 1:
        raise InputError(f"--shard-size must be a whole number >= 1, got {shard_size!r}")
    kind = output_kind(out)
    images = info.input_kind == "image"
    default = info.field
    field = field or default
    options = JobOptions(task, model.fingerprint, tuple(inputs), field, column or default, kind, shard_size)
    given = {os.path.normpath(g) for g in inputs}
    sources = []
    for s in expand(inputs, images):
        if _own(out, s.path):  # OUT (or its errors, its parts) as an input: overwriting it would lose it
            if s.path in given or out.is_symlink():
                raise InputError(f"--out {out}: that is the input {s.path}; write the output to another file")
            continue  # a previous run's output inside a folder being read: not an input
        sources.append(s)
    parts = parts_dir(out)
    manifest = parts / "job.json"
    if _running(parts):
        raise InputError(f"{parts}: another run is working on this job; wait for it to end (or stop it), then "
                         "run the command again")
    if manifest.is_file():
        job = _resume(out, options, sources, overwrite)
        if job is not None:
            return job
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it")
    checked, shards = plan(sources, images, field, options.column, shard_size)
    readable = [s for s in checked if s.kind != "missing"]
    if not readable:  # nothing to answer: say why before anything is written
        notes = [s.note for s in checked if s.note]
        raise UnreadableInput(f"nothing to read: {notes[0] if notes else 'no inputs'}"
                         + (f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""))
    job = Job(out, options, checked, shards)
    parts.mkdir(parents=True, exist_ok=True)
    write_atomic(manifest, job.to_json())
    return job


def _own(out: Path, path: str) -> bool:
    """A file the job itself writes (OUT, its errors, its parts): never one of its inputs."""
    try:
        here = Path(path).resolve()
        mine = out.resolve()
    except OSError:
        return False
    return here in (mine, errors_path(mine)) or parts_dir(mine) in here.parents


def _resume(out: Path, options: JobOptions, sources: list[Source], overwrite: bool) -> Job | None:
    """The interrupted job in OUT.parts if it is this one; None (its parts removed) if it is another
    and `overwrite` is set; an InputError otherwise."""
    parts = parts_dir(out)
    problem = ""
    try:
        job = Job.load(out)
    except InputError as exc:
        problem = str(exc)
    else:
        if job.options != options:
            problem = f"{parts}: an interrupted job with another {_difference(asdict(job.options), asdict(options))}"
        else:  # the planned sources (with their sizes and times) against the files now
            now = {s.path: (s.kind, s.size, s.mtime_ns) for s in sources}
            changed = [s.path for s in job.sources
                       if s.path not in now or (s.kind != "missing" and now[s.path] != (s.kind, s.size, s.mtime_ns))]
            if changed:
                problem = f"{changed[0]}: changed since the interrupted job in {parts} was planned"
    if not problem:
        return job
    if overwrite:
        shutil.rmtree(parts)
        return None
    raise InputError(f"{problem}; rerun its command to finish it, or pass --overwrite to start over")


def _running(parts: Path) -> bool:
    """True while another process holds the lock of the job in `parts` (it is working on it)."""
    lock = parts / "lock"
    if fcntl is None or not lock.is_file():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the lock if it was taken here
    return False


@contextlib.contextmanager
def locked(job: Job) -> Iterator[None]:
    """Hold the job's lock (a second run of the same job is refused while the first runs)."""
    job.parts.mkdir(parents=True, exist_ok=True)
    fd = os.open(job.parts / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"{job.parts}: another run is working on this job") from None
        yield
    finally:
        os.close(fd)


class PartWriter:
    """Writes one part's rows: JSON lines, or Parquet row groups with the job's schema."""

    def __init__(self, job: Job, task: Task, path: Path) -> None:
        self.task = task
        self.parquet = job.options.output == "parquet"
        self._fh: IO[str] | None = None
        self._writer: Any = None
        if self.parquet:
            _, pq = pyarrow_modules()
            self._writer = pq.ParquetWriter(str(path), arrow_schema(job, task))
            self._line = any(s.kind in ("lines", "jsonl", "csv") for s in job.sources)
            self._row = any(s.kind == "parquet" for s in job.sources)
        else:
            self._fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, result: ChunkResult) -> None:
        if self._fh is not None:
            rows = result.json_rows(self.task)
            if rows:
                self._fh.write("\n".join(rows) + "\n")
            return
        if not result.good:
            return
        pa, _ = pyarrow_modules()
        cols: dict[str, Any] = {"id": pa.array([r.id for r in result.good], pa.string()),
                                "source": pa.array([r.source for r in result.good], pa.string())}
        if self._line:
            cols["line"] = pa.array([r.line for r in result.good], pa.int64())
        if self._row:
            cols["row"] = pa.array([r.row for r in result.good], pa.int64())
        cols.update(self.task.arrow_fields(result.cols, result.rows))
        self._writer.write_table(pa.table(cols, schema=self._writer.schema))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._writer is not None:
            self._writer.close()


def arrow_schema(job: Job, task: Task) -> Any:
    """The Parquet output's schema: id, source, line (text sources), row (Parquet sources), results."""
    pa, _ = pyarrow_modules()
    fields = [("id", pa.string()), ("source", pa.string())]
    if any(s.kind in ("lines", "jsonl", "csv") for s in job.sources):
        fields.append(("line", pa.int64()))
    if any(s.kind == "parquet" for s in job.sources):
        fields.append(("row", pa.int64()))
    return pa.schema(fields + task.arrow_schema_fields())


def run_shard(job: Job, index: int, task: Task, progress: Callable[[int], None] | None = None) -> ShardStats:
    """Run one shard: its part and error rows written atomically, then its `.done` file."""
    t0 = time.perf_counter()
    stats = ReadStats()
    rows = errors = 0
    with atomic_path(job.part_errors(index)) as etmp, atomic_path(job.part(index)) as ptmp:
        writer = PartWriter(job, task, ptmp)
        try:
            with open(etmp, "w", encoding="utf-8") as err:
                seen = 0
                for chunk in task.chunks(job.read(index, stats)):
                    result = run_chunk(task, chunk)
                    writer.write(result)
                    if result.bad:
                        err.write("".join(error_json(r) + "\n" for r in result.bad))
                    rows += len(result.good)
                    errors += len(result.bad)
                    if progress is not None:
                        progress(stats.read - seen)
                        seen = stats.read
        finally:
            writer.close()
    done = ShardStats(index, rows, errors, stats.blank, stats.read, round(time.perf_counter() - t0, 3))
    write_atomic(job.marker(index), json.dumps(asdict(done)))
    return done


@dataclass(frozen=True)
class Summary:
    """A finished job's counts."""

    rows: int
    errors: int
    blank: int
    shards: int
    resumed: int  # shards done by an earlier run
    seconds: float  # this run
    rows_this_run: int

    @property
    def rate(self) -> float:
        """Rows (and errors) per second in this run."""
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0


def assemble(job: Job) -> tuple[int, int, int]:
    """OUT from the parts, in order (streaming, atomically), the error rows into OUT.errors.jsonl,
    then OUT.parts removed; returns the rows, errors and blank lines of the whole job."""
    stats = [job.done(i) for i in range(len(job.shards))]
    missing = [i for i, s in enumerate(stats) if s is None]
    if missing:
        raise InputError(f"{job.parts}: shard {missing[0]} is not done; rerun the job")
    done = [s for s in stats if s is not None]
    with atomic_path(job.out) as tmp:
        if job.options.output == "parquet":
            _, pq = pyarrow_modules()
            first = job.part(0) if job.shards else None
            schema = pq.read_schema(str(first)) if first is not None else None
            writer = pq.ParquetWriter(str(tmp), schema) if schema is not None else None
            try:
                for i in range(len(job.shards)):
                    part = pq.ParquetFile(str(job.part(i)))
                    for batch in part.iter_batches(batch_size=65536):
                        assert writer is not None
                        writer.write_batch(batch)
            finally:
                if writer is not None:
                    writer.close()
        else:
            with open(tmp, "wb") as dst:
                for i in range(len(job.shards)):
                    with open(job.part(i), "rb") as src:
                        shutil.copyfileobj(src, dst, 1 << 20)
    errors = sum(s.errors for s in done)
    if errors:
        with atomic_path(job.errors_out) as tmp, open(tmp, "wb") as dst:
            for i in range(len(job.shards)):
                with open(job.part_errors(i), "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
    else:
        with contextlib.suppress(FileNotFoundError):
            job.errors_out.unlink()
    shutil.rmtree(job.parts, ignore_errors=True)
    return sum(s.rows for s in done), errors, sum(s.blank for s in done)


def run_local(job: Job, task: Task, progress: Callable[[int], None] | None = None) -> Summary:
    """The local engine: the pending shards one after another in this process, then OUT."""
    t0 = time.perf_counter()
    fresh = 0
    with locked(job):
        pending = job.pending()
        for index in pending:
            stats = run_shard(job, index, task, progress)
            fresh += stats.rows + stats.errors
        rows, errors, blank = assemble(job)
    return Summary(rows, errors, blank, len(job.shards), len(job.shards) - len(pending),
                   time.perf_counter() - t0, fresh)


__all__ = ["DEFAULT_SHARD_SIZE", "Job", "JobOptions", "PartWriter", "ShardStats", "Summary", "arrow_schema",
           "assemble", "errors_path", "locked", "output_kind", "parts_dir", "prepare", "run_local", "run_shard"]
