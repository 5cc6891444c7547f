"""aeon's MiniRocket and 1-NN DTW on a UEA/UCR archive's own train/test split; prints JSON.

    python benchmarks/aeon_baselines.py NAME [--seed S]

Run by benchmarks/archives.py with a Python that has `aeon==1.6.0` (it needs numpy < 2.4, so it
lives in a venv of its own). Unequal-length sets (JapaneseVowels) are padded to the longest
sequence of either split with each sequence's last value for MiniRocket, as aeon's own benchmarks do; DTW reads
them as they are.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    from aeon.datasets import load_classification

    x_train, y_train = load_classification(a.name, split="train")
    x_test, y_test = load_classification(a.name, split="test")

    longest = max(s.shape[-1] for part in (x_train, x_test) for s in part)

    def padded(x: object) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        return np.stack([np.pad(s, ((0, 0), (0, longest - s.shape[1])), mode="edge") for s in x])  # type: ignore[attr-defined]

    out = {}
    for name, clf, fixed in (("MiniRocket", MiniRocketClassifier(random_state=a.seed), True),
                             ("1-NN DTW", KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1), False)):
        t0 = time.perf_counter()
        clf.fit(padded(x_train) if fixed else x_train, y_train)
        got = clf.predict(padded(x_test) if fixed else x_test)
        out[name] = {"accuracy": float(np.mean(got == y_test)), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
