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
