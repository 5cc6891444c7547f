"""An honest "I don't know": a text whose words the model mostly does not know is flagged, in the
API (TextStream, classify_texts), the CLI (a stderr warning, JSON fields) and bulk jobs."""
from __future__ import annotations

import json

import edgeinfer
from edgeinfer.tasks.sentiment import MIN_KNOWN_FRACTION, classify_texts, is_low_coverage
from tests.conftest import run_cli

GERMAN, ENGLISH, NONSENSE = "Dieser Film war schrecklich", "This movie was great", "zzqx vvkq"


def test_the_rule() -> None:
    assert MIN_KNOWN_FRACTION == 0.6
    assert is_low_coverage(0, 1) and is_low_coverage(2, 4) and is_low_coverage(5, 9)
    assert not is_low_coverage(1, 1) and not is_low_coverage(3, 5) and not is_low_coverage(9, 10)


def test_api_reports_known_words() -> None:
    model = edgeinfer.load("sentiment")
    got = classify_texts(model, [GERMAN, ENGLISH, NONSENSE, "..."])
    assert got.words.tolist() == [4, 4, 2, 0] and got.known.tolist() == [2, 4, 0, 0]  # film, war
    assert got.low_coverage.tolist() == [True, False, True, True] and set(got.errors) == {3}
    stream = model.text_stream()
    stream.feed("Dieser Film ")
    assert (stream.words, stream.known_words, stream.coverage) == (2, 1, 0.5) and stream.low_coverage
    stream.feed("war schrecklich great movie loved it")
    stream.finish()
    assert (stream.words, stream.known_words) == (8, 6) and not stream.low_coverage
    traced = model.text_stream()
    assert [w for w, _ in traced.trace(GERMAN)] == ["dieser", "film", "war", "schrecklich"]
    assert traced.known_words == 2 and traced.low_coverage
    traced.reset()
    assert traced.known_words == 0


def test_cli_warns_and_reports(tmp_path) -> None:
    out = run_cli("sentiment", "--json", GERMAN, ENGLISH)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["known"], r["low_coverage"]) for r in rows] == [(0.5, True), (1.0, False)]
    assert out.stderr == ("warning: text 1: only 2 of 4 words in the model's vocabulary; "
                          "the answer is little more than a guess\n")
    path = tmp_path / "t.txt"
    path.write_text(f"{ENGLISH}\n{NONSENSE}\n")
    for args in ([], ["--json"]):
        out = run_cli("sentiment", "--file", str(path), *args)
        assert out.returncode == 0
        assert out.stderr == (f"warning: {path}:2: only 0 of 2 words in the model's vocabulary; "
                              "the answer is little more than a guess\n")
    assert [json.loads(line)["low_coverage"] for line in out.stdout.splitlines()] == [False, True]


def test_bulk_rows_carry_coverage(tmp_path) -> None:
    (tmp_path / "t.txt").write_text(f"{GERMAN}\n{ENGLISH}\n")
    out = run_cli("batch", "sentiment", str(tmp_path / "t.txt"), "--out", str(tmp_path / "o.jsonl"))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(r["words"], r["known"], r["low_coverage"]) for r in rows] == [(4, 0.5, True), (4, 1.0, False)]
