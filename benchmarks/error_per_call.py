"""Error per reference call: force RMSE on the shipped test set (an
independent GFN1-xTB MD of the 32-water box) against the number of CP2K
single points, for three ways to spend them on the default system:

  (a) loop     - the online-learning loop: the default job;
  (b) rattled  - rattled and strained copies of the initial structure only
                 (the bootstrap, as many labels as the loop reaches);
  (c) aimd     - frames of a reference-level NVT MD at 350 K, where every MD
                 step is a reference call (the route online learning avoids).

Same model (the default job's architecture); (b) and (c) train from scratch
for as many epochs as the loop spends over all its iterations. Every method
runs with several seeds; the table and figure show the mean and the spread.

    .venv/bin/python benchmarks/error_per_call.py --seeds 42 43 [--workdir benchmarks/error_per_call]

Seed 42 is the default job's: a finished default job with it in
<workdir>/loop_42 is reused (snakemake finds nothing to do). The trainings
from scratch, the longest, run through torch.compile as the default job's
last ones do, and all studies share one compile cache, so that only the
first compiling training pays for compiling; neither changes what a member
learns.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from study import REPO, default_config, run_study, spread_figure

from psiflow_pipeline.config import validate
from psiflow_pipeline.settings import at_iteration

RATTLED_SIZES = (20, 80)  # labels of (b): about the loop's first and last
AIMD_FRAMES = (8, 32)  # frames of (c), one every AIMD_EVERY MD steps
AIMD_EVERY = 10  # 5 fs: a tenth of the calls become training frames


def loop(workdir: Path, seed: int) -> list[dict]:
    test = run_study(workdir / f"loop_{seed}", default_config(seed))
    return [
        {"method": "loop", "seed": seed, "calls": int(r.labels), "force_rmse": r.force_rmse} for r in test.itertuples()
    ]


def from_scratch(config: dict, budget_epochs: int) -> dict:
    """Only iteration 0, trained from scratch for the loop's whole budget of epochs."""
    config["iterations"] = 0
    config.setdefault("model", {})["max_epochs"] = budget_epochs
    config.setdefault("execution", {}).setdefault("train", {})["compile_from_iteration"] = 0
    return config


def rattled(workdir: Path, seed: int, budget_epochs: int) -> list[dict]:
    rows = []
    for size in RATTLED_SIZES:
        config = from_scratch(default_config(seed), budget_epochs)
        config.setdefault("bootstrap", {})["n_rattled"] = size
        test = run_study(workdir / f"rattled_{seed}_{size}", config, "results/iter_0/metrics.csv")
        rows.append({"method": "rattled", "seed": seed, "calls": size, "force_rmse": float(test.force_rmse.iloc[0])})
    return rows


def aimd(workdir: Path, seed: int, budget_epochs: int) -> list[dict]:
    """A reference NVT MD from the initial structure; its first k frames train a model."""
    trajectory = workdir / f"aimd_{seed}.xyz"
    if not trajectory.exists():
        subprocess.run(
            [sys.executable, str(REPO / "resources/reference/reference_md.py"),
             "--structure", str(REPO / "resources/structures/water_32.xyz"), "--ensemble", "nvt",
             "--temperature", "350", "--equilibrate", str(AIMD_EVERY), "--every", str(AIMD_EVERY),
             "--frames", str(max(AIMD_FRAMES)), "--threads", "2", "--seed", str(1000 + seed), "--out", str(trajectory)],
            check=True, capture_output=True,
        )  # fmt: skip
    from psiflow_pipeline.data import read_extxyz, write_extxyz

    frames = read_extxyz(trajectory)
    rows = []
    for size in AIMD_FRAMES:
        subset = workdir / f"aimd_{seed}_{size}.xyz"
        write_extxyz(frames.take(np.arange(size)), subset)
        config = from_scratch(default_config(seed), budget_epochs)
        config.setdefault("bootstrap", {})["initial_data"] = str(subset)
        test = run_study(workdir / f"aimd_{seed}_{size}", config, "results/iter_0/metrics.csv")
        calls = size * AIMD_EVERY  # every MD step was a single point
        rows.append({"method": "aimd", "seed": seed, "calls": calls, "force_rmse": float(test.force_rmse.iloc[0])})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks/error_per_call")
    parser.add_argument("--figure", type=Path, default=REPO / "docs/error_per_call.png")
    args = parser.parse_args()
    defaults = validate(default_config(0), "config/config.yaml")
    budget = sum(at_iteration(defaults["model"], i)["max_epochs"] for i in range(defaults["iterations"] + 1))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str((args.workdir / "compile_cache").resolve()))
    rows = []
    for seed in args.seeds:
        rows += loop(args.workdir, seed) + rattled(args.workdir, seed, budget) + aimd(args.workdir, seed, budget)
    table = pd.DataFrame(rows)
    args.workdir.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.workdir / "error_per_call.csv", index=False)
    summary = table.groupby(["method", "calls"]).force_rmse.agg(["mean", "min", "max", "count"]).reset_index()
    print(f"training budget of (b) and (c): {budget} epochs from scratch")
    print(summary.to_string(index=False))

    spread_figure(summary, "calls", "reference (CP2K) single points", args.figure, log="x")


if __name__ == "__main__":
    main()
