"""Write samples/basicmotions-{train,test}.csv from the BasicMotions archive the `aeon` wheel ships.

    pip download --no-deps aeon==1.6.0 -d /tmp/aeon && unzip -o -q /tmp/aeon/aeon-1.6.0-py3-none-any.whl \
        'aeon/datasets/data/BasicMotions/*.ts' -d /tmp/aeon
    .venv/bin/python -m train.basicmotions_samples /tmp/aeon/aeon/datasets/data/BasicMotions

BasicMotions (the UEA multivariate archive; aeon is BSD licensed): four students wore a smart
watch while standing, walking, running and playing badminton, five recordings each, 10 s at 10 Hz
of a 3-D accelerometer and a 3-D gyroscope: 40 training and 40 test sequences of 100 steps. The
CSVs hold one row per step (recording, step, activity, six channels): the form a user's own
recordings take, read by `edgeinfer-train sequences` and, one recording at a time, `edgeinfer run`.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from edgeinfer_train.data import read_ts

CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
OUT = Path(__file__).resolve().parents[1] / "samples"
RECORDING = "test-20"  # a held-out walking recording


def write(ts: Path, out: Path, prefix: str) -> int:
    seqs = read_ts(ts)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recording", "step", "activity", *CHANNELS])
        for i, (x, k) in enumerate(zip(seqs.x, seqs.y, strict=True)):
            for t, row in enumerate(x):
                w.writerow([f"{prefix}{i:02d}", t, seqs.labels[k].lower(), *(f"{v:.6g}" for v in row)])
    return len(seqs)


def write_recording(csv_path: Path, recording: str, out: Path) -> None:
    """One recording's channels, one step per line under a header: what `edgeinfer run` reads."""
    rows = [r for r in csv.DictReader(csv_path.open()) if r["recording"] == recording]
    with out.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CHANNELS)
        for r in rows:
            w.writerow([r[c] for c in CHANNELS])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[0])
    for split in ("train", "test"):
        n = write(folder / f"BasicMotions_{split.upper()}.ts", OUT / f"basicmotions-{split}.csv", f"{split}-")
        print(f"wrote {OUT / f'basicmotions-{split}.csv'} ({n} recordings)")
    write_recording(OUT / "basicmotions-test.csv", RECORDING, OUT / "basicmotions-walking.csv")
    print(f"wrote {OUT / 'basicmotions-walking.csv'} (test recording {RECORDING})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
