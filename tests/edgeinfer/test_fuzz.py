"""The seeded fuzz suite (tests/edgeinfer/fuzz.py): >= 3,000 model-file mutations and >= 1,000 input
and snapshot mutations, each ending in a typed error or a correct result, never anything else.

Workers run as separate processes with a memory limit (RLIMIT_AS, 3 GiB), a time limit, and
their peak RSS and slowest case checked; two model workers share the cases.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from tests.conftest import ROOT

MEMORY_LIMIT = 3 << 30  # bytes of address space a worker may map
TIME_LIMIT_S = 240


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _workers(*commands: list[str]) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-m", "tests.edgeinfer.fuzz", *c], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit_memory)
             for c in commands]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIME_LIMIT_S)
        assert proc.returncode == 0, f"fuzz worker died ({proc.returncode}): {err[-2000:]}"
        reports.append(json.loads(out))
    return reports


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    models = _workers(["models", "0", "2"], ["models", "1", "2"])
    inputs = _workers(["inputs"])[0]
    merged = {k: sum(r[k] for r in models) for k in ("cases", "typed", "correct", "other")}
    merged["bad"] = [b for r in models for b in r["bad"]]
    merged["slowest_s"] = max(r["slowest_s"] for r in models)
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in models)
    return {"models": merged, "inputs": inputs}


def test_model_file_mutations(reports) -> None:
    r = reports["models"]
    print(f"model-file mutations: {r['cases']} cases, {r['typed']} typed errors, {r['correct']} correct results, "
          f"{r['other']} other exceptions; slowest {r['slowest_s']} s, peak RSS {r['peak_rss_mb']} MB")
    assert r["cases"] >= 3000 and r["typed"] + r["correct"] == r["cases"]
    assert r["other"] == 0, r["bad"]
    assert r["typed"] >= 1500  # the mutations do bite: most files are refused
    assert r["slowest_s"] < 5 and r["peak_rss_mb"] < 1024


def test_input_and_snapshot_mutations(reports) -> None:
    r = reports["inputs"]
    print(f"input and snapshot mutations: {r['cases']} cases, {r['typed']} typed errors, {r['correct']} correct "
          f"results, {r['other']} other exceptions; slowest {r['slowest_s']} s, peak RSS {r['peak_rss_mb']} MB")
    assert r["cases"] >= 1000 and r["typed"] + r["correct"] == r["cases"]
    assert r["other"] == 0, r["bad"]
    assert r["correct"] >= 50 and r["slowest_s"] < 5 and r["peak_rss_mb"] < 1024
