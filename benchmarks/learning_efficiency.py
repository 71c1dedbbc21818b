"""Learning efficiency: force RMSE on the shipped test set (an independent
GFN1-xTB MD of the 32-water box, resources/reference/) against the number of
labels, for committee, diverse, random and final-state selection at equal
label budgets and several seeds, on the default system (32 water molecules,
GFN1-xTB).

Every run is the default config except: 3 iterations, 16 walkers (300-450 K)
of 100 steps per iteration, a frame saved every 10 steps, no schedules, so
that every method labels 16 frames per iteration (final-state selection
takes one frame per walker). The seed changes the bootstrap, the walkers and
the training.

    .venv/bin/python benchmarks/learning_efficiency.py --seeds 42 43 44 [--methods committee diverse random final]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from study import REPO, default_config, run_study, spread_figure

METHODS = ("committee", "diverse", "random", "final")
WALKERS, STEPS, STRIDE, ITERATIONS = 16, 100, 10, 3


def efficiency_config(method: str, seed: int) -> dict:
    config = default_config(seed)
    config["iterations"] = ITERATIONS
    group = config["walkers"][0]
    group.pop("schedule", None)
    group.update(count=WALKERS, steps=STEPS, stride=STRIDE)
    config.get("model", {}).pop("schedule", None)
    config.setdefault("selection", {}).update(method=method, max_per_iteration=WALKERS)
    return config


def labels_to_reach(part: pd.DataFrame, target: float) -> float:
    """The labels at which a method's mean error first reaches `target`
    (linear between iterations in log error); NaN if it never does."""
    labels, error = part["labels"].to_numpy(), part["mean"].to_numpy()
    for k in range(len(error)):
        if error[k] <= target:
            if k == 0:
                return float(labels[0])
            fraction = np.log(error[k - 1] / target) / np.log(error[k - 1] / error[k])
            return float(labels[k - 1] + fraction * (labels[k] - labels[k - 1]))
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks/learning_efficiency")
    parser.add_argument("--figure", type=Path, default=REPO / "docs/learning_efficiency.png")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            test = run_study(args.workdir / f"{method}_{seed}", efficiency_config(method, seed))
            rows.append(test[["iteration", "labels", "force_rmse"]].assign(method=method, seed=seed))
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(args.workdir / "learning_efficiency.csv", index=False)
    report(table, args.seeds, args.figure)


def report(table: pd.DataFrame, seeds: list[int], figure: Path) -> None:
    """Per method and iteration, the held-out error over seeds against the mean
    labels (final-state selection labels one frame fewer after a reset)."""
    grouped = table.groupby(["method", "iteration"])
    summary = grouped.force_rmse.agg(["mean", "std", "min", "max", "count"])
    summary = summary.assign(labels=grouped.labels.mean()).reset_index()
    print("held-out force RMSE (eV/Å) over seeds", seeds)
    print(summary[["method", "labels", "mean", "std", "min", "max", "count"]].round(4).to_string(index=False))
    if "random" in set(summary.method):
        target = summary[summary.method == "random"]["mean"].iloc[-1]
        print(f"labels to reach random selection's final mean error ({target:.4f} eV/Å):")
        for method, part in summary.groupby("method"):
            print(f"  {method}: {labels_to_reach(part, target):.1f}")

    title = f"mean and range over {len(seeds)} seed(s)"
    spread_figure(summary, "labels", "labels in the dataset", figure, log="y", title=title)


if __name__ == "__main__":
    main()
