"""Load a model file (or a built-in by name), validate its spec, and run it."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeinfer.errors import InputError, ModelFileError, SpecError, WrongTaskError
from edgeinfer.onnxfile import read_initializers, read_metadata
from edgeinfer.session import create_session
from edgeinfer.spec import SPEC_KEY, STEP_GRAPH_KEY, STEP_SHARED_KEY, CharInput, ModelSpec, TextInput
from edgeinfer.anytime import AnytimeResult, early_exit
from edgeinfer.batch import StreamBatch
from edgeinfer.stream import Stream, softmax
from edgeinfer.text import TextStream, predict_texts

BUILTIN_DIR = Path(__file__).resolve().parent / "models"


def builtin_models() -> dict[str, Path]:
    """Built-in model names and their files, shipped inside the package."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.onnx"))}


def resolve(model: str | os.PathLike[str]) -> Path:
    """A model path, or the file of a built-in model name."""
    path = Path(model)
    if path.is_file():
        return path
    builtins = builtin_models()
    if str(model) in builtins:
        return builtins[str(model)]
    if path.exists():
        raise ModelFileError(f"{model}: not a file; expected an .onnx model file")
    names = ", ".join(builtins) or "none"
    raise ModelFileError(f"{model}: no such model file or built-in model (built-in: {names})")


class Model:
    """A loaded model: its spec, a sequence session for batches and a step session for streams.

    Sessions are created on first use and shared by every stream and thread.
    """

    def __init__(
        self, model: str | os.PathLike[str], providers: str | Sequence[str] | None = None,
        intra_op_threads: int | None = None, inter_op_threads: int = 0,
    ) -> None:
        self.path = resolve(model)
        self.source = str(model)
        try:
            self._bytes = self.path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{self.source}: cannot read ({exc.strerror})") from None
        meta = read_metadata(self._bytes, self.source)
        if SPEC_KEY not in meta:
            raise SpecError(f"{self.source}: ONNX file without an edgeinfer spec; export it with `python -m export`")
        try:
            self.spec = ModelSpec.from_json(meta[SPEC_KEY])
        except SpecError as exc:
            raise SpecError(f"{self.source}: {exc}") from None
        try:
            self._step_bytes = base64.b64decode(meta.get(STEP_GRAPH_KEY, ""), validate=True)
        except (binascii.Error, ValueError):
            raise SpecError(f"{self.source}: the embedded step graph is corrupt; export the model again") from None
        if not self._step_bytes:
            raise SpecError(f"{self.source}: no step graph in the file; export it with `python -m export`")
        try:
            self._step_shared: dict[str, str] = json.loads(meta.get(STEP_SHARED_KEY, "{}"))
        except json.JSONDecodeError:
            raise SpecError(f"{self.source}: corrupt {STEP_SHARED_KEY} metadata; export the model again") from None
        self.providers = providers
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self._lock = threading.Lock()
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._fingerprint = ""

    @property
    def fingerprint(self) -> str:
        """sha256 of the model file: identifies the model in stream snapshots."""
        if not self._fingerprint:
            self._fingerprint = hashlib.sha256(self._bytes).hexdigest()
        return self._fingerprint

    def _session(self, kind: str) -> ort.InferenceSession:
        with self._lock:
            if kind not in self._sessions:
                data = self._bytes if kind == "sequence" else self._step_bytes
                external = None
                if kind != "sequence" and self._step_shared:  # weights stored once, in the main graph
                    weights = read_initializers(self._bytes, set(self._step_shared.values()), self.source)
                    external = {name: weights[src] for name, src in self._step_shared.items()}
                # one thread suits batch-1 steps; full sequences and stream batches use every core
                # unless told
                threads = self.intra_op_threads if self.intra_op_threads is not None else (
                    1 if kind == "step" else 0)
                self._sessions[kind] = create_session(
                    data, f"{self.source} ({kind} graph)", self.providers, threads, self.inter_op_threads,
                    external, spinning=kind != "step")
            return self._sessions[kind]

    @property
    def sequence_session(self) -> ort.InferenceSession:
        """The onnxruntime session of the sequence graph."""
        return self._session("sequence")

    @property
    def step_session(self) -> ort.InferenceSession:
        """The onnxruntime session of the step graph."""
        return self._session("step")

    @property
    def batch_step_session(self) -> ort.InferenceSession:
        """The step graph in a session for many streams at once (StreamBatch): every core."""
        return self._session("batch_step")

    def load_sessions(self) -> "Model":
        """Create both sessions now (they are otherwise created on first use); returns self."""
        self._session("sequence")
        self._session("step")
        return self

    def require_task(self, task: str) -> None:
        """Raise WrongTaskError unless this model is for `task`."""
        if self.spec.task != task:
            raise WrongTaskError(f"{self.source}: a {self.spec.task} model; expected a {task} model")

    def sequence_logits(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Run the sequence graph from the initial state: logits (B, C) of x (B, T[, F])."""
        io = self.spec.io
        feeds = {io.seq_input: np.ascontiguousarray(x), **self.spec.initial_state(x.shape[0])}
        if io.lengths:
            feeds[io.lengths] = lengths if lengths is not None else np.full(x.shape[0], x.shape[1], np.int64)
        return self.sequence_session.run([io.output], feeds)[0]

    def predict_logits(self, x: np.ndarray | Sequence[Sequence[Sequence[float]]]) -> np.ndarray:
        """Logits of whole sequences x (B, T, F), or (T, F) for one. # (B, C) or (C,)"""
        if isinstance(self.spec.input, TextInput):
            raise InputError(f"{self.source}: a text model; call predict(texts) with a list of strings")
        if isinstance(self.spec.input, CharInput):
            raise InputError(f"{self.source}: a characters model; use edgeinfer.generate (generate, score) "
                             "or model.stream() with character ids")
        arr = np.asarray(x, dtype=np.float32)
        single = arr.ndim == 2
        if single:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[2] != self.spec.input_size or arr.shape[1] == 0 or arr.shape[0] == 0:
            raise InputError(f"{self.source}: input has shape {np.shape(x)}; "
                             f"expected (B, T, {self.spec.input_size}) or (T, {self.spec.input_size}), T >= 1")
        logits = self.sequence_logits(arr)
        return logits[0] if single else logits

    def predict(self, x: Any) -> np.ndarray:
        """Class probabilities of whole sequences. # (B, C) or (C,)

        Feature models take x (B, T, F), or (T, F) for one; text models take a list of texts,
        tokenized with the spec and batched by length (each text read whole).
        """
        if isinstance(self.spec.input, TextInput):
            return predict_texts(self, x)
        return softmax(self.predict_logits(x))

    def stream(self, batch: int = 1) -> Stream:
        """A new stream with its own state; many may run at once on one Model."""
        return Stream(self, batch)

    def stream_batch(self) -> StreamBatch:
        """An empty batch of streams that step together in one call; `open()` adds streams."""
        return StreamBatch(self)

    def early_exit(self, x: Any, threshold: float) -> AnytimeResult:
        """Classify sequences step by step, stopping each once its top probability reaches
        `threshold` (1.0: read everything). x (B, T, F) or (T, F)."""
        return early_exit(self, x, threshold)

    def text_stream(self) -> TextStream:
        """A stream of text for a text model: feed chunks as they arrive, read the running result."""
        return TextStream(self)


def load(model: str | os.PathLike[str], providers: str | Sequence[str] | None = None,
         intra_op_threads: int | None = None) -> Model:
    """Load a model by path or built-in name (e.g. "digits")."""
    return Model(model, providers, intra_op_threads)
