"""The core: a loaded model file (bytes, spec, sessions, fingerprint) that runs its graphs by name.

A `LoadedModel` is the resource every feature builds on: streams, stream batches and the task
modules take one, and the `Model` facade (edgeinfer.model) is one. It holds no stream state;
sessions are created on first use and shared by every stream and thread.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeinfer.arrays import brief
from edgeinfer.dequantize import dequantize_graph, fused_form, graph_ops
from edgeinfer.errors import InputError, ModelFileError, ProviderError, WrongTaskError
from edgeinfer.fileformat import parse_model_file
from edgeinfer.session import (
    INT64_AS_INT32,
    NO_INT8_KERNELS,
    NO_SCAN,
    ProviderRequest,
    create_session,
    resolve_providers,
)
from edgeinfer.spec import FeatureInput, InputT, ModelSpec

BUILTIN_DIR = Path(__file__).resolve().parent / "models"
log = logging.getLogger("edgeinfer")
NON_FINITE = ("the model gave non-finite answers (NaN or infinity) and nothing was kept: the input holds values "
              "far outside any it was trained on, or a snapshot restored a state no stream reaches")
GRAPHS = ("sequence", "step", "batch_step")  # batch_step: the step graph on every core, for StreamBatch


def builtin_models() -> dict[str, Path]:
    """Built-in model names and their files, shipped inside the package."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.onnx"))}


MAX_MODEL_BYTES = 2**31  # protobuf caps a message, so an ONNX file without external data, at 2 GiB


def resolve(model: str | os.PathLike[str]) -> Path:
    """A model path, or the file of a built-in model name.

    A name is a built-in: the string "digits" loads the built-in digits model even where the
    working folder holds a file called `digits` (give "./digits" or a Path for that file; the
    shadowed file is noted on the "edgeinfer" logger, which the CLI prints). Anything else is a
    path."""
    builtins = builtin_models()
    if isinstance(model, str) and model in builtins:
        if os.path.lexists(model):
            log.warning("%r is the built-in model (%s); for the file %r in this folder give ./%s",
                        model, builtins[model], model, model)
        return builtins[model]
    try:
        path = Path(model)
        exists = path.is_file()
    except (OSError, ValueError):  # a name the file system cannot hold (NUL byte, too long)
        raise ModelFileError(f"{model!r}: not a usable file name") from None
    if exists:
        return path
    if path.exists():
        raise ModelFileError(f"{model}: not a file; expected an .onnx model file")
    names = ", ".join(builtins) or "none"
    raise ModelFileError(f"{model}: no such model file or built-in model (built-in: {names})")


