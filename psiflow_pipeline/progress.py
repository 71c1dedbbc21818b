"""The learning curve and metrics of the iterations finished so far, while a
run goes on (it reads only finished files and takes no Snakemake lock):

    psiflow-progress            # in the run's working directory
    psiflow-progress -d my_run

Writes results/progress/metrics.csv and learning_curve.png and prints the table.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path


def main(argv=None) -> None:
    from psiflow_pipeline import paths
    from psiflow_pipeline.report import collect_metrics, learning_curves

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--directory", type=Path, default=Path("."), help="the run's working directory")
    args = parser.parse_args(argv)
    root = args.directory
    finished = sorted(
        (Path(p) for p in glob.glob(str(root / paths.iteration_file("metrics.csv", "*")))),
        key=lambda p: int(p.parent.name.removeprefix("iter_")),
    )
    if not finished:
        parser.exit(1, f"no finished iteration under {root / paths.RESULTS}\n")
    datasets = [p.with_name("dataset.h5") for p in finished]
    metrics, labels = collect_metrics(finished, datasets)
    out = root / paths.PROGRESS
    out.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out / "metrics.csv", index=False)
    learning_curves(metrics, labels, out / "learning_curve.png")
    columns = ["iteration", "model_iteration", "subset", "labels", "frames", "force_rmse", "energy_rmse_per_atom"]
    print(metrics[columns].to_string(index=False))
    print(f"{len(finished)} iterations finished; written to {out}/")


if __name__ == "__main__":
    main()
