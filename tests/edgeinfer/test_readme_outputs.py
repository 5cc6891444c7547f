"""The README's example outputs are what the commands print: each `$ edgeinfer ...` line of the
block marked `example: outputs` is run, and its output must match the lines shown (labels and
words exactly, each probability within 0.02: int8 kernels differ a little between CPUs)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

NUMBER = re.compile(r"\d+\.\d+")
TOLERANCE = 0.02


def _examples() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of the README's `outputs` example block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example: outputs .*?-->\n```console\n(.*?)```", text, re.S)
    assert match, "README.md has no `example: outputs` console block"
    examples: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        if line.startswith("$ "):
            examples.append((line[2:], []))
        else:
            examples[-1][1].append(line)
    return examples


@pytest.mark.parametrize("command,shown", _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_output_is_what_the_command_prints(command: str, shown: list[str]) -> None:
    argv = shlex.split(command)
    assert argv[0] == "edgeinfer"
    got = subprocess.run([sys.executable, "-m", "edgeinfer", *argv[1:]], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.rstrip("\n").splitlines()
    assert len(lines) == len(shown), got.stdout
    for want, line in zip(shown, lines, strict=True):
        assert NUMBER.sub("#", want) == NUMBER.sub("#", line), (want, line)
        for a, b in zip(NUMBER.findall(want), NUMBER.findall(line), strict=True):
            assert abs(float(a) - float(b)) <= TOLERANCE, (want, line)
