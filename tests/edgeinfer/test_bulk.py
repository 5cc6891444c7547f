"""The bulk path: classify_texts / score_texts, input expansion and shard plans, every input
format, ids and order, error rows, parts and resume (the local engine, in process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from edgeinfer import InputError, Model
from edgeinfer.bulk import expand, locked, plan, prepare, run_local, run_shard, task_for
from edgeinfer.bulk.sources import ReadStats, read_piece
from edgeinfer.tasks import sentiment as sentiment_task
from edgeinfer.tasks.characters import score, score_texts
from edgeinfer.tasks.sentiment import classify_texts
from tests.conftest import ROOT
from tests.edgeinfer.conftest import committed
from tests.fixtures import digits_name, sentiment_name

TEXTS = ["The movie was great!", "I loved it<br />Not bad", "awful", "...", "Don't watch it. The movie was bad?",
         "good " * 50, "i", "   "]


@pytest.fixture(scope="module")
def text_model() -> Model:
    return Model(committed(sentiment_name("gru2")))


@pytest.fixture(scope="module")
def digits_model() -> Model:
    return Model(committed(digits_name("lstm", 1)))  # fp32: batch mates do not move its numbers


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_classify_texts_in_order_with_errors_per_text(text_model) -> None:
    got = classify_texts(text_model, TEXTS, batch_texts=3)
    assert set(got.errors) == {3, 7}
    alone = [text_model.predict([t])[0] for i, t in enumerate(TEXTS) if i not in got.errors]
    np.testing.assert_allclose(np.delete(got.probabilities, [3, 7], axis=0), alone, atol=1e-6)
    assert got.words.tolist() == [5, 5, 1, 0, 8, 50, 1, 0]


def test_predict_reads_in_bounded_chunks(text_model, monkeypatch) -> None:
    texts = [TEXTS[i % 3] + " good" * (i % 7) for i in range(50)]
    whole = text_model.predict(texts)
    monkeypatch.setattr(sentiment_task, "CHUNK_TEXTS", 7)
    np.testing.assert_allclose(text_model.predict(texts), whole, atol=1e-6)
    with pytest.raises(InputError, match="text 23 is empty"):
        text_model.predict([*texts[:23], "...", *texts[23:]])
    long = "great movie " * 40_000  # longer than LONG_TEXT_CHARS: read in pieces, state carried
    got = classify_texts(text_model, [long, "awful"])
    assert got.words.tolist() == [80_000, 1] and not got.errors


# The int8 LSTM quantizes each step's inputs with one scale for the whole batch (score_texts says
# so), so batch mates move a text's score a little: up to 1.3e-3 nats/char on AVX-512 CPUs, 8.9e-3
# on an AVX2-only one (the line "All:"). Alone (batch 1) the two are equal.
BATCH_MATES = 1.5e-2


def test_score_texts_equals_score(char_model) -> None:
    model = Model(char_model)
    lines = ["First Citizen:", "Before we proceed any further, hear me speak.", "x", "", "All:", "Speak, speak."]
    got = score_texts(model, lines, batch=4)
    assert got.errors == {2: "text too short to score; expected at least two characters",
                          3: "text too short to score; expected at least two characters"}
    for i, line in enumerate(lines):
        if i not in got.errors:
            assert got.nats[i] == pytest.approx(score(model, line), abs=BATCH_MATES)
    assert got.chars.tolist() == [len(t) for t in lines]


def test_expand_files_folders_globs(tmp_path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.txt", "d/a.csv", "d/sub/c.jsonl", "d/notes.md", "e.parquet", "f.dat"):
        (tmp_path / name).write_text("x\n")
    got = expand([str(tmp_path / "d"), str(tmp_path / "*.parquet"), str(tmp_path / "f.dat"),
                  str(tmp_path / "d" / "b.txt"), str(tmp_path / "nothing*"), str(tmp_path / "gone.txt")], images=False)
    names = [(Path(s.path).relative_to(tmp_path).as_posix() if s.kind != "missing" else s.note.split(":")[-1], s.kind)
             for s in got]
    assert names == [("d/a.csv", "csv"), ("d/b.txt", "lines"), ("d/sub/c.jsonl", "jsonl"), ("e.parquet", "parquet"),
                     ("f.dat", "lines"), (" no files match", "missing"), (" no such file or folder", "missing")]
    images = expand([str(tmp_path)], images=True)
    assert [s.kind for s in images] == ["parquet"]  # folders: image and Parquet files only


def _write_lines(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_plans_cut_lines_and_csv_records_exactly(tmp_path, size) -> None:
    a = _write_lines(tmp_path / "a.txt", b"one\r\ntwo\n\nfour\nfive")  # CRLF, a blank line, no final newline
    b = _write_lines(tmp_path / "b.csv", b'id,text\n1,"multi\nline, quoted"\n2,plain\n\n3,"say ""hi"""\n')
    c = _write_lines(tmp_path / "c.jsonl", b'{"text": "x"}\n{"text": "y"}\n')
    sources, shards = plan(expand([str(a), str(b), str(c)], images=False), False, "text", "text", size)
    assert all(sum(p.records for p in shard) <= size for shard in shards)
    stats = ReadStats()
    got = [(r.id, r.value) for shard in shards for piece in shard
           for r in read_piece(sources, piece, False, "text", "text", stats)]
    assert got == [(f"{a}:1", "one"), (f"{a}:2", "two"), (f"{a}:4", "four"), (f"{a}:5", "five"),
                   (f"{b}:2", "multi\nline, quoted"), (f"{b}:4", "plain"), (f"{b}:6", 'say "hi"'),
                   (f"{c}:1", "x"), (f"{c}:2", "y")]
    assert stats.blank == 2 and stats.read == 5 + 4 + 2


