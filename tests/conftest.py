"""Shared test helpers: the repository root, the tiny config, running Snakemake."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from psiflow_pipeline.config import validate
from psiflow_pipeline.models.training import train_on_dataset

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
WATER_8 = REPO / "resources" / "structures" / "water_8.xyz"
XTB = REPO / "resources" / "cp2k" / "xtb.inp"
XTB_VACUUM = REPO / "resources" / "cp2k" / "xtb_vacuum.inp"  # molecules in vacuum


def tiny_config(**overrides) -> dict:
    """The tests' tiny pipeline config with absolute paths, updated by `overrides`."""
    config = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    config["system"]["structures"] = [str(REPO / p) for p in config["system"]["structures"]]
    config["reference"]["input"] = str(REPO / config["reference"]["input"])
    for key, value in overrides.items():
        config[key] = value
    return config


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# A persistent CP2K shell starts each SCF from the previous frame's wavefunction,
# a direct run from scratch: they agree to the SCF tolerance (EPS_SCF 1e-6 in the
# xTB template; measured up to 1.4e-4 eV/Å in forces, 5e-8 eV in energy and
# 4e-7 eV/Å³ in stress on 96-atom water), exactly only for a shell's first frame.
SCF_FORCE_TOLERANCE, SCF_ENERGY_TOLERANCE, SCF_STRESS_TOLERANCE = 3e-4, 1e-6, 2e-6


def direct_cp2k(atoms, workdir: Path, stress: bool = False, template: Path = XTB):
    """A plain cp2k.psmp run of `atoms` with a CP2K template (the xTB one unless
    told), outside psiflow's runners: the parsed result and the output text."""
    from psiflow_pipeline.cp2k.output import parse_output
    from psiflow_pipeline.cp2k.template import check_template, write_input

    (workdir / "direct.inp").write_text(write_input(check_template(template), atoms, stress=stress))
    subprocess.run(
        ["cp2k.psmp", "-i", "direct.inp", "-o", "direct.out"],
        cwd=workdir,
        check=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
    )
    output = (workdir / "direct.out").read_text()
    return parse_output(output, len(atoms)), output


PROFILE = REPO / "profiles" / "local"


def snakemake_command(workdir: Path, *args) -> list[str]:
    """The Snakemake command line of this environment on `workdir/config.yaml`,
    with the local profile a user runs with (its rerun triggers included)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), "--profile", str(PROFILE)]
    return command + ["--configfile", str(workdir / "config.yaml"), *args]


def snakemake_env() -> dict:
    """The environment for Snakemake: this environment's bin/ first, for Parsl's commands."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def snakemake(workdir: Path, *args, check=True) -> subprocess.CompletedProcess:
    """Run Snakemake from this environment on `workdir/config.yaml`."""
    command = snakemake_command(workdir, *args)
    process = subprocess.run(command, cwd=workdir, env=snakemake_env(), capture_output=True, text=True)
    if check and process.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{process.stdout[-5000:]}\n{process.stderr[-5000:]}")
    return process


@pytest.fixture
def water_8():
    from ase.io import read

    return read(WATER_8)


PIPELINE_ITERATIONS = 2


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """The tiny pipeline, run once for all tests that inspect its results."""
    workdir = tmp_path_factory.mktemp("pipeline")
    write_config(workdir, tiny_config(iterations=PIPELINE_ITERATIONS))
    snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture(scope="session")
def trained(pipeline_run, tmp_path_factory):
    """Two members trained for 15 epochs on the iteration-1 dataset, the second on a bootstrap resample."""
    workdir = tmp_path_factory.mktemp("members")
    model = validate(tiny_config(), "tiny.yaml")["model"]
    model.update(max_epochs=15, patience=50, lr_patience=50)
    dataset = pipeline_run / "results/iter_1/dataset.h5"
    for m in range(2):
        train_on_dataset(
            dataset, workdir / f"m{m}/training", workdir / f"m{m}/model.nequip.zip", model,
            seed=100 + m, accelerator="cpu", threads=2, log_path=workdir / "train.log",
            resample_seed=[1, 2, 3] if m == 1 else None,
        )  # fmt: skip
    return workdir, model
