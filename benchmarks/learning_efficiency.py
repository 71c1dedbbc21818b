"""Learning efficiency: force RMSE on the shipped test set (an independent
GFN1-xTB MD of the 32-water box, resources/reference/) against the number of
labels, for committee, random and final-state selection at equal label
budgets, on the default system (32 water molecules, GFN1-xTB).

Each selection method runs the pipeline with the default config except: 16
walkers of 100 steps per iteration, so that every method labels 16 frames
per iteration (final-state selection takes one frame per walker).

    .venv/bin/python benchmarks/learning_efficiency.py [--workdir benchmarks/learning_efficiency]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from psiflow_pipeline.config import load

REPO = Path(__file__).resolve().parents[1]

METHODS = ("committee", "random", "final")


def run_pipeline(workdir: Path, method: str) -> pd.DataFrame:
    config = load(REPO / "config/config.yaml")
    config["system"]["structures"] = [str(REPO / s) for s in config["system"]["structures"]]
    config["walkers"][0].update(count=16, steps=100, stride=10)
    config.setdefault("selection", {})["method"] = method
    config.setdefault("model", {})["compile"] = False
    config.setdefault("validation", {})["enabled"] = False
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow/Snakefile"), "-d", str(workdir),
         "--profile", str(REPO / "profiles/local"), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
         "results/summary/metrics.csv"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    metrics = pd.read_csv(workdir / "results/summary/metrics.csv")
    test = metrics[metrics.subset == "test"][["iteration", "labels", "force_rmse", "energy_rmse_per_atom"]]
    return test.assign(method=method)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(REPO / "benchmarks/learning_efficiency"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    table = pd.concat([run_pipeline(workdir / method, method) for method in METHODS], ignore_index=True)
    table.to_csv(workdir / "learning_efficiency.csv", index=False)
    wide = table.pivot(index="iteration", columns="method", values=["labels", "force_rmse"])
    print("held-out set: the default config's evaluation.test_set")
    print(wide.round(4).to_string())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.6))
    for method in METHODS:
        part = table[table.method == method]
        axis.plot(part.labels, part.force_rmse, marker="o", label=method)
    axis.set_xlabel("labels in the dataset")
    axis.set_ylabel("held-out force RMSE (eV/Å)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(workdir / "learning_efficiency.png", dpi=120)


if __name__ == "__main__":
    main()
