"""The real sentence sets the sentiment model is chosen by: the reader of the human-rated sentences
(tests.datasets.rated_sentences) and the split of the written sets in benchmarks/short_texts.py."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from benchmarks import short_texts
from tests import datasets


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def fake_sdist() -> bytes:
    """An sdist laid out as vaderSentiment 3.3.2's, with three rated lines in each set."""
    lines = b"1\t2.5\tA wonderful film.\n2\t-0.4\tIt opens in May.\n3\t-1.2\tThe plot drags.\n"
    inner = tar_gz({f"hutto_ICWSM_2014/{f}": lines for f in datasets.RATED_SETS.values()})
    return tar_gz({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner})


def test_rated_sentences_keep_the_clear_ones_labelled_by_sign() -> None:
    got = datasets.rated_from_sdist(fake_sdist())
    assert set(got) == set(datasets.RATED_SETS)
    texts, labels = got["movie snippets"]
    assert texts == ["A wonderful film.", "The plot drags."] and labels.tolist() == [1, 0]  # |-0.4| < 1: left out
    texts, labels = datasets.rated_from_sdist(fake_sdist(), min_rating=0.3)["tweets"]
    assert labels.tolist() == [1, 0, 0]


def test_rated_sentences_need_the_very_sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / datasets.VADER_SDIST
    other.write_bytes(fake_sdist())
    with pytest.raises(ValueError, match=r"not the vaderSentiment 3\.3\.2 sdist"):
        datasets.rated_sentences(other)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(datasets.VADER_SDIST_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"pip download --no-deps --no-binary :all: vaderSentiment==3\.3\.2"):
        datasets.rated_sentences()
    monkeypatch.setenv(datasets.VADER_SDIST_ENV, str(other))
    assert datasets.vader_sdist() == other


def test_the_benchmark_reports_the_written_sets_apart_from_the_generator() -> None:
    near = short_texts.near_composed(short_texts.DEV_PAIRS)
    assert 0 < len(near) < 40  # some dev pairs are in the generator's register, some apart
    assert near == {r["line"] for r in short_texts.read_jsonl(short_texts.REGISTER)
                    if r["set"] == "negation_pairs_dev.jsonl"}
