"""What the benchmark scripts share: a study of a shipped system (the default
job's, or an example's) with changed settings, run with the local profile,
and its held-out errors."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from psiflow_pipeline.config import load

REPO = Path(__file__).resolve().parents[1]


def default_config(seed: int, path: str = "config/config.yaml") -> dict:
    """A shipped config (the default job's unless `path` names another) with
    another seed and without its validation run."""
    config = load(REPO / path)
    config["seed"] = seed
    config.setdefault("validation", {})["enabled"] = False
    return config


def run_study(workdir: Path, config: dict, target: str = "results/summary/metrics.csv") -> pd.DataFrame:
    """Run (or finish) the study in `workdir` up to `target`, a metrics.csv:
    its rows on the test set (the config's evaluation.test_set)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow/Snakefile"), "-d", str(workdir)]
    command += ["--profile", str(REPO / "profiles/local"), "--configfile", str(workdir / "config.yaml")]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([*command, "--cores", "2", target], check=True, env=env, capture_output=True)
    metrics = pd.read_csv(workdir / target)
    return metrics[metrics.subset == "test"]


def spread_figure(summary: pd.DataFrame, x: str, xlabel: str, path: Path, log: str = "y", title: str = "") -> None:
    """Per method, the mean held-out force RMSE against `x` with the range over
    seeds as error bars (columns method, `x`, mean, min, max); `log`: the log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for method, part in summary.groupby("method"):
        axis.errorbar(
            part[x], part["mean"], yerr=[part["mean"] - part["min"], part["max"] - part["mean"]],
            marker="o", capsize=3, label=method,
        )  # fmt: skip
    if "x" in log:
        axis.set_xscale("log")
    if "y" in log:
        axis.set_yscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("held-out force RMSE (eV/Å)")
    if title:
        axis.set_title(title, fontsize=9)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
