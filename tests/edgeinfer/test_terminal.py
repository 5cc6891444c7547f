"""Nothing a file name, a label or an input holds reaches the terminal raw: control characters
(ESC, C1) and bidirectional controls are printed escaped by every command."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeinfer.cli.render import safe
from tests.conftest import ROOT, run_cli

RAW = ("\x1b", "\x9b", "\u202e", "\u202d", "\u202b", "\u200f", "\u2067", "\u061c")


def test_safe_escapes_controls_bidi_and_surrogates() -> None:
    assert safe("a\x1b[31mb\x9bc\u202ed\u202de\u202bf\u200fg\u2067h\u061ci\udcffj") == \
        "a\\x1b[31mb\\x9bc\\u202ed\\u202de\\u202bf\\u200fg\\u2067h\\u061ci\\udcffj"


@pytest.mark.parametrize("name", ["evil\x1b[2J\u202egnp.txt", "rlo\u202dx\u202by\u200f.txt"])
def test_file_names_are_printed_escaped(tmp_path: Path, name: str) -> None:
    text = tmp_path / name
    text.write_text("a good film\n\nawful\n")
    got = run_cli("sentiment", "--file", str(text))
    image = tmp_path / (name + ".pgm")
    shutil.copy(ROOT / "samples" / "digit-7-dark-on-light.pgm", image)
    shown = run_cli("classify", "image", str(image))
    missing = run_cli("score", str(tmp_path / name) + ".missing")
    for out in (got, shown, missing):
        printed = out.stdout + out.stderr
        assert printed and not any(c in printed for c in RAW), printed
    assert got.returncode == 0 and "skipped 1 blank line" in got.stderr and shown.returncode == 0


def test_ctrl_c_while_starting_is_interrupted_not_a_traceback(monkeypatch, capsys) -> None:
    """The command's module imports nothing heavy (numpy, onnxruntime, argparse come inside its error
    handling), so a Ctrl-C in the ~0.4 s the imports take is `interrupted`, exit 130."""
    import subprocess
    import sys

    import edgeinfer.cli

    code = "import sys, edgeinfer.cli; print(sorted({'numpy', 'onnxruntime', 'argparse'} & set(sys.modules)))"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert light.stdout.strip() == "[]", light.stdout + light.stderr

    def interrupted(argv: object) -> int:
        raise KeyboardInterrupt  # as a Ctrl-C while `import onnxruntime` runs

    monkeypatch.setattr(edgeinfer.cli, "_run", interrupted)
    with pytest.raises(SystemExit) as done:
        edgeinfer.cli.main(["classify", "image", "x.png"])
    assert done.value.code == 130 and capsys.readouterr().err == "interrupted\n"
