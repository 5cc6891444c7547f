"""Shared, torch-free helpers: the project root, the CLI runner, the real MNIST test set.

Nothing here imports torch, onnx, train/ or export/: the runtime's tests (tests/edgeinfer, and
tests/test_shipped_models.py) run where only `pip install '.[dev]'` is installed. Tiny nets
exported on the fly live in tests/nets.py (torch); the committed tiny models in tests/fixtures/.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests import datasets

ROOT = Path(__file__).resolve().parents[1]

TINY_VOCAB = ("the", "movie", "was", "great", "bad", "awful", "good", "not", "!", "don't", "i", "it", "loved")


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The real MNIST test set; the test fails (never skips) when the files are missing."""
    try:
        return datasets.mnist_test()
    except FileNotFoundError as exc:
        pytest.fail(f"real data needed: {exc}")


@pytest.fixture(scope="session")
def imdb_test() -> tuple[list[str], np.ndarray]:
    """The real IMDB test split (25,000 reviews); the test fails (never skips) when it is missing."""
    try:
        return datasets.imdb_test()
    except FileNotFoundError as exc:
        pytest.fail(f"real data needed: {exc}")


def kill_batch_after_parts(args: list[str], cwd: Path, parts: Path, env: dict[str, str], count: int = 2,
                           timeout_s: float = 120) -> int:
    """Start `edgeinfer batch` (`args`), SIGKILL it once `count` of its parts are done in `parts`;
    returns how many were done when it died."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + timeout_s
    while len(list(parts.glob("*.done"))) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(list(parts.glob("*.done")))


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m edgeinfer ARGS` as a user would."""
    return subprocess.run([sys.executable, "-m", "edgeinfer", *args], capture_output=True, text=True,
                          input=stdin, timeout=120, cwd=ROOT)
