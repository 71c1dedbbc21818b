"""NequIP committees with real nequip-train: reloaded metrics, compiled models,
warm starts, and an uncertainty that ranks configurations."""

import os

import numpy as np
import pandas as pd
import pytest
from conftest import PIPELINE_ITERATIONS, tiny_config

from psiflow_pipeline.config import validate
from psiflow_pipeline.data import read_extxyz, read_h5
from psiflow_pipeline.evaluation import errors
from psiflow_pipeline.models.committee import BatchedCommittee, Committee
from psiflow_pipeline.models.training import train_on_dataset
from psiflow_pipeline.models.training_config import MONITORED_METRIC, merge, training_config

pytestmark = pytest.mark.pipeline


def lightning_metrics(member_dir):
    table = pd.read_csv(member_dir / "training/metrics/version_0/metrics.csv")
    return table[table[MONITORED_METRIC].notna()].reset_index(drop=True)


def test_member_reproduces_its_validation_metrics(pipeline_run):
    member = pipeline_run / f"results/iter_{PIPELINE_ITERATIONS}/models/member_0"
    validation = lightning_metrics(member)
    best = validation.loc[validation[MONITORED_METRIC].idxmin()]
    frames = read_extxyz(member / "data/valid.xyz")
    ours = errors(frames, BatchedCommittee.from_files([member / "model.nequip.zip"]))
    assert ours["force_mae"] == pytest.approx(best["val0_epoch/forces_mae"], rel=1e-4)
    assert ours["energy_mae_per_atom"] == pytest.approx(best["val0_epoch/per_atom_energy_mae"], rel=1e-3, abs=1e-6)


def test_a_batched_committee_predicts_as_the_members_one_structure_at_a_time(pipeline_run):
    """Evaluation scores frames in batches: the same energies, forces and
    stresses as each member's ASE calculator, frame by frame, across batches
    of mixed sizes and periodicities."""
    from ase import Atoms

    model = pipeline_run / "results/summary/model"
    paths = [model / "member_0.nequip.zip", model / "member_1.nequip.zip"]
    frames = read_h5(pipeline_run / f"results/iter_{PIPELINE_ITERATIONS}/dataset.h5")
    water = frames.to_atoms(0)
    molecule = Atoms(water[:3], pbc=False)  # a molecule in vacuum: no cell, no stress
    images = [frames.to_atoms(k) for k in range(4)] + [molecule, molecule, water[:12]]
    batched = BatchedCommittee.from_files(paths)
    batched.max_atoms = 2 * len(water)  # several batches
    assert batched.batches(images) == [[0, 1], [2, 3], [4, 5], [6]]
    energies, forces, stresses = batched.predict_many(images)
    one_by_one = Committee.from_files(paths)
    start = 0
    for k, atoms in enumerate(images):
        member_energies, member_forces = one_by_one.predict(atoms)
        np.testing.assert_allclose(energies[:, k], member_energies, rtol=0, atol=1e-4)
        np.testing.assert_allclose(forces[:, start : start + len(atoms)], member_forces, rtol=0, atol=1e-5)
        start += len(atoms)
        member_stresses = one_by_one.stresses(atoms)
        if atoms.pbc.all():
            np.testing.assert_allclose(stresses[:, k], member_stresses, rtol=0, atol=1e-6)
        else:
            assert member_stresses is None and np.isnan(stresses[:, k]).all()
    assert start == len(forces[0])


def test_compiled_model_predicts_as_the_package(pipeline_run):
    model = pipeline_run / "results/summary/model"
    frames = read_h5(pipeline_run / f"results/iter_{PIPELINE_ITERATIONS}/dataset.h5")
    atoms = frames.to_atoms(len(frames) - 1)
    energies, forces = Committee.from_files([model / "member_1.nequip.zip"]).predict(atoms)
    compiled_energies, compiled_forces = Committee.from_files([model / "member_1.nequip.pt2"]).predict(atoms)
    assert np.abs(compiled_forces - forces).max() < 1e-4
    assert compiled_energies[0] == pytest.approx(energies[0], abs=1e-3)


