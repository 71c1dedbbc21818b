"""Every kind of system a newcomer brings, end to end with real CP2K and NequIP:
a molecule in vacuum and a crystal sampled at constant pressure (the
periodic liquid is the default job: tests/test_pipeline.py)."""

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, XTB_VACUUM, direct_cp2k, snakemake, write_config

from psiflow_pipeline.data import read_h5

pytestmark = pytest.mark.pipeline


def tiny(name: str) -> dict:
    """tests/data/tiny_<name>.yaml with absolute paths."""
    config = yaml.safe_load((REPO / "tests" / "data" / f"tiny_{name}.yaml").read_text())
    config["system"]["structures"] = [str(REPO / p) for p in config["system"]["structures"]]
    config["reference"]["input"] = str(REPO / config["reference"]["input"])
    return config


def run_tiny(name: str, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(name)
    write_config(workdir, tiny(name))
    snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture(scope="session")
def molecule_run(tmp_path_factory):
    return run_tiny("molecule", tmp_path_factory)


@pytest.fixture(scope="session")
def crystal_run(tmp_path_factory):
    return run_tiny("crystal", tmp_path_factory)


def test_molecule_pipeline_labels_equal_a_direct_cp2k_run(molecule_run, tmp_path):
    for i in (0, 1):
        labeled = read_h5(molecule_run / f"results/iter_{i}/labeled.h5")
        assert list(labeled.frame["status"]) == ["ok"] * len(labeled), labeled.frame["reason"]
        assert not labeled.frame["pbc"].any()
    atoms = labeled.to_atoms(0)  # a frame the default (persistent) mode labeled in iteration 1
    direct, _ = direct_cp2k(atoms, tmp_path, template=XTB_VACUUM)
    assert np.abs(labeled.atom["forces"][labeled.atoms_of(0)] - direct.forces).max() < 1e-6
    assert labeled.frame["energy"][0] == pytest.approx(direct.energy, abs=1e-6)
    metrics = pd.read_csv(molecule_run / "results/summary/metrics.csv")
    assert np.isfinite(metrics.force_rmse).all() and metrics.stress_rmse_gpa.isna().all()


def test_molecule_walkers_ran_in_one_batched_task(molecule_run):
    candidates = read_h5(molecule_run / "results/iter_1/candidates.h5")
    assert set(candidates.frame["walker"]) == {0, 1} and not candidates.frame["pbc"].any()
    assert np.isfinite(candidates.frame["deviation"]).all() and (candidates.frame["step"] % 5 == 0).all()
    provenance = yaml.safe_load((molecule_run / "results/summary/provenance.yaml").read_text())
    assert provenance["settings"]["iteration_1"]["sample"]["batches"] == [[0, 1]]
    log = (molecule_run / "logs/sample/iter_1.log").read_text()
    assert "walker 0: " in log and "walker 1: " in log


def test_crystal_labels_carry_the_stress_of_a_direct_cp2k_run(crystal_run, tmp_path):
    labeled = read_h5(crystal_run / "results/iter_1/labeled.h5")
    assert np.isfinite(labeled.frame["stress"]).all()  # reference.stress: auto, for NPT walkers
    atoms = labeled.to_atoms(0)
    direct, _ = direct_cp2k(atoms, tmp_path, stress=True)
    # CP2K prints the stress in GPa with 8 significant digits: ~1e-8 eV/Å³ here
    assert np.abs(labeled.frame["stress"][0] - direct.stress).max() < 1e-6
    assert np.abs(direct.stress).max() > 1e-3


def test_crystal_committee_is_trained_and_scored_on_stress(crystal_run):
    member = crystal_run / "results/iter_1/models/member_0"
    training = yaml.safe_load((member / "training/config.yaml").read_text())["training_module"]
    assert training["loss"]["_target_"] == "nequip.train.EnergyForceStressLoss"
    assert training["loss"]["coeffs"]["stress"] > 0
    logged = pd.read_csv(member / "training/metrics/version_0/metrics.csv")
    assert logged["val0_epoch/stress_mae"].notna().any()
    metrics = pd.read_csv(crystal_run / "results/summary/metrics.csv")
    assert np.isfinite(metrics[metrics.subset == "train"].stress_rmse_gpa).all()


def test_npt_walkers_of_the_crystal_change_its_volume(crystal_run):
    candidates = read_h5(crystal_run / "results/iter_1/candidates.h5")
    volumes = np.abs(np.linalg.det(candidates.frame["cell"]))
    assert np.ptp(volumes) > 0.01 and set(candidates.frame["walker"]) == {0, 1}


@pytest.mark.parametrize("example", ["molecule", "crystal_npt", "alanine_dipeptide"])
def test_example_configs_pass_every_check_as_they_are(example, tmp_path):
    config = yaml.safe_load((REPO / "config" / "examples" / f"{example}.yaml").read_text())
    write_config(tmp_path, config)  # paths as shipped: found among the workflow's files
    process = snakemake(tmp_path, "-n")
    assert "bootstrap" in process.stdout and not (tmp_path / "results").exists()
