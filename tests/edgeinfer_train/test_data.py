"""The readers of edgeinfer_train.data (CSV/TSV, folders, .npz, .ts) and the checks before training:
what they read, and a one-line DataError naming FILE:LINE for each kind of bad data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer_train.data import DataError, read
from edgeinfer_train.prepare import check, combine, normalisation, split

CSV = """recording,time,label,ax,ay
a,0,walk,1.0,2.0
a,1,walk,1.5,2.5
b,0,run,0.0,1.0
a,2,walk,2.0,3.0
b,1,run,0.5,1.5
"""

TS = """# a tiny UEA/UCR file
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3:4,5,6:up
3,2:1,0:down
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_rows_grouped_by_sequence_in_order(tmp_path: Path) -> None:
    seqs = read(write(tmp_path, "d.csv", CSV))
    assert seqs.labels == ("run", "walk") and seqs.features == ("ax", "ay")  # the time column is left out
    assert [s.tolist() for s in seqs.x] == [[[1.0, 2.0], [1.5, 2.5], [2.0, 3.0]], [[0.0, 1.0], [0.5, 1.5]]]
    assert seqs.y.tolist() == [1, 0] and seqs.where[1].endswith("d.csv:4")
    tsv = read(write(tmp_path, "d.tsv", CSV.replace(",", "\t")))
    assert [s.tolist() for s in tsv.x] == [s.tolist() for s in seqs.x]


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    (CSV.replace("a,2,walk,2.0", "a,2,walk,"), {}, r"d\.csv:5 \(ax\): missing value; fill it in, or pass --fill"),
    (CSV.replace("b,1,run,0.5", "b,1,run,nan"), {}, r"d\.csv:6 \(ax\): 'nan' is not a finite number|missing value"),
    (CSV.replace("b,1,run,0.5", "b,1,run,x"), {}, r"d\.csv:6 \(ax\): 'x' is not a number"),
    (CSV.replace("b,1,run,0.5", "b,1,walk,0.5"), {}, r"d\.csv:6: sequence 'b' is labelled 'walk' here and 'run'"),
    (CSV.replace("recording", "name"), {}, r"no column looks like the sequence id .* --id-column"),
    (CSV.replace("recording,time,label", "id,time,label,class"), {}, r"'label', 'class' could each be the label"),
    (CSV, {"label_column": "kind"}, r"no column 'kind' for the label"),
    ("recording,label,ax\n", {}, r"a header and no rows"),
    ("", {}, r"empty file"),
    (CSV.replace("b,1,run,0.5,1.5", "b,1,run,0.5"), {}, r"d\.csv:6: 4 fields; the header has 5"),
])
def test_csv_errors_name_the_line(tmp_path: Path, text: str, kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        read(write(tmp_path, "d.csv", text), **kwargs)
    assert "\n" not in str(info.value)


def test_missing_values_filled_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", CSV.replace("a,2,walk,2.0", "a,2,walk,"))
    prev = read(path, fill="previous")
    zero = read(path, fill="zero")
    assert prev.x[0][2].tolist() == [1.5, 3.0] and zero.x[0][2].tolist() == [0.0, 3.0]


def test_folder_per_label_npz_and_ts(tmp_path: Path) -> None:
    for label, rows in (("left", "1 2\n3 4\n"), ("right", "x,y\n5,6\n7,8\n9,10\n")):
        (tmp_path / "f" / label).mkdir(parents=True)
        (tmp_path / "f" / label / "s1.csv").write_text(rows)
    np.save(tmp_path / "f" / "left" / "s2.npy", np.ones((4, 2), np.float32))
    folder = read(tmp_path / "f")
    assert folder.labels == ("left", "right") and folder.y.tolist() == [0, 0, 1] and folder.features == ("x", "y")
    assert [len(s) for s in folder.x] == [2, 4, 3]
    np.savez(tmp_path / "d.npz", X=np.arange(24, dtype=np.float32).reshape(3, 4, 2), lengths=[4, 2, 3],
             y=np.array(["b", "a", "b"]))
    z = read(tmp_path / "d.npz")
    assert z.labels == ("a", "b") and z.y.tolist() == [1, 0, 1] and [len(s) for s in z.x] == [4, 2, 3]
    np.savez(tmp_path / "e.npz", x_0=np.zeros((3, 2)), x_1=np.ones((5, 2)), y=[0, 1], labels=["no", "yes"])
    e = read(tmp_path / "e.npz")
    assert e.labels == ("no", "yes") and [len(s) for s in e.x] == [3, 5]
    ts = read(write(tmp_path, "t.ts", TS))
    assert ts.labels == ("up", "down") and ts.y.tolist() == [0, 1]
    assert ts.x[0].tolist() == [[1, 4], [2, 5], [3, 6]] and ts.x[1].shape == (2, 2)


@pytest.mark.parametrize(("text", "message"), [
    (TS.replace("@classLabel true up down", "@classLabel false"), r"t\.ts:8: '@classLabel false'"),
    (TS.replace("3,2:1,0:down", "3,2:1,0:left"), r"t\.ts:11: label 'left' is not among @classLabel's"),
    (TS.replace("3,2:1,0:down", "3,2:1:down"), r"t\.ts:11: dimensions of \[1, 2\] steps"),
    (TS.replace("3,2:1,0:down", "3,?:1,0:down"), r"t\.ts:11: missing value"),
    (TS.replace("@data\n", ""), r"no @data line"),
])
def test_ts_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read(write(tmp_path, "t.ts", text))


def test_checks_before_training(tmp_path: Path) -> None:
    good = read(write(tmp_path, "d.csv", CSV))
    check(good)
    one_class = read(write(tmp_path, "o.csv", "id,label,v\na,x,1\na,x,2\nb,x,3\nb,x,4\n"))
    with pytest.raises(DataError, match="the training data holds one class \\('x'\\)"):
        check(one_class)
    short = read(write(tmp_path, "s.csv", "id,label,v\na,x,1\na,x,2\nb,y,3\n"))
    with pytest.raises(DataError, match=r"s\.csv:4: a sequence of 1 step"):
        check(short)
    test = read(write(tmp_path, "t.csv", "id,label,ax,ay\nz,jump,1,2\nz,jump,3,4\n"))
    with pytest.raises(DataError, match="label 'jump' appears only in the test data"):
        check(good, test)
    wide = read(write(tmp_path, "w.csv", "id,label,a,b,c\nz,walk,1,2,3\nz,walk,3,4,5\n"))
    with pytest.raises(DataError, match="test data has 3 features per step; training has 2"):
        check(good, wide)
    with pytest.raises(DataError, match="the inputs have \\[2, 3\\] features per step"):
        combine([good, wide])


def test_split_holds_out_each_class_and_normalisation() -> None:
    from edgeinfer_train.data import Sequences

    x = [np.full((3, 2), i, np.float32) for i in range(20)]
    data = Sequences(x, np.array([i % 2 for i in range(20)]), ("a", "b"), (), [str(i) for i in range(20)])
    train, val = split(data, 0.2, seed=0)
    assert len(train) == 16 and len(val) == 4 and sorted(val.y.tolist()) == [0, 0, 1, 1]
    assert split(data, 0.2, seed=0)[1].where == val.where  # the seed decides
    mean, std = normalisation(train)
    steps = np.concatenate(train.x)
    assert np.allclose(mean, steps.mean(0)) and np.allclose(std, steps.std(0))
