"""Bulk predictions per task: values in, columns out, the same for the job runner and the Ray workers.

A `Task` turns a list of values (texts, image bytes or image files) into result columns and
per-value errors, in input order, through the tasks' batched paths (`classify_texts`, the
sequence graph in batches, `score_texts`); it also says how records are grouped into chunks,
bounded in count and size, so memory stays flat whatever the input. The chunking depends only on
the records, so every engine groups a shard the same way and gets the same numbers.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeinfer.bulk.sources import Record
from edgeinfer.core import LoadedModel
from edgeinfer.errors import EdgeInferError, InputError, WrongTaskError
from edgeinfer.preprocess.image import load_digit, load_digit_bytes, mnist_frame, normalize
from edgeinfer.spec import ImageInput
from edgeinfer.tasks import task_of
from edgeinfer.tasks.characters import SCORE_BATCH, score_texts
from edgeinfer.tasks.digits import predict_logits
from edgeinfer.tasks.sentiment import CHUNK_CHARS, CHUNK_TEXTS, MAX_BATCH_TEXTS, classify_texts

FEATURES_CHUNK = 1024  # sequences parsed per chunk
MAX_SEQUENCE_VALUES = 1 << 24  # values in one input sequence (T x F): a larger one is an error for that input


def task_name(model: LoadedModel) -> str:
    """The bulk task that reads this model's input kind (edgeinfer.tasks.TASKS)."""
    try:
        return task_of(model.spec).name
    except InputError as exc:
        raise InputError(f"{model.source}: {exc}") from None
DIGITS_BATCH = 256  # images per sequence-graph call
DIGITS_CHUNK = 1024  # images decoded per chunk
CHARS_CHUNK = 1024  # texts scored per chunk (sorted by length within it)
Columns = dict[str, np.ndarray]


def chunked(records: Iterable[Record], max_records: int, max_chars: int) -> Iterator[list[Record]]:
    """Consecutive groups of at most `max_records` records and `max_chars` characters of text
    (a longer text is a group of its own)."""
    chunk: list[Record] = []
    chars = 0
    for rec in records:
        size = len(rec.value) if isinstance(rec.value, (str, bytes)) else 0
        if chunk and (len(chunk) >= max_records or chars + size > max_chars):
            yield chunk
            chunk, chars = [], 0
        chunk.append(rec)
        chars += size
    if chunk:
        yield chunk


class Task:
    """What one task does in bulk: chunking, prediction, and the result fields of a row."""

    name = ""
    chunk_records = CHUNK_TEXTS

    def __init__(self, model: LoadedModel, batch_size: int | None = None) -> None:
        if task_name(model) != self.name:
            raise WrongTaskError(f"{model.source}: a model that reads {model.spec.input.kind}; expected a "
                                 f"{self.name} model")
        if batch_size is not None and (type(batch_size) is not int or batch_size < 1):
            raise InputError(f"batch size must be a whole number >= 1, got {batch_size!r}")
        self.model = model
        self.labels = model.spec.labels
        self.batch_size = batch_size or self.default_batch

    default_batch = MAX_BATCH_TEXTS

    def chunks(self, records: Iterable[Record]) -> Iterator[list[Record]]:
        """Records grouped for `predict`, bounded in count and characters."""
        return chunked(records, self.chunk_records, CHUNK_CHARS)

    def predict(self, values: Sequence[Any], names: Sequence[str] | None = None) -> tuple[Columns, dict[int, str]]:
        """Result columns of the values (rows of failed values hold zeros or NaN) and the errors;
        `names` name the values in error messages that need one (images)."""
        raise NotImplementedError

    def fields(self, cols: Columns, rows: np.ndarray) -> list[dict[str, Any]]:
        """The result fields of the rows `rows` of cols, for JSON (numbers rounded to 6 decimals)."""
        raise NotImplementedError

    def arrow_fields(self, cols: Columns, keep: np.ndarray) -> dict[str, Any]:
        """The result columns of the rows `keep`, as pyarrow arrays."""
        raise NotImplementedError

    def arrow_schema_fields(self) -> list[tuple[str, Any]]:
        """(name, pyarrow type) of the result columns."""
        raise NotImplementedError


