"""`edgeinfer-train sequences` on the UEA archives the `aeon` wheel ships, beside aeon's own
classifiers on the same split, all measured in one run.

    .venv/bin/python benchmarks/archives.py --aeon-python /path/to/aeon-venv/bin/python \
        [--sets BasicMotions JapaneseVowels] [--seeds 0 1 2] [--out DIR]

The aeon venv: `python3 -m venv V && V/bin/pip install aeon==1.6.0` (aeon needs numpy < 2.4, which
the project's venv does not have). For each set and seed this script runs the command a user types,

    edgeinfer-train sequences NAME_TRAIN.ts --test NAME_TEST.ts --out DIR/NAME-SEED.onnx --seed SEED

reads its summary.json (the written file's test accuracy, read step by step, after each share of
every sequence), measures early exit on the file (`Model.early_exit` at 0.95 and 0.99: accuracy and
the share of steps read), and runs MiniRocket and 1-NN DTW from aeon on the same split. It prints
a markdown table (docs/models.md holds the last run's).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import edgeinfer
from edgeinfer_train.data import read_ts

THRESHOLDS = (0.95, 0.99)


def archive(aeon_python: str, name: str) -> tuple[Path, Path]:
    """The train and test .ts files of `name` inside the installed aeon package."""
    root = subprocess.run([aeon_python, "-c", "import aeon, os; print(os.path.dirname(aeon.__file__))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(root) / "datasets" / "data" / name
    return folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"


def ours(train: Path, test: Path, out: Path, seed: int) -> dict[str, object]:
    """Train as a user would; the summary and early exit of the written file."""
    cmd = [sys.executable, "-m", "edgeinfer_train", "sequences", str(train), "--test", str(test),
           "--out", str(out), "--seed", str(seed), "--quiet", "--restart"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    summary: dict[str, object] = json.loads((out.parent / f"{out.name}.train" / "summary.json").read_text())
    model, data = edgeinfer.load(out), read_ts(test)
    truth = np.array([model.spec.labels.index(data.labels[k]) for k in data.y])
    for p in THRESHOLDS:
        results = [model.early_exit(x, p) for x in data.x]
        got = np.array([int(r.label_ids[0]) for r in results])
        read = np.array([r.steps[0] / r.total_steps for r in results])
        summary[f"exit {p:g}"] = (float((got == truth).mean()), float(read.mean()))
    summary["bytes"] = out.stat().st_size
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--aeon-python", required=True, help="a Python with aeon==1.6.0 installed")
    p.add_argument("--sets", nargs="+", default=["BasicMotions", "JapaneseVowels"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", type=Path, help="keep the trained files here (default: a temporary folder)")
    a = p.parse_args()
    folder = a.out or Path(tempfile.mkdtemp(prefix="archives-"))
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["| set | classifier | seed | test accuracy | after 25% / 50% / 75% read | early exit 0.95 "
             "(accuracy, read) | early exit 0.99 | file |", "|---|---|---|---|---|---|---|---|"]
    for name in a.sets:
        train, test = archive(a.aeon_python, name)
        accuracies = []
        for seed in a.seeds:
            print(f"{name} seed {seed} ...", file=sys.stderr, flush=True)
            s = ours(train, test, folder / f"{name}-{seed}.onnx", seed)
            frac = s["by_fraction"]
            assert isinstance(frac, dict)
            accuracies.append(float(s["test_accuracy"]))  # type: ignore[arg-type]
            exits = [s[f"exit {t:g}"] for t in THRESHOLDS]
            lines.append(f"| {name} | edgeinfer-train ({s['precision']}) | {seed} | {s['test_accuracy']:.1%} | "
                         + " / ".join(f"{frac[k]:.1%}" for k in ("0.25", "0.5", "0.75")) + " | "
                         + " | ".join(f"{acc:.1%}, {read:.0%}" for acc, read in exits)  # type: ignore[misc]
                         + f" | {s['bytes']:,} bytes |")
        lines.append(f"| {name} | edgeinfer-train, mean of {len(a.seeds)} | | {statistics.mean(accuracies):.1%} "
                     f"| | | | |")
        for seed in a.seeds[:1]:
            print(f"{name} aeon ...", file=sys.stderr, flush=True)
            base = json.loads(subprocess.run([a.aeon_python, str(Path(__file__).with_name("aeon_baselines.py")),
                                              name, "--seed", str(seed)], capture_output=True, text=True,
                                             check=True).stdout)
            for clf, r in base.items():
                lines.append(f"| {name} | aeon {clf} | {seed} | {r['accuracy']:.1%} | (whole sequence) | | | |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
