"""Bulk jobs: many inputs through a model on one machine (the local engine) or a Ray cluster.

`sources` expands inputs into files and cuts them into shards; `predict` runs chunks of records
through a task's batched path; `job` plans, runs and resumes a job and assembles its output.
The command line (`edgeinfer batch`, cli/batch.py) and the Ray engine (edgeinfer.ray) build on
these; nothing here imports Ray.
"""
from edgeinfer.bulk.job import (
    DEFAULT_SHARD_SIZE,
    Job,
    JobOptions,
    ShardStats,
    Summary,
    assemble,
    errors_path,
    locked,
    output_kind,
    parts_dir,
    prepare,
    run_local,
    run_shard,
)
from edgeinfer.bulk.predict import (
    TASK_CLASSES,
    CharactersTask,
    DigitsTask,
    SentimentTask,
    SequencesTask,
    Task,
    run_chunk,
    task_for,
)
from edgeinfer.bulk.sources import INSTALL_PYARROW, Record, Source, expand, plan

__all__ = [
    "DEFAULT_SHARD_SIZE", "INSTALL_PYARROW", "TASK_CLASSES", "CharactersTask", "DigitsTask", "Job", "JobOptions",
    "Record", "SentimentTask", "SequencesTask", "ShardStats", "Source", "Summary", "Task", "assemble",
    "errors_path", "expand", "locked", "output_kind", "parts_dir", "plan", "prepare", "run_chunk", "run_local",
    "run_shard", "task_for",
]
