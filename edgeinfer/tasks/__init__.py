"""Task modules: what a runtime adds for an input kind (preprocessing and rendering), and the one
list of them.

Each module takes a `LoadedModel` (the `Model` facade is one) and builds on streams and the
sequence graph; none imports the facade. `TASKS` is the only list of tasks: bulk jobs, Ray,
bench and the exporter find a model's task here from its spec's input kind, never by name.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgeinfer.errors import InputError
from edgeinfer.spec import ImageInput, ModelSpec


@dataclass(frozen=True)
class Task:
    """What a model that reads one input kind is, to the parts of the runtime that are not its module."""

    name: str  # the bulk task's name (job manifests, Ray workers)
    input_kind: str  # the spec's input.kind it serves
    typical_steps: int  # the steps of a typical sequence (benchmarks, the exporter's timing); 0: the image's rows
    field: str  # where a bulk input holds its value: the JSON lines field, the CSV or Parquet column


TASKS: tuple[Task, ...] = (
    Task("digits", "image", 0, "image"),
    Task("sentiment", "words", 256, "text"),
    Task("characters", "chars", 100, "text"),
    Task("sequences", "features", 100, "steps"),
)


def task_of(spec: ModelSpec) -> Task:
    """The task of a model's input kind; InputError for a kind no task serves."""
    for task in TASKS:
        if task.input_kind == spec.input.kind:
            return task
    kinds = ", ".join(t.input_kind for t in TASKS)
    raise InputError(f"no task reads {spec.input.kind!r} input; edgeinfer knows {kinds}")


def typical_steps(spec: ModelSpec) -> int:
    """Steps of a typical sequence of this model: `extras.typical_steps` when the file names it,
    else its task's (an image's rows; 256 words; 100 characters or feature steps)."""
    given = spec.extras.get("typical_steps")
    if type(given) is int and 1 <= given <= 1 << 16:
        return given
    if isinstance(spec.input, ImageInput):
        return spec.input.rows
    return task_of(spec).typical_steps


__all__ = ["TASKS", "Task", "task_of", "typical_steps"]
