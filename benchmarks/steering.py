"""What each change of a steered study recomputes: the changes of issue #12's
table applied, one at a time, to a finished run of the default job, and the
jobs Snakemake plans for each (its own --summary plan, the local profile).

    make run && .venv/bin/python benchmarks/steering.py          # on results/ of the default job
    .venv/bin/python benchmarks/steering.py --run my_run          # on another finished run
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from psiflow_pipeline import plan
from psiflow_pipeline.config import validate

REPO = Path(__file__).resolve().parents[1]


def changes(config: dict) -> dict:
    """change -> the config it makes, from a finished run's config."""
    last = validate(yaml.safe_load(yaml.safe_dump(config)), "config")["iterations"]

    def edited(edit):
        copy = yaml.safe_load(yaml.safe_dump(config))
        edit(copy)
        return copy

    def walker(c, **entry):  # added to the group's schedule, which the default job has
        c["walkers"][0].setdefault("schedule", []).append(entry)

    return {
        "unchanged": edited(lambda c: None),
        f"iterations: {last + 1}": edited(lambda c: c.update(iterations=last + 1)),
        f"iterations: {last + 1} and a walker schedule from {last + 1}": edited(
            lambda c: (c.update(iterations=last + 1), walker(c, from_iteration=last + 1, temperature=[400, 500]))
        ),
        "temperatures written as floats": edited(
            lambda c: c["walkers"][0].update(temperature=[float(t) for t in c["walkers"][0]["temperature"]])
        ),
        "execution.label.walltime_s: 7200": edited(
            lambda c: c.setdefault("execution", {}).setdefault("label", {}).update(walltime_s=7200)
        ),
        "execution.label.omp_threads: 2": edited(
            lambda c: c.setdefault("execution", {}).setdefault("label", {}).update(omp_threads=2)
        ),
        "model.compile: true": edited(lambda c: c.setdefault("model", {}).update(compile=True)),
        "keys in another order": dict(reversed(list(config.items()))),
        f"walker schedule from {last}": edited(lambda c: walker(c, from_iteration=last, temperature=450)),
        f"selection schedule from {last}": edited(
            lambda c: c.setdefault("selection", {}).update(schedule=[{"from_iteration": last, "trust_lo": 0.1}])
        ),
        f"training schedule from {last}": edited(
            lambda c: (
                c.setdefault("model", {}).setdefault("schedule", []).append({"from_iteration": last, "max_epochs": 40})
            )
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=REPO, help="working directory of a finished run")
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml", help="the config it ran with")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    print(f"{'change':60s} {'jobs':>5s}  planned")
    with tempfile.TemporaryDirectory() as scratch:
        for change, edited in changes(config).items():
            path = Path(scratch) / "config.yaml"
            path.write_text(yaml.safe_dump(edited, sort_keys=False))
            command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow/Snakefile"), "-d", str(args.run)]
            command += ["--profile", str(REPO / "profiles/local"), "--configfile", str(path), "--summary"]
            summary = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            jobs = sorted(plan.planned_jobs(summary))
            print(f"{change:60s} {len(jobs):5d}  {', '.join(jobs) or 'nothing'}")


if __name__ == "__main__":
    main()
