"""The one session factory: providers checked by name, thread counts set, no silent fallback."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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


class _Session(ort.InferenceSession):  # type: ignore[misc]  # onnxruntime ships no type information
    """onnxruntime's InferenceSession without its provider fallback: when a session cannot be created
    on the providers asked for, onnxruntime retries on the CPU and prints "EP Error" to stdout.
    edgeinfer never falls back silently; the failure is a ModelFileError or ProviderError."""

    @property
    def _enable_fallback(self) -> bool:
        return False

    @_enable_fallback.setter
    def _enable_fallback(self, value: bool) -> None:
        pass  # set by onnxruntime's constructor; fallback stays off


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
    external: dict[str, np.ndarray] | None = None, spinning: bool = True,
    external_files: dict[str, bytes] | None = None, cpu_fallback: bool = True,
) -> ort.InferenceSession:
    """An InferenceSession on `model` bytes; `source` names the file in error messages.

    Threads: 0 lets onnxruntime choose (all cores); 1 suits batch-1 streaming. `external`
    supplies, by tensor name, the weights the graph marks as external data (shared with another
    graph; the session keeps references to them); `external_files` supplies whole in-memory
    files by the location name the graph's external references give (edgeinfer's format 4: the
    model file itself). `spinning=False` stops idle pool threads from busy-waiting
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
    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for a in (external or {}).values()]
    if values:
        options.add_external_initializers(list((external or {}).keys()), values)
    if external_files:  # in-memory "files" the graph's external references name; copied at creation
        names = list(external_files)
        buffers = [external_files[n] for n in names]
        options.add_external_initializers_from_files_in_memory(names, buffers, [len(b) for b in buffers])
    ort.set_default_logger_severity(QUIET)  # allocation failures log through the default logger
    try:
        session = _Session(model, sess_options=options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not cpu_fallback and "fallback to CPU EP has been explicitly disabled" in first:
            raise ProviderError(f"{source}: {chosen[0]} cannot run every node of this graph and the CPU "
                                "fallback is off; allow it (cpu_fallback=True) or use another provider") from None
        raise ModelFileError(f"{source}: onnxruntime cannot load this model ({first[:200]})") from None
    session._edgeinfer_external = values  # keep the buffers alive as long as the session
    in_use = session.get_providers()
    if not in_use or in_use[0] != chosen[0]:
        raise ProviderError(f"{source}: asked for {chosen[0]} but onnxruntime runs it on "
                            f"{in_use[0] if in_use else 'nothing'}; check the provider's installation "
                            "(`edgeinfer doctor`)")
    return session
