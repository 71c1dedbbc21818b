"""Learning efficiency: force RMSE on an independent held-out set against the
number of labels, for committee, random and final-state selection at equal
label budgets, on the default system (32 water molecules, GFN1-xTB).

The held-out set comes from a short Langevin MD at the reference level (CP2K
GFN1-xTB through a persistent CP2K shell), independent of any model. Each
selection method then runs the pipeline with the default config except: 16
walkers of 100 steps per iteration, so that every method labels 16 frames per
iteration (final-state selection takes one frame per walker), and the held-out
set as `evaluation.test_set`.

    .venv/bin/python benchmarks/learning_efficiency.py [--workdir benchmarks/learning_efficiency]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from psiflow_pipeline.config import load
from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.shell import persistent_single_point
from psiflow_pipeline.cp2k.template import check_template
from psiflow_pipeline.data import Frames, write_extxyz

REPO = Path(__file__).resolve().parents[1]

METHODS = ("committee", "random", "final")


class Cp2kShellCalculator(Calculator):
    """The reference level as an ASE calculator (one persistent CP2K shell)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, template, command):
        super().__init__()
        self.template, self.command = template, command

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        result = persistent_single_point(self.atoms, self.template, self.command)
        if result.status != "ok":
            raise RuntimeError(f"reference MD: {result.reason}")
        self.results = {"energy": result.energy, "forces": result.forces}


def held_out_set(path: Path, steps=240, every=12, skip=60) -> None:
    """Frames of a reference-level Langevin MD at 350 K, after `skip` steps."""
    atoms = read(REPO / "resources/structures/water_32.xyz")
    atoms.calc = Cp2kShellCalculator(check_template(REPO / "resources/cp2k/xtb.inp"), Cp2kCommand(omp_threads=2))
    thermalize_momenta(atoms, 350, rng=np.random.default_rng(2024))
    dynamics = Langevin(atoms, 0.5 * units.fs, temperature_K=350, friction=0.01 / units.fs, fixcm=False,
                        rng=np.random.default_rng(2025))  # fmt: skip
    frames = []
    for step in range(every, steps + 1, every):
        dynamics.run(every)
        if step > skip:  # the results of the last step, no new single point
            copy = atoms.copy()
            copy.calc = SinglePointCalculator(copy, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
            frames.append(copy)
    held_out = Frames.from_atoms(frames, status="ok")
    held_out.frame["identifier"][:] = [f"heldout-{k}" for k in range(len(frames))]
    write_extxyz(held_out, path)


def run_pipeline(workdir: Path, method: str, test_set: Path) -> pd.DataFrame:
    config = load(REPO / "config/config.yaml")
    config["system"]["structures"] = [str(REPO / s) for s in config["system"]["structures"]]
    config["walkers"][0].update(count=16, steps=100, stride=10)
    config.setdefault("selection", {})["method"] = method
    config.setdefault("model", {})["compile"] = False
    config["evaluation"] = {"test_set": str(test_set)}
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
    held_out = workdir / "held_out.xyz"
    if not held_out.exists():
        held_out_set(held_out)
    table = pd.concat([run_pipeline(workdir / method, method, held_out) for method in METHODS], ignore_index=True)
    table.to_csv(workdir / "learning_efficiency.csv", index=False)
    wide = table.pivot(index="iteration", columns="method", values=["labels", "force_rmse"])
    print(f"held-out set: {held_out} (reference-level MD at 350 K)")
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
