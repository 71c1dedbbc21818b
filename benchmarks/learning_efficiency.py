"""Learning efficiency: held-out force RMSE against the number of labels, for
committee, diverse, random and final-state selection at equal label budgets
and several seeds, on one of two systems (GFN1-xTB):

- water: the default job's 32-water box; held-out: its shipped test set (an
  independent NVT MD, resources/reference/). 16 walkers (300-450 K) of 100
  steps per iteration, a frame saved every 10 steps.
- alanine_dipeptide: config/examples/alanine_dipeptide.yaml, a molecule in
  vacuum whose walkers cross torsional barriers only under their
  metadynamics bias on phi and psi; held-out: its test set (independent
  metadynamics at the reference level, resources/reference/). 16 walkers
  at 300 K of 1000 steps per iteration (the example's), a frame saved every
  20 steps, the bias carried over between iterations.

Every run is the system's shipped config except: 3 iterations, those
walkers, no schedules, so that every method labels 16 frames per iteration
(final-state selection takes one frame per walker). The seed changes the
bootstrap, the walkers and the training. Besides the errors it prints the
calibration of the committee deviation on each iteration's fresh labels
and, for alanine dipeptide, the share of the test set's, the sampled and
the labeled frames in the conformer regions away from the start.

    .venv/bin/python benchmarks/learning_efficiency.py --system water --seeds 42 43 44 \
        [--methods committee diverse random final] [--propagate mean]

`--propagate` overrides what the walkers follow (walkers.propagate; the
shipped config's otherwise), e.g. to compare walkers that follow one member
with walkers that follow the committee's mean; its runs, table and figure
then go to names of their own (`learning_efficiency[_<system>]_<propagate>`).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from ase.io import read
from study import REPO, default_config, run_study, spread_figure

from psiflow_pipeline.config import load
from psiflow_pipeline.data import read_h5

METHODS = ("committee", "diverse", "random", "final")
ITERATIONS, LABELS_PER_ITERATION = 3, 16
# per system: its shipped config, and the walkers' steps and stride per iteration
SYSTEMS = {
    "water": ("config/config.yaml", 100, 10),
    "alanine_dipeptide": ("config/examples/alanine_dipeptide.yaml", 1000, 20),
}


# alanine dipeptide's conformer regions away from the extended start (phi and psi about 180):
# a backbone torsion as resources/plumed/metad_phi_psi.dat defines it (atoms counted from 0)
# and its range in degrees
REGIONS = {
    "alpha_R side, psi in (-120, 60)": ((6, 8, 14, 16), -120, 60),
    "C7ax/alpha_L, phi in (0, 120)": ((4, 6, 8, 14), 0, 120),
}


def region_shares(frames) -> list[float]:
    """Per region of REGIONS, the fraction of alanine dipeptide frames (ASE Atoms) in it."""
    shares = []
    for atoms_of_torsion, low, high in REGIONS.values():
        angle = (np.array([atoms.get_dihedral(*atoms_of_torsion) for atoms in frames]) + 180) % 360 - 180
        shares.append(float(np.mean((angle > low) & (angle < high))))
    return shares


def coverage(workdir: Path, seeds: list[int], methods: list[str]) -> None:
    """Where the frames lie: the share of the test set, and of each method's sampled
    and labeled frames (iterations 1-3, all seeds), in each region of REGIONS."""
    test_set = load(REPO / SYSTEMS["alanine_dipeptide"][0])["evaluation"]["test_set"]
    rows = {"test set": region_shares([atoms for path in test_set for atoms in read(REPO / path, index=":")])}
    for method in methods:
        for kind in ("candidates", "labeled"):
            parts = [
                read_h5(workdir / f"{method}_{seed}/results/iter_{i}/{kind}.h5")
                for seed in seeds
                for i in range(1, ITERATIONS + 1)
            ]
            rows[f"{method} {kind}"] = region_shares([part.to_atoms(k) for part in parts for k in range(len(part))])
    print("share of frames in each region:")
    print(pd.DataFrame(rows, index=list(REGIONS)).T.round(3).to_string())


def calibration(workdir: Path, seeds: list[int], methods: list[str]) -> None:
    """Per method and iteration, the committee deviation's calibration on the fresh
    labels (metrics.csv, subset new): rank correlation and scale, means over seeds."""
    rows = []
    for method in methods:
        for seed in seeds:
            metrics = pd.read_csv(workdir / f"{method}_{seed}/results/summary/metrics.csv")
            rows.append(metrics[metrics.subset == "new"].assign(method=method, seed=seed))
    table = pd.concat(rows).groupby(["method", "iteration"])
    columns = ["calibration_rank_correlation", "calibration_scale"]
    print("calibration on the fresh labels (means over seeds):")
    print(table[columns].mean().round(2).to_string())


def efficiency_config(system: str, method: str, seed: int, propagate: str | None = None) -> dict:
    path, steps, stride = SYSTEMS[system]
    config = default_config(seed, path)
    config["iterations"] = ITERATIONS
    group = config["walkers"][0]
    group.pop("schedule", None)
    group.update(count=LABELS_PER_ITERATION, steps=steps, stride=stride)
    if propagate:
        group["propagate"] = propagate
    config.get("model", {}).pop("schedule", None)
    config.setdefault("selection", {}).update(method=method, max_per_iteration=LABELS_PER_ITERATION)
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
    parser.add_argument("--system", choices=list(SYSTEMS), default="water")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--workdir", type=Path, help="default: benchmarks/learning_efficiency[_<system>]")
    parser.add_argument("--figure", type=Path, help="default: docs/learning_efficiency[_<system>].png")
    parser.add_argument("--propagate", choices=("member", "mean"), help="what the walkers follow (default: config)")
    args = parser.parse_args()
    suffix = ("" if args.system == "water" else f"_{args.system}") + (f"_{args.propagate}" if args.propagate else "")
    args.workdir = args.workdir or REPO / f"benchmarks/learning_efficiency{suffix}"
    args.figure = args.figure or REPO / f"docs/learning_efficiency{suffix}.png"
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            config = efficiency_config(args.system, method, seed, args.propagate)
            test = run_study(args.workdir / f"{method}_{seed}", config)
            rows.append(test[["iteration", "labels", "force_rmse"]].assign(method=method, seed=seed))
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(args.workdir / "learning_efficiency.csv", index=False)
    report(table, args.seeds, args.figure, args.system)
    calibration(args.workdir, args.seeds, args.methods)
    if args.system == "alanine_dipeptide":
        coverage(args.workdir, args.seeds, args.methods)


def report(table: pd.DataFrame, seeds: list[int], figure: Path, system: str) -> None:
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

    title = f"{system}: mean and range over {len(seeds)} seed(s)"
    spread_figure(summary, "labels", "labels in the dataset", figure, log="y", title=title)


if __name__ == "__main__":
    main()
