"""`sentiment --file` reads a line longer than LONG_LINE_BYTES in pieces: memory stays bounded,
the answer is the one the whole text gets, and the other lines are answered in order."""
from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

import edgeinfer
from edgeinfer.cli.sentiment import LONG_LINE_BYTES
from edgeinfer.tasks.sentiment import classify_texts
from tests.conftest import ROOT, run_cli

LONG = "a wonderful film " * 500 + " " * (2 * LONG_LINE_BYTES) + "truly great"  # 2 MiB and more: 3 pieces


def test_a_long_line_is_answered_in_order_as_the_whole_text(tmp_path) -> None:
    path = tmp_path / "reviews.txt"
    path.write_text(f"a dull film\n{LONG}\nawful acting\n", encoding="utf-8")
    out = run_cli("sentiment", "--file", str(path), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[1]["text"] == LONG[:200] and rows[1]["words"] == len(LONG.split())
    whole = classify_texts(edgeinfer.load("sentiment"), [LONG])
    assert abs(rows[1]["positive"] - float(whole.probabilities[0, 1])) < 1e-5
    plain = run_cli("sentiment", "--file", str(path))
    assert plain.stdout.splitlines()[1].startswith(f"positive ({rows[1]['positive']:.3f}): {path}:2  a wonderful film")


def test_invalid_utf8_in_a_long_line_names_the_line_and_the_byte(tmp_path) -> None:
    path = tmp_path / "bad.txt"
    head = b"good" + b" " * (LONG_LINE_BYTES + 1000)
    path.write_bytes(b"fine film\n" + head + b"\xff rest\nbad film\n")
    out = run_cli("sentiment", "--file", str(path), "--json")
    assert out.returncode == 1
    assert f"{path}:2: invalid UTF-8 at byte {len(head)}; expected UTF-8 text" in out.stderr
    assert [json.loads(line)["line"] for line in out.stdout.splitlines()] == [1, 3]


@pytest.mark.stress
def test_memory_stays_bounded_however_long_the_line(tmp_path) -> None:
    """64 MiB of spaces around two words: peak memory within 40 MB of a one-line file's (reading
    the line whole took its bytes, its text and more: over 130 MB)."""
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_text("good film\n")
    with open(big, "w") as fh:
        for _ in range(64):
            fh.write(" " * (1 << 20))
        fh.write("good film\n")

    def peak_mb(path) -> float:
        code = ("import resource, sys; from edgeinfer.cli import main; sys.argv = ['edgeinfer', 'sentiment', '--file', "
                f"{str(path)!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert run.stdout.startswith("positive"), run.stderr
        return float(run.stderr.strip().splitlines()[-1])

    assert resource.RUSAGE_SELF is not None
    base, long = peak_mb(small), peak_mb(big)
    assert long - base < 40, (base, long)
