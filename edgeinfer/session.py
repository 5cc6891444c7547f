"""The one session factory: providers checked by name, thread counts set, no silent fallback.

onnxruntime's public API only: a plain InferenceSession, created with Python's stdout captured
(onnxruntime prints its fallback note there), its providers checked after creation and its
run-time fallback turned off (`disable_fallback`).
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
from collections.abc import Sequence

import onnxruntime as ort

from edgeinfer.errors import ModelFileError, ProviderError

# Preference order for `auto`: the first available wins.
AUTO_ORDER = (
    "CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider",
    "CoreMLExecutionProvider", "CPUExecutionProvider",
)
DEFAULT_PROVIDER = "CPUExecutionProvider"
# providers without kernels for onnxruntime's int8 operators (DynamicQuantizeLSTM,
# MatMulIntegerToFloat): int8 files run there dequantized (edgeinfer.dequantize)
NO_INT8_KERNELS = frozenset({"OpenVINOExecutionProvider"})
# providers without a Scan kernel: a file holding both sequence forms runs its fused form there
# (edgeinfer.dequantize.fused_form), which they run whole
NO_SCAN = frozenset({"OpenVINOExecutionProvider"})
# providers that compute int64 tensors in 32 bits (measured: OpenVINO's hashed word n-grams
# overflow and land in other buckets), so a graph that hashes with an integer Mod is refused there
INT64_AS_INT32 = frozenset({"OpenVINOExecutionProvider"})
QUIET = 4  # onnxruntime log severity "fatal": its own console messages off; failures become typed errors
CPU_FALLBACK_OFF = "fallback to CPU EP has been explicitly disabled"  # onnxruntime's words, cpu_fallback=False


# onnxruntime's InferenceSession retries a session it cannot create on the providers asked for
# on the CPU, and says so with print() on Python's stdout: this block (the "*" lines since 1.16).
# edgeinfer never falls back silently: the block is taken off stdout and the failure is a typed error.
_FALLBACK_NOTE = re.compile(r"(?:\*+ EP Error \*+\n)?EP Error (?P<error>.*?) when using \[[^\n]*\]\n"
                            r"(?:Falling back to [^\n]* and retrying\.\n)?(?:\*+\n)?", re.S)
# sys.stdout is process-wide: sessions are created one at a time while it is swapped
_CREATING = threading.Lock()


def _create_quietly(model: bytes, options: ort.SessionOptions, providers: list[str]
                    ) -> tuple[ort.InferenceSession | None, Exception | None, str]:
    """A session created with onnxruntime's fallback note kept off stdout: (the session or None,
    the exception or None, the text of the error it fell back from, "" where it did not). Whatever
    else reached stdout meanwhile (another thread's prints) is written there afterwards."""
    printed = io.StringIO()
    session, failure = None, None
    with _CREATING:
        with contextlib.redirect_stdout(printed):
            try:
                session = ort.InferenceSession(model, sess_options=options, providers=providers)
            except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
                failure = exc
        text = printed.getvalue()
        note = _FALLBACK_NOTE.search(text)
        rest = _FALLBACK_NOTE.sub("", text, count=1)
        if rest and sys.stdout is not None:
            sys.stdout.write(rest)
    if session is not None:
        session.disable_fallback()  # and no retry on the CPU when a run fails on the provider
    return session, failure, note.group("error").strip() if note else ""


def _first_line(text: str, fallback: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else fallback


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


ProviderRequest = str | Sequence[str] | None  # a name, names, "auto", or None for the CPU


def resolve_providers(providers: ProviderRequest, cpu_fallback: bool = True) -> list[str]:
    """Turn a provider name, a list of names, `auto` or None (CPU) into a checked list.

    Short names work too: `cuda` means `CUDAExecutionProvider`. A requested provider that is
    not available raises ProviderError listing the available ones. The CPU provider is added
    last (for nodes the others have no kernel for) unless `cpu_fallback` is False.
    """
    available = available_providers()
    if providers is None:
        return [DEFAULT_PROVIDER]
    names = [providers] if isinstance(providers, str) else list(providers) if isinstance(providers, (list, tuple)) \
        else []
    if names == ["auto"]:
        return [next((p for p in AUTO_ORDER if p in available), available[0])]
    if not names or not all(isinstance(n, str) for n in names):
        raise ProviderError(f"providers must be provider names; available: {', '.join(available)}")
    resolved: list[str] = []
    for name in names:
        full = name if name.endswith("ExecutionProvider") else _expand(name, available)
        if full not in available:
            raise ProviderError(
                f"execution provider {name!r} is not available; available: {', '.join(available)}"
            )
        resolved.append(full)
    if cpu_fallback and DEFAULT_PROVIDER in available and DEFAULT_PROVIDER not in resolved:
        resolved.append(DEFAULT_PROVIDER)  # for ops a GPU provider lacks, as onnxruntime expects
    return resolved


def _expand(short: str, available: list[str]) -> str:
    """`cuda` -> `CUDAExecutionProvider` (case-insensitive match against available names)."""
    for full in available + list(AUTO_ORDER):
        if full.lower() == f"{short.lower()}executionprovider":
            return full
    return short


def create_session(
    model: bytes, source: str, providers: ProviderRequest = None,
    intra_op_threads: int = 0, inter_op_threads: int = 0,
    spinning: bool = True,
    external_files: dict[str, bytes] | None = None, cpu_fallback: bool = True,
) -> ort.InferenceSession:
    """An InferenceSession on `model` bytes; `source` names the file in error messages.

    Threads: 0 lets onnxruntime choose (all cores); 1 suits batch-1 streaming. `external_files`
    supplies whole in-memory files by the location name the graph's external references give
    (edgeinfer's step graph: the model file itself). `spinning=False` stops idle pool threads from busy-waiting
    between runs (right for per-step work that arrives with pauses). `cpu_fallback=False`: a
    graph with a node the providers cannot run is refused (ProviderError), never run on the CPU.
    """
    chosen = resolve_providers(providers, cpu_fallback)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = QUIET
    if not cpu_fallback:
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if external_files:  # in-memory "files" the graph's external references name; copied at creation
        names = list(external_files)
        buffers = [external_files[n] for n in names]
        options.add_external_initializers_from_files_in_memory(names, buffers, [len(b) for b in buffers])
    ort.set_default_logger_severity(QUIET)  # allocation failures log through the default logger
    session, failure, fell_back_from = _create_quietly(model, options, chosen)
    if failure is not None:
        # where onnxruntime retried on the CPU and failed again, the first failure is the one to report
        original = failure.__cause__ if fell_back_from and isinstance(failure.__cause__, Exception) else failure
        first = _first_line(str(original), type(original).__name__)
        if not cpu_fallback and CPU_FALLBACK_OFF in first:
            raise _no_cpu_fallback(source, chosen[0]) from None
        raise ModelFileError(f"{source}: onnxruntime cannot load this model ({first[:200]})") from None
    assert session is not None
    in_use = session.get_providers()
    if fell_back_from or not in_use or in_use[0] != chosen[0]:
        why = _first_line(fell_back_from, "")
        if not cpu_fallback and CPU_FALLBACK_OFF in why:
            raise _no_cpu_fallback(source, chosen[0])
        raise ProviderError(f"{source}: asked for {chosen[0]} but onnxruntime runs it on "
                            f"{in_use[0] if in_use else 'nothing'}{f' ({why[:200]})' if why else ''}; check the "
                            "provider's installation (`edgeinfer doctor`)")
    return session


def _no_cpu_fallback(source: str, provider: str) -> ProviderError:
    return ProviderError(f"{source}: {provider} cannot run every node of this graph and the CPU fallback is off; "
                         "allow it (cpu_fallback=True) or use another provider")
