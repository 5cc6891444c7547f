"""The two tiers (docs/testing.md): the default `pytest` leaves out what needs Chromium, Ray or the
data sets, and `-m slow` picks exactly that."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

FILES = ["tests/ray/test_ray_engine.py", "tests/web/test_web_browser.py", "tests/edgeinfer/test_answers.py",
         "tests/test_shipped_models.py", "tests/test_challenge_set.py"]


def collected(*args: str) -> set[str]:
    """The test ids `pytest --collect-only` selects from FILES with `args`."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args,
                          *FILES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    return {line for line in out.stdout.splitlines() if "::" in line}


def test_the_default_tier_needs_no_browser_ray_or_data_and_slow_picks_them() -> None:
    fast, slow = collected(), collected("-m", "slow")
    assert fast and slow and not fast & slow
    by_file = {f: {t for t in fast | slow if t.startswith(f + "::")} for f in FILES}
    for file in [*FILES[:2], "tests/test_shipped_models.py"]:  # Ray, Chromium, the figures: all slow
        assert by_file[file] and by_file[file] <= slow, file
    assert by_file["tests/test_challenge_set.py"] <= fast  # the sets' shape: no data needed
    # test_answers: the tests using the mnist_test fixture are slow, the others fast
    answers = by_file["tests/edgeinfer/test_answers.py"]
    data = {t for t in answers if "photo_on_uneven_paper" in t or "files_bytes_and_pixels" in t}
    assert data and data <= slow and answers - data and (answers - data) <= fast
