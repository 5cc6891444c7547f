"""Text models: tokenizer, chunked word splitting, padded batches, streams, the sentiment CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeinfer import InputError, Model
from edgeinfer.preprocess.text import UNK_ID, Tokenizer, WordBuffer, words
from edgeinfer.spec import TextInput
from tests.conftest import run_cli

TEXTS = ["The movie was great!", "I loved it<br />Not bad", "awful", "Don't watch it. The movie was bad?",
         "good " * 50, "i"]


def test_words_rules() -> None:
    assert words("Don’t   STOP!<br /><br>It's 10/10... a_b") == ["don't", "stop", "!", "it's", "10", "10", "a", "b"]  # noqa: RUF001
    assert words("  \t\n ") == [] and words("...") == []
    tok = Tokenizer(TextInput(vocab=("the", "movie")))
    assert tok.encode("The MOVIE rocks") == [2, 3, UNK_ID]


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7, 11])
def test_word_buffer_equals_whole_text(cut: int) -> None:
    text = "It's a <br />great, GREAT movie!Don't miss it<br/>end"
    buf = WordBuffer()
    got = [w for i in range(0, len(text), cut) for w in buf.push(text[i : i + cut])] + list(buf.flush())
    assert got == words(text)


def test_padded_batch_equals_each_text_alone(sentiment_model) -> None:
    model = Model(sentiment_model)
    together = model.predict(TEXTS)
    alone = np.concatenate([model.predict([t]) for t in TEXTS])
    assert np.abs(together - alone).max() <= 1e-6
    assert together.shape == (len(TEXTS), 2) and np.allclose(together.sum(1), 1.0)
    # the exported sequence graph's own padding check: tests/export/test_text_padding.py


def test_text_stream_chunks_and_trace_equal_predict(sentiment_model) -> None:
    model = Model(sentiment_model)
    want = model.predict(TEXTS)
    for text, p in zip(TEXTS, want, strict=True):
        stream = model.text_stream()
        for i in range(0, len(text), 4):
            stream.feed(text[i : i + 4])
        assert np.abs(stream.finish() - p).max() <= 1e-6
        assert stream.words == len(words(text))
        traced = list(model.text_stream().trace(text, final=True))
        assert [w for w, _ in traced] == words(text)
        assert np.abs(traced[-1][1] - p).max() <= 1e-6


def test_text_errors(sentiment_model) -> None:
    model = Model(sentiment_model)
    with pytest.raises(InputError, match="text 1 is empty"):
        model.predict(["good", "   "])
    with pytest.raises(InputError, match="expected a list of texts"):
        model.predict("good")
    with pytest.raises(InputError, match="empty or has no words"):
        model.text_stream().finish()
    with pytest.raises(InputError, match="token id out of range"):
        model.stream().step(10_000)


def test_long_text_streams_in_chunks(sentiment_model) -> None:
    model = Model(sentiment_model)
    text = "the movie was great ! " * 20_000  # 100,000 words
    stream = model.text_stream()
    for i in range(0, len(text), 65536):
        stream.feed(text[i : i + 65536])
    p = stream.finish()
    assert stream.words == 100_000
    assert np.abs(p - model.predict([text])[0]).max() <= 1e-4


def test_cli_sentiment_texts_json_and_trace(sentiment_model) -> None:
    out = run_cli("sentiment", "--model", str(sentiment_model), "--json", *TEXTS[:3])
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    want = Model(sentiment_model).predict(TEXTS[:3])[:, 1]
    assert [r["index"] for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([r["positive"] for r in rows], want, atol=1e-5)
    assert all(r["label"] == ("positive" if r["positive"] >= 0.5 else "negative") for r in rows)
    trace = run_cli("sentiment", "--model", str(sentiment_model), "--trace", "The movie was great!")
    lines = trace.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines[:-1]] == ["the", "movie", "was", "great", "!"]
    assert lines[-1].startswith(("positive (", "negative (")) and lines[-1].endswith(": The movie was great!")


def test_cli_stdin_and_file(sentiment_model, tmp_path) -> None:
    out = run_cli("sentiment", "--model", str(sentiment_model), "--json", "-", stdin="I loved it<br />Not bad")
    assert out.returncode == 0
    assert json.loads(out.stdout)["positive"] == pytest.approx(
        Model(sentiment_model).predict(["I loved it<br />Not bad"])[0, 1], abs=1e-5)
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"The movie was great!\n\xff\xfebroken\n   \n...\nawful\n\n")
    out = run_cli("sentiment", "--model", str(sentiment_model), "--json", "--file", str(path))
    assert out.returncode == 1
    assert [json.loads(x)["line"] for x in out.stdout.splitlines()] == [1, 5]
    err = out.stderr.strip().splitlines()
    assert err == [f"error: {path}:2: invalid UTF-8 at byte 0; expected UTF-8 text",
                   f"error: {path}:4: empty text (no words); expected at least one word",
                   f"{path}: skipped 2 blank lines"]  # blank lines are separators, not texts


def test_cli_bad_text_inputs(sentiment_model, tmp_path) -> None:
    m = ["sentiment", "--model", str(sentiment_model)]
    out = run_cli(*m, "good", "  ", "bad")
    assert out.returncode == 1 and len(out.stdout.splitlines()) == 2
    assert out.stderr.strip() == "error: text 2: empty text (no words); expected at least one word"
    out = run_cli(*m, "-", stdin="good\x00bad")  # argv cannot carry NUL bytes; stdin can
    assert out.returncode == 1 and "NUL byte" in out.stderr
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 10)
    out = run_cli(*m, "--file", str(tmp_path / "blob.bin"))
    assert out.returncode == 1 and out.stderr.strip().endswith("binary file; expected UTF-8 text, one text per line")
    out = run_cli("sentiment", "--model", "digits", "good")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: digits: a model that reads image; expected a model that reads words"
    assert "Traceback" not in out.stderr


@pytest.mark.stress
def test_cli_huge_text_on_stdin(sentiment_model) -> None:
    import subprocess
    import sys
    text = "the movie was great ! " * 500_000  # 11 MB, 2.5 million words, one text
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], input=sys.stdin.buffer.read(), "
            "capture_output=True); sys.stdout.buffer.write(r.stdout); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "edgeinfer", "sentiment", "--model",
                          str(sentiment_model), "--json", "-"], input=text, capture_output=True, text=True, timeout=300)
    assert json.loads(out.stdout)["words"] == 2_500_000
    peak_mb = int(out.stderr.strip().splitlines()[-1]) / 1024
    assert peak_mb < 150, peak_mb  # streamed in 64 kB chunks: the 11 MB text is never held whole


def test_cli_info_names_the_readout(sentiment_model) -> None:
    out = run_cli("info", str(sentiment_model))
    assert out.returncode == 0, out.stderr
    model_line = next(line for line in out.stdout.splitlines() if line.startswith("model "))
    readout = Model(sentiment_model).spec.readout
    branch = ("; a short-text branch (gru x1, hidden 6) answers texts of a few words, the main head from about 4 "
              "words on") if readout.short_hidden else ""
    if branch:
        assert "h_short->h_short_next (1, B, 6) float32=0" in out.stdout
    if readout.ngram_buckets:
        assert model_line.endswith("the head also reads the mean and max of the hidden states and mean weight "
                                   "of the hashed word 1-3-grams (101 buckets per order >= 2)" + branch)
        assert "prev->prev_next (2, B, 1) float32=0" in out.stdout
        assert "pool_max->pool_max_next (1, B, 12) float32=-1" in out.stdout
    else:
        assert model_line == "model         gru x2, hidden 12"