def _inputs(tmp_path: Path) -> list[str]:
    """The same reviews in every text format, with bad records of each kind."""
    (tmp_path / "r.txt").write_bytes(b"The movie was great!\n\nawful\n\xff\xfe broken\n...\n \t\nnot bad\n")
    (tmp_path / "r.jsonl").write_text('{"text": "The movie was great!"}\n\n{"review": "x"}\n{"text": 3}\nnot json\n'
                                      '[1]\n{"text": "awful", "id": 7}\n')
    (tmp_path / "r.csv").write_text('id,text\n1,"The movie was great!"\n2,"awful,\nawful"\n3\n4,bad\x00line\n')
    table = pa.table({"text": ["The movie was great!", None, "awful", "i loved it"]})
    pq.write_table(table, tmp_path / "r.parquet", row_group_size=3)
    (tmp_path / "nocol.csv").write_text("id,review\n1,good\n")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "empty.txt").write_bytes(b"")
    return [str(tmp_path / n) for n in ("r.txt", "r.jsonl", "r.csv", "r.parquet", "nocol.csv", "binary.txt",
                                        "empty.txt", "missing.txt")]


def test_every_text_format_ids_order_and_error_rows(text_model, tmp_path) -> None:
    inputs = _inputs(tmp_path)
    out = tmp_path / "out.jsonl"
    job = prepare(out, text_model, inputs, shard_size=3)
    summary = run_local(job, task_for(text_model))
    rows, errors = _rows(out), _rows(tmp_path / "out.jsonl.errors.jsonl")
    t = str(tmp_path)
    assert [r["id"] for r in rows] == [f"{t}/r.txt:1", f"{t}/r.txt:3", f"{t}/r.txt:7", f"{t}/r.jsonl:1",
                                       f"{t}/r.jsonl:7", f"{t}/r.csv:2", f"{t}/r.csv:3", f"{t}/r.parquet#0",
                                       f"{t}/r.parquet#2", f"{t}/r.parquet#3"]
    texts = ["The movie was great!", "awful", "not bad", "The movie was great!", "awful", "The movie was great!",
             "awful,\nawful", "The movie was great!", "awful", "i loved it"]
    want = text_model.predict(texts)
    np.testing.assert_allclose([[r["probabilities"]["negative"], r["probabilities"]["positive"]] for r in rows],
                               want, atol=1e-5)
    assert all(r["label"] == ("positive" if r["probabilities"]["positive"] > 0.5 else "negative") for r in rows)
    assert rows[0]["source"] == f"{t}/r.txt" and rows[0]["line"] == 1 and rows[0]["words"] == 5
    assert rows[-1]["row"] == 3 and "line" not in rows[-1]
    assert [e["id"] for e in errors] == [f"{t}/r.txt:4", f"{t}/r.txt:5", f"{t}/r.jsonl:3", f"{t}/r.jsonl:4",
                                         f"{t}/r.jsonl:5", f"{t}/r.jsonl:6", f"{t}/r.csv:5", f"{t}/r.csv:6",
                                         f"{t}/r.parquet#1", f"{t}/nocol.csv", f"{t}/binary.txt", f"{t}/empty.txt",
                                         f"{t}/missing.txt"]
    messages = [e["error"].split(": ", 1)[1] for e in errors]
    assert messages[:2] == ["invalid UTF-8 at byte 0; expected UTF-8 text",
                            "empty text (no words); expected at least one word"]
    assert messages[2].startswith("no field 'text'") and messages[3].startswith("a int in the field 'text'")
    assert messages[4].startswith("invalid JSON") and messages[5].startswith("expected a JSON object")
    assert messages[6] == "no field for column 'text'" and messages[7] == "NUL byte in text; expected plain UTF-8 text"
    assert messages[8] == "null in column 'text'"
    assert messages[9].startswith("no column 'text' (columns: id, review)")
    assert messages[10].startswith("binary file") and messages[11].startswith("empty file")
    assert messages[12] == "no such file or folder"
    assert (summary.rows, summary.errors, summary.blank) == (10, 13, 3)
    assert not (tmp_path / "out.jsonl.parts").exists()


