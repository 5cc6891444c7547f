"""`python -m train`: one function per sub-command, every option explained with its default,
bad values refused in one line (exit code 2) before any data is read."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import train.__main__ as cli
from tests.conftest import ROOT

BAD = [  # (sub-command, option, bad value)
    ("digits", "--hidden", "0"), ("digits", "--layers", "0"), ("digits", "--epochs", "0"),
    ("digits", "--batch", "0"), ("digits", "--lr", "0"), ("digits", "--lr", "-0.1"), ("digits", "--lr", "nan"),
    ("digits", "--lr", "inf"), ("digits", "--lr", "fast"), ("digits", "--dropout", "1"),
    ("digits", "--dropout", "-0.5"), ("digits", "--limit", "-1"), ("digits", "--threads", "-2"),
    ("digits", "--hidden", "1.5"), ("digits", "--stop-after", "-1"), ("digits", "--augment", "-1"),
    ("digits", "--anytime", "-1"), ("digits", "--font-share", "1"),
    ("sentiment", "--holdout", "-1"), ("sentiment", "--short-branch", "0"), ("sentiment", "--short-words", "0"),
    ("sentiment", "--embed", "0"), ("sentiment", "--max-vocab", "0"), ("sentiment", "--expectations", "1"),
    ("characters", "--checkpoint-minutes", "-1"),
    ("characters", "--bptt", "0"), ("characters", "--embed", "0"), ("vectors", "--window", "0"),
    ("vectors", "--negatives", "0"), ("vectors", "--lr", "0"), ("vectors", "--min-count", "-1"),
    ("ngrams", "--ngram-buckets", "0"), ("ngrams", "--ngram-order", "1"), ("ngrams", "--c", "0"),
    ("stack", "--holdout", "-1"),
]


@pytest.mark.parametrize("command,option,value", BAD)
def test_bad_values_are_one_line_errors_before_any_work(command, option, value, tmp_path, capsys,
                                                          monkeypatch) -> None:
    def no_data(*_: object) -> None:
        raise AssertionError("data read despite a bad argument")

    monkeypatch.setattr(cli, "data_dir", no_data)
    init = ["--init", str(tmp_path / "none.pt")] if command in ("ngrams", "stack") else []
    buckets = ["--ngram-buckets", "7"] if command == "ngrams" and option != "--ngram-buckets" else []
    rc = cli.main([command, *init, *buckets, option, value, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and f"argument {option}: " in err and "give " in err, err  # the option and the fix
    assert not (tmp_path / "out").exists()


def test_the_one_line_names_the_allowed_range(capsys, tmp_path) -> None:
    assert cli.main(["digits", "--hidden", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("python -m train digits: error: argument --hidden: 0 is too small; "
                                       "give an integer >= 1 (see --help)\n")
    assert cli.main(["sentiment", "--dropout", "1", "--out", str(tmp_path)]) == 2
    assert "argument --dropout: 1 is out of range; give a finite number >= 0 and < 1" in capsys.readouterr().err
    assert cli.main(["sentiment", "--flip", "--out", str(tmp_path / "x")]) == 2  # checked before the data
    assert capsys.readouterr().err == "error: --flip negates short texts: give --short N too\n"


def test_every_sub_command_has_its_function() -> None:
    p = cli.parser()
    commands = {"digits": cli.digits, "sentiment": cli.sentiment, "characters": cli.characters,
                "vectors": cli.vectors, "ngrams": cli.ngrams, "stack": cli.run_stack, "ensemble": cli.run_ensemble}
    for name, command in commands.items():
        extra = {"ngrams": ["--init", "x.pt", "--ngram-buckets", "3"], "stack": ["--init", "x.pt", "--holdout", "5"],
                 "ensemble": ["--init", "a.pt", "b.pt"]}.get(name, [])
        assert p.parse_args([name, *extra, "--out", "o"]).command is command


def _blocks(help_text: str) -> dict[str, str]:
    """Each option's help block, by its first option string: its lines joined into one."""
    blocks: dict[str, str] = {}
    current = ""
    for line in help_text.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            blocks[current] = line.strip()
        elif current and line.startswith("    "):
            blocks[current] += " " + line.strip()
        else:
            current = ""
    return blocks


def test_digits_help_explains_each_option_and_its_default() -> None:
    out = subprocess.run([sys.executable, "-m", "train", "digits", "--help"], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "COLUMNS": "100"}, timeout=120)
    assert out.returncode == 0, out.stderr
    blocks = _blocks(out.stdout)
    defaults = {"--cell": "lstm", "--hidden": "128", "--epochs": "12", "--lr": "0.002", "--batch": "128",
                "--seed": "0", "--layers": "1", "--dropout": "0.0", "--limit": "0", "--threads": "0",
                "--device": "cpu", "--stop-after": "0", "--proj": "0", "--augment": "0", "--anytime": "0.0"}
    for option, default in defaults.items():
        block = blocks[option]
        assert block.endswith(f"(default: {default})"), block
        assert len(block.split()) >= 6, block  # option, metavar, a help text of a few words, the default
    for flag in ("--resume", "--download", "--out", "--data"):
        assert len(blocks[flag].split()) >= 4, blocks[flag]


@pytest.mark.parametrize("command", ["recipe", "digits", "sentiment", "characters", "vectors", "ngrams", "stack",
                                     "ensemble"])
def test_every_option_of_every_sub_command_has_help(command, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert cli.main([command, "--help"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert len(blocks) >= 5
    for option, block in blocks.items():
        words = [w for w in block.split() if not w.startswith("-") and not w.isupper() and not w.startswith("{")]
        assert len(words) >= 2, f"{command} {option}: no help text: {block}"