def test_a_shared_model_is_loaded_once_per_process_and_again_when_its_file_changes(pipeline_run, tmp_path):
    import shutil

    from psiflow_pipeline.models.committee import shared_calculator

    package = tmp_path / "member.nequip.zip"
    shutil.copy(pipeline_run / "results/summary/model/member_0.nequip.zip", package)
    first = shared_calculator(package)
    assert shared_calculator(package) is first
    atoms = read_h5(pipeline_run / "results/iter_0/dataset.h5").to_atoms(0)
    shared = Committee.from_files([package, package], propagator=0, shared=True)
    np.testing.assert_array_equal(shared.predict(atoms)[1], Committee.from_files([package]).predict(atoms)[1][[0, 0]])
    stat = package.stat()
    os.utime(package, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a retrained member in its place
    assert shared_calculator(package) is not first


def test_a_process_scans_the_installed_packages_once_for_all_the_models_it_loads(pipeline_run):
    """nequip's packaged code maps modules to distributions when a package
    loads; a job that loads several models pays that scan once."""
    import subprocess
    import sys

    packages = [str(pipeline_run / f"results/summary/model/member_{m}.nequip.zip") for m in (0, 1)]
    script = f"""
import importlib.metadata
calls = []
scan = importlib.metadata.packages_distributions
importlib.metadata.packages_distributions = lambda: calls.append(1) or scan()
from psiflow_pipeline.models.committee import load_calculator
for path in {packages!r}:
    load_calculator(path, "cpu")
print(len(calls))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "1"  # 3 without: importing nequip, then each package


def test_bootstrap_resample_gives_each_member_its_own_training_set(trained):
    workdir, _ = trained
    plain = read_extxyz(workdir / "m0/data/train.xyz").frame["identifier"]
    resampled = read_extxyz(workdir / "m1/data/train.xyz").frame["identifier"]
    assert len(plain) == len(resampled)
    assert len(set(resampled)) < len(resampled)  # drawn with replacement
    assert set(resampled) <= set(plain)


def test_uncertainty_ranks_training_frames_below_rattled_ones(trained, pipeline_run):
    workdir, _ = trained
    committee = BatchedCommittee.from_files([workdir / "m0/model.nequip.zip", workdir / "m1/model.nequip.zip"])
    known = read_h5(pipeline_run / "results/iter_1/dataset.h5")
    rattled = known.take(np.arange(len(known)))
    rng = np.random.default_rng(0)
    rattled.atom["positions"] += rng.normal(0, 0.25, rattled.atom["positions"].shape)
    seen = errors(known, committee)["deviation_mean"]
    unseen = errors(rattled, committee)["deviation_mean"]
    assert unseen > 1.5 * seen, (seen, unseen)


def test_warm_start_begins_with_a_lower_validation_error(trained, pipeline_run, tmp_path):
    workdir, model = trained
    model = dict(model, max_epochs=1)
    dataset = pipeline_run / "results/iter_2/dataset.h5"
    first_epoch = {}
    for name, start in (("scratch", None), ("warm", workdir / "m0/model.nequip.zip")):
        train_on_dataset(
            dataset, tmp_path / f"{name}/training", tmp_path / f"{name}/model.nequip.zip", model,
            seed=100, accelerator="cpu", threads=2, log_path=tmp_path / "train.log", warm_start_from=start,
        )  # fmt: skip
        first_epoch[name] = lightning_metrics(tmp_path / name)["val0_epoch/forces_mae"][0]
    assert first_epoch["warm"] < first_epoch["scratch"], first_epoch


def test_nequip_options_pass_through_and_warm_start_config():
    model = validate(tiny_config(), "tiny.yaml")["model"]
    model["nequip"] = {"trainer": {"max_epochs": 7, "gradient_clip_val": 1.0}, "training_module": {"ema_decay": 0.9}}
    config = training_config("t.xyz", "v.xyz", ["H", "O"], model, seed=1, warm_start_from="/x/m.nequip.zip")
    assert config["trainer"]["max_epochs"] == 7 and config["trainer"]["gradient_clip_val"] == 1.0
    assert config["trainer"]["accelerator"] == "cpu"  # untouched keys stay
    assert config["training_module"]["ema_decay"] == 0.9
    assert config["training_module"]["model"] == {
        "_target_": "nequip.model.ModelFromPackage",
        "package_path": "/x/m.nequip.zip",
        "compile_mode": "eager",
    }
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_cosine_schedule_anneals_the_learning_rate_over_max_epochs(pipeline_run, tmp_path):
    import torch

    model = validate(tiny_config(), "tiny.yaml")["model"]
    model.update(lr_schedule="cosine", max_epochs=4, learning_rate=0.01)
    train_on_dataset(
        pipeline_run / "results/iter_1/dataset.h5", tmp_path / "training", tmp_path / "model.nequip.zip", model,
        seed=1, accelerator="cpu", threads=2, log_path=tmp_path / "train.log",
    )  # fmt: skip
    checkpoint = torch.load(tmp_path / "training/last.ckpt", map_location="cpu", weights_only=False)
    (scheduler,) = checkpoint["lr_schedulers"]
    steps = scheduler["last_epoch"]
    assert scheduler["T_max"] == 4 and steps >= 3  # stepped once per epoch
    assert scheduler["_last_lr"][0] == pytest.approx(0.01 * (1 + np.cos(np.pi * steps / 4)) / 2, rel=1e-9)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] < 0.01 / 2


def test_model_stress_is_the_strain_derivative_of_its_energy_in_ases_convention(trained, water_8):
    """The convention end to end: CP2K's stress is turned into ASE's (tests/test_labeling.py
    checks it against a finite difference); NequIP learns and predicts the same."""
    workdir, _ = trained
    committee = Committee.from_files([workdir / "m0/model.nequip.zip"])
    committee.predict(water_8)
    stress = committee.stresses(water_8)[0]
    energies = []
    for sign in (+1, -1):
        strained = water_8.copy()
        strained.set_cell(water_8.cell.array @ np.diag([1 + sign * 1e-3, 1, 1]), scale_atoms=True)
        energies.append(committee.predict(strained)[0][0])
    numeric = (energies[0] - energies[1]) / 2e-3 / water_8.get_volume()  # ASE: (1/V) dE/d(strain)
    assert stress[0, 0] == pytest.approx(numeric, rel=0.02, abs=1e-5)
    assert abs(numeric) > 1e-4


def test_compiled_training_from_its_iteration_on_fresh_and_warm_started(monkeypatch):
    import psiflow_pipeline.models.training as training

    model = validate(tiny_config(), "tiny.yaml")["model"]
    for start in (None, "/x/m.nequip.zip"):
        config = training_config("t.xyz", "v.xyz", ["H", "O"], model, seed=1, warm_start_from=start)
        assert config["training_module"]["model"]["compile_mode"] == "eager"
        config = training_config("t.xyz", "v.xyz", ["H", "O"], model, 1, warm_start_from=start, compile_mode="compile")
        assert config["training_module"]["model"]["compile_mode"] == "compile"
    monkeypatch.setattr(training.shutil, "which", lambda name: "/usr/bin/c++")
    assert [training.compiles_training({"compile_from_iteration": 2}, i) for i in range(4)] == [0, 0, 1, 1]
    assert not training.compiles_training({"compile_from_iteration": None}, 5)
    monkeypatch.setattr(training.shutil, "which", lambda name: None)  # no C++ compiler: eager
    assert not training.compiles_training({"compile_from_iteration": 0}, 5)