class _Classifier(Task):
    """Shared by sentiment and digits: label, its probability, every label's probability."""

    def fields(self, cols: Columns, rows: np.ndarray) -> list[dict[str, Any]]:
        p = cols["probabilities"][rows]
        labels, out = self.labels, []
        for best, values in zip(p.argmax(axis=1).tolist(), p.tolist(), strict=True):
            probs = [round(v, 6) for v in values]
            out.append({"label": labels[best], "probability": probs[best],
                        "probabilities": dict(zip(labels, probs, strict=True))})
        return out

    def arrow_fields(self, cols: Columns, keep: np.ndarray) -> dict[str, Any]:
        import pyarrow as pa

        p = cols["probabilities"][keep]
        best = np.argmax(p, axis=1) if len(p) else np.zeros(0, np.int64)
        return {"label": pa.array([self.labels[b] for b in best], pa.string()),
                "probability": pa.array(p[np.arange(len(p)), best], pa.float32()),
                "probabilities": pa.StructArray.from_arrays([pa.array(p[:, j], pa.float32()) for j in
                                                             range(len(self.labels))], names=list(self.labels))}

    def arrow_schema_fields(self) -> list[tuple[str, Any]]:
        import pyarrow as pa

        return [("label", pa.string()), ("probability", pa.float32()),
                ("probabilities", pa.struct([(lab, pa.float32()) for lab in self.labels]))]


class SentimentTask(_Classifier):
    """Texts -> label, probabilities, words read, the share of them the model knows and whether
    that is too little to trust the answer (`classify_texts`)."""

    name = "sentiment"

    def predict(self, values: Sequence[Any], names: Sequence[str] | None = None) -> tuple[Columns, dict[int, str]]:
        got = classify_texts(self.model, values, batch_texts=self.batch_size)
        known = np.divide(got.known, got.words, out=np.zeros(len(got.words)), where=got.words > 0)
        return {"probabilities": got.probabilities, "words": got.words, "known": known.astype(np.float32),
                "low_coverage": got.low_coverage}, got.errors

    def fields(self, cols: Columns, rows: np.ndarray) -> list[dict[str, Any]]:
        out = super().fields(cols, rows)
        for row, words, known, low in zip(out, cols["words"][rows].tolist(), cols["known"][rows].tolist(),
                                          cols["low_coverage"][rows].tolist(), strict=True):
            row.update(words=words, known=round(known, 4), low_coverage=bool(low))
        return out

    def arrow_fields(self, cols: Columns, keep: np.ndarray) -> dict[str, Any]:
        import pyarrow as pa

        return {**super().arrow_fields(cols, keep), "words": pa.array(cols["words"][keep], pa.int64()),
                "known": pa.array(cols["known"][keep], pa.float32()),
                "low_coverage": pa.array(cols["low_coverage"][keep], pa.bool_())}

    def arrow_schema_fields(self) -> list[tuple[str, Any]]:
        import pyarrow as pa

        return [*super().arrow_schema_fields(), ("words", pa.int64()), ("known", pa.float32()),
                ("low_coverage", pa.bool_())]


def _pixels_digit(pixels: np.ndarray, spec: ImageInput, name: str) -> np.ndarray:
    """A decoded image array (H, W) or (H, W, C) of 0..255 -> the model input (as load_digit)."""
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):  # L, LA
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4):  # RGB, RGBA: the luma
        arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if arr.ndim != 2 or not arr.size:
        raise InputError(f"{name}: image array of shape {arr.shape}; expected (H, W) or (H, W, C)")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: the image holds NaN or infinite pixel values; expected finite pixels")
    return normalize(mnist_frame(arr * np.float32(spec.scale), spec, name=name), spec)


class DigitsTask(_Classifier):
    """Images (file paths, encoded bytes, or decoded arrays) -> label and probabilities."""

    name = "digits"
    chunk_records = DIGITS_CHUNK
    default_batch = DIGITS_BATCH

    def __init__(self, model: LoadedModel, batch_size: int | None = None) -> None:
        super().__init__(model, batch_size)
        self.image = model.spec.require_input(ImageInput)

    def chunks(self, records: Iterable[Record]) -> Iterator[list[Record]]:
        return chunked(records, self.chunk_records, 1 << 62)

    def load(self, value: Any, name: str) -> np.ndarray:
        """One image as the model's input (rows, cols)."""
        if isinstance(value, (str, Path)):
            return load_digit(value, self.image)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return load_digit_bytes(bytes(value), self.image, name)
        if isinstance(value, np.ndarray):
            return _pixels_digit(value, self.image, name)
        raise InputError(f"{name}: a {type(value).__name__}; expected image bytes, a file path or a pixel array")

    def predict(self, values: Sequence[Any], names: Sequence[str] | None = None) -> tuple[Columns, dict[int, str]]:
        n = len(values)
        probs = np.zeros((n, self.model.spec.classes), np.float32)
        errors: dict[int, str] = {}
        ok: list[int] = []
        frames: list[np.ndarray] = []
        for i, value in enumerate(values):
            try:
                frames.append(self.load(value, names[i] if names is not None else f"image {i}"))
                ok.append(i)
            except EdgeInferError as exc:
                errors[i] = str(exc)
        for start in range(0, len(ok), self.batch_size):
            rows = ok[start : start + self.batch_size]
            frame = np.stack(frames[start : start + self.batch_size])
            probs[rows] = self.model.spec.answers(predict_logits(self.model, frame))
        return {"probabilities": probs}, errors


