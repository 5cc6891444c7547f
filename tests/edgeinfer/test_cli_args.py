"""The command line's parser (edgeinfer/cli/args, cli/app) and its progress bar (cli/progress)."""
from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from edgeinfer.cli import main
from edgeinfer.cli.app import COMMANDS, build, parse
from edgeinfer.cli.args import Exit, UsageError, finite, whole
from edgeinfer.cli.progress import Bar
from tests.conftest import ROOT, run_cli, run_cli_on_terminal


def test_whole_and_finite_refuse_with_what_they_got() -> None:
    at_least_one = whole(1)
    assert at_least_one("1") == 1 and at_least_one("250") == 250 and whole(0)("0") == 0
    for text in ("0", "-3", "1.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a whole number >= 1, got {text!r}"):
            at_least_one(text)
    assert finite("0.99") == 0.99 and finite("-2") == -2.0
    for text in ("nan", "inf", "-inf", "1e999", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a finite number, got {text!r}"):
            finite(text)


def test_a_command_line_names_its_function_and_arguments() -> None:
    run, arguments, _ = parse(["classify", "image", "a.png", "b.png", "-k", "3", "--early-exit", "0.9", "--json"])
    assert run.__name__ == "classify_image"
    assert arguments == {"files": [Path("a.png"), Path("b.png")],
                         "model": "digits", "provider": None, "top": 3, "early": 0.9, "as_json": True}
    run, arguments, _ = parse(["generate", "--chars", "7", "-t", "0"])  # the old name of --max-chars
    assert run.__name__ == "generate_cmd" and arguments["chars"] == 7 and arguments["temperature"] == 0.0
    assert parse(["generate", "--prompt=-x"])[1]["prompt"] == "-x"
    # arguments may follow options, before and after
    assert parse(["classify", "image", "a.png", "--json", "b.png"])[1]["files"] == [Path("a.png"), Path("b.png")]
    assert parse(["sentiment", "good", "--json", "bad", "-m", "x.onnx", "ugly"])[1]["texts"] == ["good", "bad", "ugly"]
    assert parse(["sentiment", "--json", "--", "-great-", "--fine"])[1]["texts"] == ["-great-", "--fine"]
    found = parse(["batch", "sentiment", "--out", "o.jsonl", "a.txt", "--overwrite", "b.txt"])[1]
    assert (found["model"], found["inputs"], found["overwrite"]) == ("sentiment", ["a.txt", "b.txt"], True)
    run, arguments, _ = parse(["run", "motions"])
    assert arguments == {"model": "motions", "source": "-", "every": 1, "as_json": False, "stop_on_error": False,
                         "early_exit": None, "provider": None}


def test_usage_errors_name_the_command_they_belong_to() -> None:
    cases = {("classify", "image", "--bogus", "x"): ("unrecognized arguments: --bogus", "edgeinfer classify image"),
             ("sentiment", "--modle", "x"): ("unrecognized arguments: --modle", "edgeinfer sentiment"),
             ("sentiment", "--mod", "x"): ("unrecognized arguments: --mod", "edgeinfer sentiment"),  # no abbreviations
             ("classify", "nope"): ("invalid choice: 'nope'", "edgeinfer classify"),
             ("nope",): ("invalid choice: 'nope'", "edgeinfer"),
             ("batch", "digits", "x"): ("the following arguments are required: --out/-o", "edgeinfer batch"),
             ("bench", "--streams", "0"): ("--streams: expected a whole number >= 1, got '0'", "edgeinfer bench"),
             ("generate", "--prompt", "-x"): ("--prompt/-p: expected one argument; a value that starts with - goes "
                                             "after an equals sign: --option=-value", "edgeinfer generate")}
    for args, (message, prog) in cases.items():
        with pytest.raises(UsageError, match=message) as raised:
            parse(list(args))
        assert raised.value.prog == prog, args


def test_help_and_version_end_the_command(capsys) -> None:
    with pytest.raises(Exit) as done:
        parse(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("edgeinfer ")
    with pytest.raises(SystemExit) as code:
        main(["classify", "image", "--help"])
    out = capsys.readouterr().out
    assert code.value.code == 0 and out.startswith("usage: edgeinfer classify image ") and "--early-exit P" in out
    with pytest.raises(SystemExit) as code:
        main([])  # no arguments: the list of commands, exit 2
    out = capsys.readouterr().out
    assert code.value.code == 2 and all(f"\n    {name} " in out or f"\n    {name}\n" in out for name in COMMANDS)


def test_the_whole_parser_configures_every_command() -> None:
    parser = build()
    for name in COMMANDS:
        with pytest.raises(Exit):
            parser.parse_args([name, "--help"])


def test_progress_bar_line_and_hidden() -> None:
    shown = io.StringIO()
    with Bar(200, "reviews", True, shown) as bar:
        bar.start_at(50)
        bar.update(50, "10/s")
        assert bar.line().startswith("reviews  [" + "#" * 15 + "-" * 15 + "]   50%  100/200  10/s  0:00:")
        assert bar.line().endswith(" left")
    drawn = shown.getvalue()
    # drawn once in the run (the next update comes within 0.1 s), once more at the end, then the line ends
    assert drawn.count("\r") == 2 and drawn.startswith("\rreviews  [") and drawn.endswith(" left\n")
    hidden = io.StringIO()
    with Bar(200, "reviews", False, hidden) as bar:
        bar.update(200)
    assert hidden.getvalue() == ""
    assert Bar(0, "lines", True).line() == "lines  0"  # no total known: the count alone


def test_sentiment_file_progress_ends_full_on_a_terminal_only(tmp_path) -> None:
    (tmp_path / "r.txt").write_text("good film\nbad film\n" * 1100)  # 2,200 lines: not a multiple of 1,024
    code, text = run_cli_on_terminal("sentiment", "--file", str(tmp_path / "r.txt"))
    assert code == 0 and text.rstrip().endswith("reviews  [" + "#" * 30 + "]  100%  2,200/2,200")
    piped = run_cli("sentiment", "--file", str(tmp_path / "r.txt"))
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout.count("\n") == 2200


def test_parser_fuzz_only_parses_or_refuses_in_one_line(capsys) -> None:
    """1,000 random command lines of command names, options and odd values: each parses, or is a
    UsageError (one line) or an Exit (help, version); never another exception."""
    words = [*COMMANDS, "image", "--model", "-m", "--provider", "--json", "--top", "-k", "--early-exit", "--file",
             "-f", "--trace", "--prompt", "-p", "--max-chars", "--chars", "-n", "--temperature", "-t", "--top-k",
             "--seed", "--every", "--stop-on-error", "--out", "-o", "--field", "--column", "--engine", "--workers",
             "--batch-size", "--address", "--shard-size", "--overwrite", "--verbose", "--streams", "--threads",
             "--help", "-h", "--version", "--", "-", "0", "-1", "1e999", "nan", "0.5", "x.png", "digits", "ray",
             "a\x1b[2Jb", "\u202e", "--model=", "--top=3", "-k3", "", " ", "--=", "-\udcff"]
    rng = random.Random(20261207)
    parsed = refused = ended = 0
    for _ in range(1000):
        argv = [rng.choice(words) for _ in range(rng.randint(1, 7))]
        try:
            parse(argv)
            parsed += 1
        except UsageError as exc:
            assert "\n" not in str(exc) and exc.prog.startswith("edgeinfer"), argv
            refused += 1
        except Exit as exc:
            assert exc.code in (0, 2), argv
            ended += 1
    capsys.readouterr()
    assert parsed + refused + ended == 1000 and min(parsed, refused, ended) > 0, (parsed, refused, ended)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fill stdout's disk")
@pytest.mark.parametrize("buffered", [True, False])
def test_a_full_stdout_is_one_line_and_74(buffered: bool) -> None:
    """Help, the version and answers written to a full disk: exit 74 and one line, whether Python
    buffers stdout or not (never a traceback, "Exception ignored", or silence with exit 0)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | ({} if buffered else
                                                                             {"PYTHONUNBUFFERED": "1"})
    sample = str(ROOT / "samples" / "digit-0-light-on-dark.pgm")
    full = "error: No space left on device; free some space and run the command again\n"
    cases = [(["--version"], ""), (["classify", "image", "--help"], ""), (["classify", "image", sample], ""),
             (["classify", "image", sample, "missing.png"], "error: missing.png: no such file\n")]
    for args, before in cases:
        with open("/dev/full", "w") as out:
            got = subprocess.run([sys.executable, "-m", "edgeinfer", *args], stdout=out, stderr=subprocess.PIPE,
                                 text=True, cwd=ROOT, env=env, timeout=120)
        assert (got.returncode, got.stderr) == (74, before + full), (args, got.stderr)