def test_parquet_output_equals_json_lines(text_model, tmp_path) -> None:
    inputs = _inputs(tmp_path)
    run_local(prepare(tmp_path / "a.jsonl", text_model, inputs, shard_size=4), task_for(text_model))
    run_local(prepare(tmp_path / "a.parquet", text_model, inputs, shard_size=4), task_for(text_model))
    rows, table = _rows(tmp_path / "a.jsonl"), pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert [r["line"] for r in table] == [r.get("line") for r in rows]
    assert [r["row"] for r in table] == [r.get("row") for r in rows]
    for a, b in zip(rows, table, strict=True):
        assert a["label"] == b["label"] and a["words"] == b["words"]
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)
    assert (tmp_path / "a.parquet.errors.jsonl").read_text() == (tmp_path / "a.jsonl.errors.jsonl").read_text()


def _pngs(folder: Path, images: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(folder / f"{i:04d}.png")
        Image.fromarray(255 - img).save(paths[-1])  # dark on light, as people scan digits
    return paths


def test_digits_folders_globs_and_bad_images(digits_model, mnist_test, tmp_path) -> None:
    images, _ = mnist_test
    paths = _pngs(tmp_path / "a", images[:40])
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (tmp_path / "a" / "readme.md").write_text("not an image")  # folders: image files only
    Image.new("L", (20, 20), 255).save(tmp_path / "blank.png")
    out = tmp_path / "d.jsonl"
    summary = run_local(prepare(out, digits_model, [str(tmp_path / "a"), str(tmp_path / "blank.png"),
                                                    str(tmp_path / "a" / "00[01]*.png")], shard_size=16),
                        task_for(digits_model, 8))
    rows, errors = _rows(out), _rows(tmp_path / "d.jsonl.errors.jsonl")
    assert [r["id"] for r in rows] == [str(p) for p in paths]  # the glob's files were listed already: once each
    want = digits_model.predict(np.stack([_load(digits_model, p) for p in paths]))
    np.testing.assert_allclose([list(r["probabilities"].values()) for r in rows], want, atol=1e-5)
    assert [e["id"] for e in errors] == [str(tmp_path / "a" / "broken.png"), str(tmp_path / "blank.png")]
    assert "not an image Pillow can read" in errors[0]["error"] and "no digit found" in errors[1]["error"]
    assert (summary.rows, summary.errors) == (40, 2)


def _load(model: Model, path: Path) -> np.ndarray:
    from edgeinfer.preprocess.image import load_digit
    from edgeinfer.spec import ImageInput

    return load_digit(path, model.spec.require_input(ImageInput))


def test_digits_from_parquet_bytes(digits_model, mnist_test, tmp_path) -> None:
    images, _ = mnist_test
    paths = _pngs(tmp_path / "png", images[:10])
    pq.write_table(pa.table({"image": [p.read_bytes() for p in paths] + [b"junk"]}), tmp_path / "i.parquet")
    run_local(prepare(tmp_path / "o.jsonl", digits_model, [str(tmp_path / "i.parquet")]), task_for(digits_model))
    rows = _rows(tmp_path / "o.jsonl")
    assert [r["id"] for r in rows] == [f"{tmp_path}/i.parquet#{i}" for i in range(10)]
    want = digits_model.predict(np.stack([_load(digits_model, p) for p in paths]))
    np.testing.assert_allclose([list(r["probabilities"].values()) for r in rows], want, atol=1e-5)
    assert _rows(tmp_path / "o.jsonl.errors.jsonl")[0]["id"] == f"{tmp_path}/i.parquet#10"


def test_characters_scored_per_line(char_model, tmp_path) -> None:
    model = Model(char_model)
    (tmp_path / "play.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\nx\n\nAll:\n")
    run_local(prepare(tmp_path / "s.jsonl", model, [str(tmp_path / "play.txt")]), task_for(model))
    rows = _rows(tmp_path / "s.jsonl")
    assert [r["line"] for r in rows] == [1, 2, 5]
    for r, text in zip(rows, ["First Citizen:", "Before we proceed any further, hear me speak.", "All:"], strict=True):
        assert r["nats_per_char"] == pytest.approx(score(model, text), abs=BATCH_MATES)
        assert r["bits_per_char"] == pytest.approx(r["nats_per_char"] / np.log(2), abs=1e-5)
        assert r["chars"] == len(text)
    assert _rows(tmp_path / "s.jsonl.errors.jsonl")[0]["error"].endswith("expected at least two characters")


def test_resume_runs_only_the_shards_not_done(text_model, tmp_path) -> None:
    inputs = _inputs(tmp_path)
    whole = tmp_path / "whole.jsonl"
    run_local(prepare(whole, text_model, inputs, shard_size=3), task_for(text_model))
    out = tmp_path / "out.jsonl"
    job = prepare(out, text_model, inputs, shard_size=3)
    task = task_for(text_model)
    for index in (0, 2, 3):  # an earlier run got this far (in any order, as Ray workers do)
        run_shard(job, index, task)
    (job.part(4)).write_text("half a part, never renamed\n")  # a shard that was being written: not done
    again = prepare(out, text_model, inputs, shard_size=3)
    assert again.pending() == [i for i in range(len(job.shards)) if i not in (0, 2, 3)]
    summary = run_local(again, task)
    assert summary.resumed == 3 and out.read_text() == whole.read_text()
    assert (tmp_path / "out.jsonl.errors.jsonl").read_text() == (tmp_path / "whole.jsonl.errors.jsonl").read_text()


def test_resume_refuses_another_job_and_an_existing_output(text_model, tmp_path) -> None:
    inputs = _inputs(tmp_path)
    out = tmp_path / "out.jsonl"
    prepare(out, text_model, inputs, shard_size=3)
    with pytest.raises(InputError, match="an interrupted job with another --shard-size; rerun its command"):
        prepare(out, text_model, inputs, shard_size=4)
    with pytest.raises(InputError, match="another inputs"):
        prepare(out, text_model, inputs[:2], shard_size=3)
    (tmp_path / "r.txt").write_text("changed\n")
    with pytest.raises(InputError, match=r"r\.txt: changed since the interrupted job"):
        prepare(out, text_model, inputs, shard_size=3)
    job = prepare(out, text_model, inputs, shard_size=3, overwrite=True)  # --overwrite starts over
    run_local(job, task_for(text_model))
    with pytest.raises(InputError, match=r"out\.jsonl exists; pass --overwrite"):
        prepare(out, text_model, inputs, shard_size=3)
    with pytest.raises(InputError, match=r"must end in \.jsonl or \.parquet"):
        prepare(tmp_path / "out.csv", text_model, inputs)


def test_import_edgeinfer_never_loads_ray_or_pyarrow() -> None:
    code = ("import sys, edgeinfer, edgeinfer.cli, edgeinfer.cli.app, edgeinfer.bulk; edgeinfer.cli.app.build(); "
            "print(sorted(m for m in ('ray', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_parquet_without_pyarrow_is_one_line(text_model, tmp_path) -> None:
    pq.write_table(pa.table({"text": ["good"]}), tmp_path / "r.parquet")
    code = ("import sys; sys.modules['pyarrow'] = None; sys.argv = ['edgeinfer'] + sys.argv[1:]; "
            "from edgeinfer.cli import main; main()")
    for args in (["batch", "sentiment", str(tmp_path / "r.parquet"), "--out", str(tmp_path / "o.jsonl")],
                 ["batch", "sentiment", str(tmp_path / "r.parquet"), "--out", str(tmp_path / "o.parquet")]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 2 and out.stderr == ("error: Parquet needs pyarrow: pip install 'edgeinfer[ray]' "
                                                      "(or pip install pyarrow)\n"), out.stderr


def test_output_inside_an_input_folder_is_never_an_input_and_one_run_per_job(text_model, tmp_path) -> None:
    (tmp_path / "a.txt").write_text("good\nbad\n")
    out = tmp_path / "out.jsonl"
    job = prepare(out, text_model, [str(tmp_path)], shard_size=1)
    with locked(job), pytest.raises(InputError, match="another run is working on this job"):
        run_local(prepare(out, text_model, [str(tmp_path)], shard_size=1), task_for(text_model))
    run_shard(job, 0, task_for(text_model))  # a part inside the input folder: not an input on the rerun
    run_local(prepare(out, text_model, [str(tmp_path)], shard_size=1), task_for(text_model))
    again = prepare(out, text_model, [str(tmp_path)], shard_size=1, overwrite=True)  # out.jsonl is in the folder
    assert [s.path for s in again.sources] == [str(tmp_path / "a.txt")]