def run_failed(source: str, graph: str, exc: Exception) -> ModelFileError:
    """The error for a graph that onnxruntime could not run: inputs are checked before a run, so
    what fails is the file."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ModelFileError(f"{source}: onnxruntime could not run the {graph} graph ({first}); "
                          "the file may be damaged: export it again")


def _check_threads(value: int | None, name: str) -> None:
    if value is not None and (type(value) is not int or not 0 <= value <= 1024):
        raise InputError(f"{name} must be a whole number from 0 (onnxruntime decides) to 1024, got {brief(value)}")


class LoadedModel:
    """A model file read and validated: its spec, its graphs' sessions, its fingerprint.

    `providers` are checked when the model is loaded (ProviderError if one is missing) and again
    when a session is created (the provider asked for must be the one in use). Threads: step
    sessions default to one intra-op thread (right for batch-1 steps), the sequence and
    batch-step sessions to all cores; `intra_op_threads` sets all of them.

    `cpu_fallback=False`: every node must run on the provider asked for (onnxruntime refuses the
    graph otherwise, a ProviderError); by default nodes it has no kernel for run on the CPU.
    `dequantize`: run onnxruntime's int8 operators as standard fp32 ones over the file's int8
    weights, dequantized once when a session is created (edgeinfer.dequantize); None (default):
    only on providers without kernels for them (OpenVINO).
    """

    def __init__(
        self, model: str | os.PathLike[str], providers: ProviderRequest = None,
        intra_op_threads: int | None = None, inter_op_threads: int = 0,
        cpu_fallback: bool = True, dequantize: bool | None = None,
    ) -> None:
        if not isinstance(model, (str, os.PathLike)):
            raise ModelFileError(f"a model is a path or a built-in name, got {type(model).__name__}")
        if type(cpu_fallback) is not bool:
            raise InputError(f"cpu_fallback must be True or False, got {brief(cpu_fallback)}")
        if dequantize is not None and type(dequantize) is not bool:
            raise InputError(f"dequantize must be True, False or None (by provider), got {brief(dequantize)}")
        _check_threads(intra_op_threads, "intra_op_threads")
        _check_threads(inter_op_threads, "inter_op_threads")
        self.path = resolve(model)
        self.source = str(model)
        try:
            size = self.path.stat().st_size
            if size > MAX_MODEL_BYTES:
                raise ModelFileError(f"{self.source}: {size:,} bytes is larger than any model file can be "
                                     f"({MAX_MODEL_BYTES:,}); not an edgeinfer model")
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{self.source}: cannot read ({exc.strerror})") from None
        self.file = parse_model_file(data, self.source)
        self.spec: ModelSpec = self.file.spec
        self.providers = resolve_providers(providers, cpu_fallback)
        self.cpu_fallback = cpu_fallback
        #: whether int8 operators run as fp32 ones of the dequantized weights (see the class)
        self.dequantize = dequantize if dequantize is not None else self.providers[0] in NO_INT8_KERNELS
        if self.providers[0] in INT64_AS_INT32 and any("Mod" in graph_ops(g) for g in (data, self.file.step_graph)):
            raise ProviderError(f"{self.source}: this model hashes with 64-bit integers (an integer Mod), which "
                                f"{self.providers[0]} computes in 32 bits: its answers would be wrong there; "
                                "use the CPU provider (the default)")
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self._lock = threading.Lock()
        self._sessions: dict[str, Any] = {}
        self._fingerprint = ""

    @property
    def fingerprint(self) -> str:
        """sha256 of the model file: identifies the model in stream snapshots."""
        if not self._fingerprint:
            self._fingerprint = hashlib.sha256(self.file.data).hexdigest()
        return self._fingerprint

    def session(self, graph: str) -> Any:
        """The onnxruntime session of `graph` ("sequence", "step" or "batch_step"), created once."""
        with self._lock:
            if graph not in self._sessions:
                self._sessions[graph] = self._create(graph)
            return self._sessions[graph]

    def _create(self, graph: str) -> Any:
        if graph not in GRAPHS:
            raise ValueError(f"unknown graph {graph!r}; expected one of {', '.join(GRAPHS)}")
        sequence = graph == "sequence"
        data = self.file.data if sequence else self.file.step_graph
        if sequence and self.providers[0] in NO_SCAN:
            data = fused_form(data) or data
        if self.dequantize:
            data = dequantize_graph(data) or data
        # the step graph's shared weights are stored once, in the main graph: the step graph names
        # them as byte ranges of the file itself
        files = None if sequence else self.file.external_files()
        threads = self.intra_op_threads if self.intra_op_threads is not None else (1 if graph == "step" else 0)
        source = f"{self.source} ({'sequence' if sequence else 'step'} graph)"
        session = create_session(data, source, self.providers, threads, self.inter_op_threads,
                                 spinning=graph != "step", external_files=files, cpu_fallback=self.cpu_fallback)
        self._check_graph(session, sequence, source)
        return session

    def _check_graph(self, session: Any, sequence: bool, source: str) -> None:
        """The graph must take and give the names the spec declares, with the spec's class count."""
        spec, io = self.spec, self.spec.io
        inputs = [io.seq_input if sequence else io.step_input, *(s.name for s in spec.state)]
        if sequence and io.lengths:
            inputs.append(io.lengths)
        outputs = [io.output, *spec.state_outputs]
        if not sequence and io.step_probabilities:
            outputs.append(io.step_probabilities)
        have_in = {i.name for i in session.get_inputs()}
        have_out = {o.name: o for o in session.get_outputs()}
        missing = [n for n in inputs if n not in have_in] + [n for n in outputs if n not in have_out]
        extra = sorted(have_in - set(inputs))
        if missing or extra:
            raise ModelFileError(f"{source}: the graph's inputs and outputs do not match the spec "
                                 f"(missing {missing[:3]}, unexpected inputs {extra[:3]}); export it again")
        classes = have_out[io.output].shape[-1] if have_out[io.output].shape else None
        if isinstance(classes, int) and classes != spec.classes:
            raise ModelFileError(f"{source}: the graph gives {classes} classes but the spec has "
                                 f"{spec.classes} labels; export it again")

    @property
    def sequence_session(self) -> Any:
        """The onnxruntime session of the sequence graph."""
        return self.session("sequence")

    @property
    def step_session(self) -> Any:
        """The onnxruntime session of the step graph (batch-1 streams: one thread)."""
        return self.session("step")

    @property
    def batch_step_session(self) -> Any:
        """The step graph in a session for many streams at once (StreamBatch): every core."""
        return self.session("batch_step")

    def load_sessions(self) -> LoadedModel:
        """Create both graphs' sessions now (they are otherwise created on first use); returns self."""
        self.session("sequence")
        self.session("step")
        return self

    def require_input(self, kind: type[InputT]) -> InputT:
        """This model's input spec when it reads `kind` (e.g. ImageInput); WrongTaskError otherwise."""
        try:
            return self.spec.require_input(kind)
        except WrongTaskError as exc:
            raise WrongTaskError(f"{self.source}: {exc}") from None

    def graph_features(self, x: np.ndarray) -> np.ndarray:
        """Raw feature rows (..., F) as the graphs read them: a normalised copy for a features
        model (the spec's per-feature mean and std), x itself otherwise."""
        inp = self.spec.input
        return inp.normalize(np.array(x, np.float32)) if isinstance(inp, FeatureInput) and inp.mean else x

    def run(self, graph: str, outputs: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run a graph and return the named outputs, in the order asked: InputError, never a
        result, when any of them is not finite (see NON_FINITE)."""
        session = self.session(graph)
        try:
            got = list(session.run(list(outputs), dict(feeds)))
        except Exception as exc:  # onnxruntime's own error types
            raise run_failed(self.source, graph, exc) from None
        if not all(np.isfinite(v).all() for v in got if v.dtype.kind == "f"):
            raise InputError(f"{self.source}: {NON_FINITE}")
        return got

    def run_sequence(
        self, x: np.ndarray, state: Mapping[str, np.ndarray] | None = None, lengths: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the sequence graph on x (B, T[, F]) from `state` (the initial state when None).

        Returns the graph's output, (B, C) after each row's last valid step or (B, T, C) for a
        model that answers every step, and the state after each row's last valid step, keyed by
        input name. `lengths` (B,) counts each row's valid steps (token models; default: all T).
        Raw features are normalised here (`graph_features`).
        """
        spec, io = self.spec, self.spec.io
        batch = x.shape[0]
        feeds = {io.seq_input: np.ascontiguousarray(self.graph_features(x)),
                 **(state if state is not None else spec.initial_state(batch))}
        if io.lengths:
            feeds[io.lengths] = lengths if lengths is not None else np.full(batch, x.shape[1], np.int64)
        elif lengths is not None and bool((lengths != x.shape[1]).any()):
            raise InputError(f"{self.source}: this model reads whole rows only (no lengths input)")
        got = self.run("sequence", [io.output, *spec.state_outputs], feeds)
        return got[0], {s.name: v for s, v in zip(spec.state, got[1:], strict=True)}

    def sequence_logits(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Run the sequence graph from the initial state: its output for x (B, T[, F]), (B, C), or
        (B, T, C) for a model that answers every step."""
        return self.run_sequence(x, None, lengths)[0]

    def last_step(self, out: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """The sequence graph's output after each row's last valid step. # (B, C)"""
        if not self.spec.per_step:
            return out
        if lengths is None:
            return out[:, -1]
        last: np.ndarray = out[np.arange(out.shape[0]), np.maximum(lengths, 1) - 1]
        return last


__all__ = ["LoadedModel", "builtin_models", "resolve"]