class CharactersTask(Task):
    """Texts -> nats and bits per character, characters (`score_texts`)."""

    name = "characters"
    chunk_records = CHARS_CHUNK
    default_batch = SCORE_BATCH

    def predict(self, values: Sequence[Any], names: Sequence[str] | None = None) -> tuple[Columns, dict[int, str]]:
        got = score_texts(self.model, values, self.batch_size)
        return {"nats": got.nats, "chars": got.chars}, got.errors

    def fields(self, cols: Columns, rows: np.ndarray) -> list[dict[str, Any]]:
        return [{"nats_per_char": round(nats, 6), "bits_per_char": round(nats / math.log(2), 6), "chars": chars}
                for nats, chars in zip(cols["nats"][rows].tolist(), cols["chars"][rows].tolist(), strict=True)]

    def arrow_fields(self, cols: Columns, keep: np.ndarray) -> dict[str, Any]:
        import pyarrow as pa

        nats = cols["nats"][keep]
        return {"nats_per_char": pa.array(nats, pa.float64()), "bits_per_char": pa.array(nats / math.log(2)),
                "chars": pa.array(cols["chars"][keep], pa.int64())}

    def arrow_schema_fields(self) -> list[tuple[str, Any]]:
        import pyarrow as pa

        return [("nats_per_char", pa.float64()), ("bits_per_char", pa.float64()), ("chars", pa.int64())]


def parse_sequence(value: Any, features: int) -> np.ndarray:
    """One input sequence: a (T, F) nested list of numbers, or its JSON text -> float32 (T, F)."""
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=lambda name: float("nan"))
        except (ValueError, RecursionError) as exc:
            raise InputError(f"not a JSON array of steps ({str(exc)[:80]})") from None
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise InputError(f"a {type(value).__name__}; expected a list of steps, each a list of {features} numbers")
    try:
        if isinstance(value, np.ndarray) and value.dtype == object:  # Ray Data and pandas: an array of rows
            value = [np.asarray(row, np.float32) for row in value]
        arr = np.asarray(value, np.float32)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"expected a list of steps, each a list of {features} numbers") from None
    if arr.ndim != 2 or arr.shape[1] != features or arr.shape[0] == 0:
        raise InputError(f"steps of shape {arr.shape}; expected (T, {features}) with T >= 1")
    if arr.size > MAX_SEQUENCE_VALUES:
        raise InputError(f"{arr.size:,} values; at most {MAX_SEQUENCE_VALUES:,} in one sequence")
    if not np.isfinite(arr).all():
        raise InputError("NaN or infinite value; expected finite numbers")
    return arr


