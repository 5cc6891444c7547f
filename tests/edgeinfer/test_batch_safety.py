"""Bulk jobs never lose or mix a user's data: OUT is never one of the inputs, --overwrite never
deletes what a live run writes, a mistyped --field/--column stops the job before anything is
written, link loops end, and a file name that is not UTF-8 is an error row, not a crash."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

from edgeinfer import Model
from edgeinfer.bulk.job import parts_dir, prepare
from tests.conftest import run_cli


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_out_is_never_an_input(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "a fine film"}\n{"text": "dull"}\n')
    before = data.read_bytes()
    got = run_cli("batch", "sentiment", str(data), "--out", str(data), "--overwrite")
    assert got.returncode == 2 and f"--out {data}: that is the input {data}; write the output to another file" \
        in got.stderr
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    got = run_cli("batch", "sentiment", str(tmp_path), "--out", str(link), "--overwrite")
    assert got.returncode == 2 and "that is the input" in got.stderr
    assert data.read_bytes() == before and not parts_dir(data).exists() and not parts_dir(link).exists()


def test_overwrite_refuses_while_another_run_holds_the_job(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("good\nbad\n")
    out = tmp_path / "o.jsonl"
    job = prepare(out, Model("sentiment"), [str(tmp_path / "a.txt")])
    (job.parts / "part-00000.jsonl").write_text("what a live run wrote\n")
    fd = os.open(job.parts / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live run of the job
        (tmp_path / "b.txt").write_text("other\n")
        got = run_cli("batch", "sentiment", str(tmp_path / "b.txt"), "--out", str(out), "--overwrite")
        assert got.returncode == 2 and "another run is working on this job" in got.stderr, got.stderr
        assert (job.parts / "part-00000.jsonl").read_text() == "what a live run wrote\n" and not out.exists()
    finally:
        os.close(fd)
    got = run_cli("batch", "sentiment", str(tmp_path / "b.txt"), "--out", str(out), "--overwrite")
    assert got.returncode == 0 and [r["id"] for r in _rows(out)] == [f"{tmp_path}/b.txt:1"]


@pytest.mark.parametrize(("name", "text", "option", "message"), [
    ("a.jsonl", '{"review": "good"}\n{"review": "bad", "stars": 1}\n', ["--field", "text"],
     "no field 'text' in its first 2 records (fields: review, stars); give --field NAME"),
    ("a.csv", "review,stars\ngood,5\n", ["--column", "body"],
     "no column 'body' (columns: review, stars); give --column NAME"),
    ("a.txt", "good\n", [], "no such file or folder"),
])
def test_a_mistyped_field_column_or_path_stops_before_anything_is_written(tmp_path: Path, name: str, text: str,
                                                                           option: list[str], message: str) -> None:
    (tmp_path / name).write_text(text)
    given = tmp_path / (name if name != "a.txt" else "typo.txt")
    out = tmp_path / "o.jsonl"
    got = run_cli("batch", "sentiment", str(given), *option, "--out", str(out))
    assert got.returncode == 1 and got.stderr.count("\n") == 1 and message in got.stderr, got.stderr
    assert got.stderr.startswith("error: nothing to read: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no OUT, no OUT.parts, no errors file
    fixed = run_cli("batch", "sentiment", str(tmp_path / name), "--field", "review", "--column", "review",
                    "--out", str(out))
    assert fixed.returncode == 0, fixed.stderr  # the corrected command runs without --overwrite


def test_link_loops_end_and_each_file_is_read_once(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "x.txt").write_text("good\n")
    (root / "a" / "b" / "y.txt").write_text("bad\n")
    (root / "a" / "b" / "loop").symlink_to(root)  # a folder linking back up
    (root / "a" / "again.txt").symlink_to(root / "a" / "x.txt")
    for given in (str(root), f"{root}/**/*.txt"):
        out = tmp_path / "o.jsonl"
        got = run_cli("batch", "sentiment", given, "--out", str(out), "--overwrite")
        assert got.returncode == 0, got.stderr
        # x.txt is reached as itself, through the link again.txt (first in order: kept) and the loop
        assert sorted(r["id"].rsplit("/", 1)[1] for r in _rows(out)) == ["again.txt:1", "y.txt:1"]


def test_a_file_name_that_is_not_utf8_is_an_error_row(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("a fine film\n")
    try:
        (Path(os.fsdecode(bytes(folder) + b"/bad-\xff.txt"))).write_text("dull\n")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    out = tmp_path / "o.jsonl"
    for _ in range(2):  # and the job finishes: its rerun is refused as done, never a crash
        got = run_cli("batch", "sentiment", str(folder), "--out", str(out), "--overwrite")
        assert got.returncode == 1, got.stderr
        assert [r["id"] for r in _rows(out)] == [f"{folder}/good.txt:1"]
        errors = _rows(Path(f"{out}.errors.jsonl"))
        assert len(errors) == 1 and "a file name that is not valid UTF-8; rename it" in errors[0]["error"]


def test_a_parquet_value_that_cannot_be_read_is_one_error_row_and_every_other_row_comes_out(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = [f"review {i}: a good film".encode() for i in range(10_000)]
    values[5_000] = b"bad \xff\xfe value"  # invalid UTF-8 in a string column
    raw = pa.array(values, pa.binary()).buffers()
    pq.write_table(pa.table({"review": pa.Array.from_buffers(pa.string(), len(values), raw)}), tmp_path / "d.parquet")
    out = tmp_path / "o.jsonl"
    got = run_cli("batch", "sentiment", str(tmp_path / "d.parquet"), "--column", "review", "--out", str(out))
    assert got.returncode == 1, got.stderr
    rows, errors = _rows(out), _rows(Path(f"{out}.errors.jsonl"))
    assert len(rows) == 9_999 and [e["row"] for e in errors] == [5_000]
    assert sorted([r["row"] for r in rows] + [5_000]) == list(range(10_000))  # every row, once


def test_a_stray_quote_in_csv_is_one_error_row_and_the_job_reads_on(tmp_path: Path, monkeypatch) -> None:
    from edgeinfer.bulk import sources, task_for
    from edgeinfer.bulk.job import run_local

    monkeypatch.setattr(sources, "CSV_FIELD_LIMIT", 2_000)  # 8 MiB in use; small here to keep the test fast
    lines = ["review"] + [f"line {i} was good" for i in range(2_000)]
    lines[10] = '"a stray quote opens here'
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.jsonl"
    model = Model("sentiment")
    job = prepare(out, model, [str(tmp_path / "d.csv")], column="review")
    summary = run_local(job, task_for(model))
    rows, errors = _rows(out), _rows(Path(f"{out}.errors.jsonl"))
    assert summary.errors == len(errors) == 1 and "field larger than field limit" in errors[0]["error"]
    assert len(rows) > 1_800  # the lines after the swallowed ones are read again, one row each


@pytest.mark.parametrize("suffix, line", [(".txt", "{text}"), (".jsonl", '{{"text": "{text}"}}')])
def test_a_line_over_the_record_limit_is_one_error_row_never_held_whole(tmp_path: Path, monkeypatch, suffix: str,
                                                                       line: str) -> None:
    from edgeinfer.bulk import sources, task_for
    from edgeinfer.bulk.job import run_local

    monkeypatch.setattr(sources, "LINE_LIMIT", 1_000)  # 8 MiB in use; small here to keep the test fast
    texts = ["a good film", "good " * 2_000 + "end", "a dull film"]
    (tmp_path / f"d{suffix}").write_text("".join(line.format(text=t) + "\n" for t in texts))
    out = tmp_path / "o.jsonl"
    model = Model("sentiment")
    job = prepare(out, model, [str(tmp_path / f"d{suffix}")])
    summary = run_local(job, task_for(model))
    rows, errors = _rows(out), _rows(Path(f"{out}.errors.jsonl"))
    assert [r["line"] for r in rows] == [1, 3] and summary.errors == len(errors) == 1
    assert errors[0]["line"] == 2 and "over the 1,000 bytes a record may hold" in errors[0]["error"]
    assert "a line of 10,0" in errors[0]["error"]  # its size, read past in pieces


def test_os_faults_are_one_line_with_their_own_exit_code(tmp_path: Path) -> None:
    """A path under a regular file, a full disk: the machine's fault, not a bug (exit 74, not 70),
    one line naming the path and the cause; the rerun after the fix works."""
    (tmp_path / "a.txt").write_text("good\nbad\n")
    (tmp_path / "file").write_text("x")
    got = run_cli("batch", "sentiment", str(tmp_path / "a.txt"), "--out", str(tmp_path / "file" / "o.jsonl"))
    assert got.returncode == 74 and got.stderr.count("\n") == 1, got.stderr
    assert got.stderr == f"error: {tmp_path}/file/o.jsonl.parts: Not a directory; a part of the path is a file, " \
                         "not a folder\n"
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(small)], capture_output=True,
                             text=True) if os.geteuid() == 0 else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip("a full disk needs a small tmpfs, which only root with mount rights can make here "
                    f"({mounted.stderr.strip() if mounted else 'not root'})")
    try:
        (tmp_path / "many.txt").write_text("a good film, well acted\n" * 20_000)
        out = small / "o.jsonl"
        got = run_cli("batch", "sentiment", str(tmp_path / "many.txt"), "--out", str(out))
        assert got.returncode == 74 and got.stderr.count("\n") == 1, got.stderr
        assert "No space left on device; free some space and run the command again" in got.stderr
        assert not out.exists()  # nothing half-written where OUT goes
    finally:
        subprocess.run(["umount", str(small)], check=False)
    got = run_cli("batch", "sentiment", str(tmp_path / "many.txt"), "--out", str(tmp_path / "o.jsonl"))
    assert got.returncode == 0 and len(_rows(tmp_path / "o.jsonl")) == 20_000


def test_ctrl_c_says_how_to_resume(tmp_path: Path) -> None:
    import signal
    import sys
    import time

    from tests.conftest import ROOT

    (tmp_path / "r.txt").write_text("".join(f"review {i}: a good film, and well acted\n" for i in range(4_000)))
    args = [sys.executable, "-m", "edgeinfer", "batch", "sentiment", "r.txt", "--out", "o.jsonl", "--shard-size", "200"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "o.jsonl.parts").glob("*.done"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and err.strip().endswith(
        "parts done in o.jsonl.parts; run the same command again to resume"), err
    assert "Traceback" not in err
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert again.returncode == 0 and len(_rows(tmp_path / "o.jsonl")) == 4_000, again.stderr
