"""The motions built-in (a GRU-64 trained by `edgeinfer-train` on BasicMotions, int8) in the
runtime alone: its held-out recordings in samples/ read step by step, through `run` from a file
and live from a pipe played back at the watch's pace, and its answer after part of a recording."""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import edgeinfer
from tests.conftest import ROOT, run_cli
from tests.datasets import motions_test

SAMPLES = ROOT / "samples"
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def test_motions_reads_the_held_out_recordings_step_by_step() -> None:
    model = edgeinfer.load("motions")
    assert model.spec.input.kind == "features" and model.spec.input.names == CHANNELS
    assert sorted(model.spec.labels) == ["badminton", "running", "standing", "walking"]
    assert model.spec.precision == "int8"
    x, truth = motions_test(CHANNELS)
    assert len(x) == 40 and {len(s) for s in x} == {100}
    whole = [model.spec.labels[int(p.argmax())] for p in model.predict(np.stack(x))]
    traces = [model.stream().trace(s) for s in x]  # (100, 4) each: the running answer
    stepped = [model.spec.labels[int(t[-1].argmax())] for t in traces]
    assert stepped == whole
    accuracy = np.mean([a == b for a, b in zip(stepped, truth, strict=True)])
    # the file's own record (40/40 when it was trained), within one recording for other CPUs' int8 rounding
    assert abs(accuracy - model.spec.metrics["test_accuracy"]) <= 1 / 40, accuracy
    quarter = np.mean([model.spec.labels[int(t[24].argmax())] == y for t, y in zip(traces, truth, strict=True)])
    assert quarter >= 37 / 40, quarter  # after 25 of 100 steps (2.5 s): 40/40 when trained
    sure = [model.early_exit(s, 0.95) for s in x]
    read = np.mean([r.steps[0] for r in sure]) / 100
    exit_acc = np.mean([r.labels[0] == y for r, y in zip(sure, truth, strict=True)])
    assert exit_acc >= 37 / 40 and read < 0.3, (exit_acc, read)  # when trained: 39/40 reading 20.7% of the steps


def test_run_motions_on_the_sample_recording() -> None:
    got = run_cli("run", "motions", str(SAMPLES / "basicmotions-walking.csv"))
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"1:{t}" for t in range(1, 101)]  # the header skipped
    assert all(line.split()[1] in ("standing", "walking", "running", "badminton") for line in lines)
    assert lines[-1].split()[1] == "walking" and float(lines[-1].split()[2]) >= 0.9
    early = run_cli("run", "motions", str(SAMPLES / "basicmotions-walking.csv"), "--early-exit", "0.95")
    last = early.stdout.splitlines()[-1]
    assert last.endswith("(sure: early exit)") and last.split()[1] == "walking"
    assert int(last.split(":")[1].split()[0]) < 50


def test_the_readme_run_commands_as_written() -> None:
    """The README's two `run motions` lines in bash, with this Python's `edgeinfer` first on PATH."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text[text.index("<!-- example: run-motions"):], re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 2
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    every, piped = (subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=ROOT, env=env,
                                   timeout=120) for line in lines)
    shown = [c.strip() for c in lines[0].split("#", 1)[1].split("...")]  # "1:25 walking 0.954 ... 1:100 ..."
    assert every.returncode == 0 and every.stdout.splitlines()[0] == shown[0] and \
        every.stdout.splitlines()[-1] == shown[1], every.stdout
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 100, piped.stderr
    assert piped.stdout.splitlines()[24] == shown[0] and piped.stdout.splitlines()[-1] == shown[1]


def test_run_motions_live_from_a_pipe_at_the_watchs_pace() -> None:
    """Lines written 0.1 s apart (the watch's 10 Hz): each answered before the next is written."""
    lines = (SAMPLES / "basicmotions-walking.csv").read_text().splitlines()
    proc = subprocess.Popen([sys.executable, "-m", "edgeinfer", "run", "motions", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdin is not None and proc.stdout is not None
    answers = []
    try:
        proc.stdin.write(f"{lines[0]}\n".encode())  # the header: skipped, no answer
        for step, line in enumerate(lines[1:21], 1):
            proc.stdin.write(f"{line}\n".encode())
            proc.stdin.flush()
            deadline = time.monotonic() + 60
            ready: list = []
            while not ready and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 0.05)
            assert ready, f"no answer to step {step} within 60 s while the pipe stayed open"
            answers.append(proc.stdout.readline().decode())
            assert answers[-1].startswith(f"1:{step} "), answers[-1]
            time.sleep(0.1)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0 and answers[-1].split()[1] == "walking"