class SequencesTask(Task):
    """Feature sequences (a (T, F) list per input, raw values) -> the model's answers: label and
    probabilities (classes) or named values, after the last step or at every step."""

    name = "sequences"
    chunk_records = FEATURES_CHUNK
    default_batch = DIGITS_BATCH

    def predict(self, values: Sequence[Any], names: Sequence[str] | None = None) -> tuple[Columns, dict[int, str]]:
        spec = self.model.spec
        n = len(values)
        errors: dict[int, str] = {}
        by_steps: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, value in enumerate(values):
            try:
                arr = parse_sequence(value, spec.input_size)
            except InputError as exc:
                errors[i] = str(exc)
                continue
            by_steps.setdefault(arr.shape[0], []).append((i, arr))
        answers = np.empty(n, object) if spec.per_step else np.zeros((n, spec.classes), np.float32)
        for group in by_steps.values():
            for start in range(0, len(group), self.batch_size):
                part = group[start : start + self.batch_size]
                got = spec.answers(predict_logits(self.model, np.stack([arr for _, arr in part])))
                for (i, _), row in zip(part, got, strict=True):
                    answers[i] = row
        return {"answers": answers}, errors

    def _one(self, row: np.ndarray) -> dict[str, Any]:
        labels = self.labels
        values = [round(v, 6) for v in row.tolist()]
        if not self.model.spec.gives_classes:
            return {"values": dict(zip(labels, values, strict=True))}
        best = int(np.argmax(row))
        return {"label": labels[best], "probability": values[best],
                "probabilities": dict(zip(labels, values, strict=True))}

    def fields(self, cols: Columns, rows: np.ndarray) -> list[dict[str, Any]]:
        got = cols["answers"][rows]
        if self.model.spec.per_step:
            return [{"steps": [self._one(step) for step in seq]} for seq in got]
        return [self._one(row) for row in got]

    def _struct(self) -> Any:
        import pyarrow as pa

        return pa.struct([(name, pa.float32()) for name in self.labels])

    def _step_type(self) -> Any:
        import pyarrow as pa

        if not self.model.spec.gives_classes:
            return pa.struct([("values", self._struct())])
        return pa.struct([("label", pa.string()), ("probability", pa.float32()), ("probabilities", self._struct())])

    def arrow_fields(self, cols: Columns, keep: np.ndarray) -> dict[str, Any]:
        import pyarrow as pa

        rows = self.fields(cols, keep)
        if self.model.spec.per_step:
            return {"steps": pa.array([r["steps"] for r in rows], pa.list_(self._step_type()))}
        typed = pa.array(rows, self._step_type())
        return {name: typed.field(name) for name in typed.type.names}

    def arrow_schema_fields(self) -> list[tuple[str, Any]]:
        import pyarrow as pa

        if self.model.spec.per_step:
            return [("steps", pa.list_(self._step_type()))]
        return [(f.name, f.type) for f in self._step_type()]


TASK_CLASSES: dict[str, type[Task]] = {"sentiment": SentimentTask, "digits": DigitsTask,
                                       "characters": CharactersTask, "sequences": SequencesTask}


def task_for(model: LoadedModel, batch_size: int | None = None) -> Task:
    """The bulk task of a model's spec."""
    return TASK_CLASSES[task_name(model)](model, batch_size)


@dataclass(frozen=True)
class ChunkResult:
    """A chunk's outcome, in input order: the records answered with their rows in `cols`, and
    the records that failed (their `error` set)."""

    good: list[Record]
    cols: Columns
    rows: np.ndarray  # (len(good),) row of each good record in cols
    bad: list[Record]

    def json_rows(self, task: Task) -> list[str]:
        """The good records as JSON lines (without newlines)."""
        return [row_json(rec, fields) for rec, fields in zip(self.good, task.fields(self.cols, self.rows), strict=True)]


def run_chunk(task: Task, chunk: Sequence[Record]) -> ChunkResult:
    """Predict a chunk of records (those without an error)."""
    live = [i for i, rec in enumerate(chunk) if not rec.error]
    cols, errors = task.predict([chunk[i].value for i in live], [chunk[i].id for i in live])
    failed = {live[k]: msg for k, msg in errors.items()}
    position = {i: k for k, i in enumerate(live)}
    good: list[Record] = []
    rows: list[int] = []
    bad: list[Record] = []
    for i, rec in enumerate(chunk):
        if rec.error:
            bad.append(rec)
        elif i in failed:  # messages that name their input (image errors) are kept as they are
            message = failed[i] if failed[i].startswith(rec.id) else f"{rec.id}: {failed[i]}"
            bad.append(Record(rec.source, rec.line, rec.row, None, message))
        else:
            good.append(rec)
            rows.append(position[i])
    return ChunkResult(good, cols, np.array(rows, np.int64), bad)


def error_json(rec: Record) -> str:
    """An error row: the record's id and why it could not be read."""
    return json.dumps({**_id_fields(rec), "error": rec.error}, ensure_ascii=False)


def _id_fields(rec: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rec.id, "source": rec.source}
    if rec.line is not None:
        out["line"] = rec.line
    if rec.row is not None:
        out["row"] = rec.row
    return out


def row_json(rec: Record, fields: dict[str, Any]) -> str:
    """A result row as one JSON line (without the newline)."""
    return json.dumps({**_id_fields(rec), **fields}, ensure_ascii=False)


__all__ = [
    "TASK_CLASSES",
    "CharactersTask",
    "ChunkResult",
    "Columns",
    "DigitsTask",
    "SentimentTask",
    "SequencesTask",
    "Task",
    "chunked",
    "error_json",
    "row_json",
    "run_chunk",
    "task_for",
    "task_name",
]
