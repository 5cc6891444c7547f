"""Shared, torch-free helpers: the project root, the CLI runner, the real MNIST test set.

Nothing here imports torch, onnx, train/ or export/: the runtime's tests (tests/edgeinfer, and
tests/test_shipped_models.py) run where only `pip install '.[dev]'` is installed. The hook below
sorts the tests into the two tiers (docs/testing.md). Tiny nets
exported on the fly live in tests/nets.py (torch); the committed tiny models in tests/fixtures/.
"""
from __future__ import annotations

import os
import pty
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


# The tiers (pyproject.toml's markers, docs/testing.md): a test with any of these markers is slow,
# and the default `pytest` (-m 'not slow') leaves it out.
SLOW_MARKERS = ("browser", "ray", "data", "accuracy", "training", "stress")
DATA_FIXTURES = {"mnist_test", "imdb_test"}  # a test using one of them reads the real data: `data`
MARKED_FOLDERS = {"ray": "ray"}  # every test under tests/<folder>/ gets the marker


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put each test in its tier: `data` from its fixtures, a folder's marker, and `slow` for any slow marker."""
    for item in items:
        folder = item.path.relative_to(ROOT / "tests").parts[0] if item.path.is_relative_to(ROOT / "tests") else ""
        if folder in MARKED_FOLDERS:
            item.add_marker(MARKED_FOLDERS[folder])
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("data")
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker("slow")


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


def run_cli_on_terminal(*args: str, cwd: Path = ROOT) -> tuple[int, str]:
    """Run `python -m edgeinfer ARGS` with stderr on a pseudo-terminal (stdout discarded): its exit
    code and all it drew there (progress bars draw only on a terminal)."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgeinfer", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=child, env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(child)
    seen = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    code = proc.wait(timeout=120)
    os.close(main)
    return code, seen.decode()
