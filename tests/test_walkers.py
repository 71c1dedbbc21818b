"""Walkers with a real NequIP committee: NVE, NPT, geometry optimisation,
PLUMED metadynamics across iterations, and resets of exploding walkers."""

import json

import numpy as np
import pytest
from ase.io import read
from conftest import REPO, WATER_8, tiny_config

from psiflow_pipeline import settings as step_settings
from psiflow_pipeline.batched import run_walker_batch
from psiflow_pipeline.config import ConfigError, validate
from psiflow_pipeline.data import Frames, read_h5, write_h5
from psiflow_pipeline.execution import Execution
from psiflow_pipeline.models.committee import Committee
from psiflow_pipeline.models.uncertainty import uncertainty
from psiflow_pipeline.preflight import check_plumed_inputs
from psiflow_pipeline.sampling import WalkerTask, run_walker, sample
from psiflow_pipeline.selection import select

pytestmark = pytest.mark.pipeline
METAD = REPO / "resources/plumed/metad_distance.dat"


def settings(**group) -> dict:
    """One walker's settings as the sample step gets them (PLUMED input as its lines)."""
    config = validate(tiny_config(walkers=[group]), "tiny.yaml")
    return step_settings.walkers(config, 1)[0]


@pytest.fixture(scope="module")
def models(trained):
    workdir, _ = trained
    return [str(workdir / "m0/model.nequip.zip"), str(workdir / "m1/model.nequip.zip")]


def walk(models, tmp_path, state=None, iteration=1, step=0, bias=None, trust_hi=1e9, **group):
    """One walker on the 8-water box; the tiny test models heat it well above its
    target temperature and swing its volume, so the runaway checks are off unless a
    test sets them.
    Returns (frames, final state, bias files, COLVAR text)."""
    state = read(WATER_8) if state is None else state
    group.setdefault("max_temperature_factor", 100.0)
    group.setdefault("max_volume_change", 10.0)
    task = WalkerTask(0, state, settings(**group), models, iteration, step, trust_hi, 7, 2, bias or {}, str(tmp_path))
    result = run_walker(task)
    return result.frames, result.final, result.bias, result.colvar


def total_energies(frames: Frames) -> np.ndarray:
    return np.array([frames.to_atoms(k).get_kinetic_energy() for k in range(len(frames))]) + frames.frame["energy"]


def test_nve_conserves_energy(models, tmp_path):
    frames, final, _, _ = walk(models, tmp_path, ensemble="nve", temperature=300, timestep=0.25, steps=200, stride=10)
    assert final.frame["status"][0] == "ok"
    energy = total_energies(frames)
    drift_per_atom = np.ptp(energy) / 24
    assert drift_per_atom < 2e-3, drift_per_atom  # eV/atom over 50 fs
    kinetic = energy - frames.frame["energy"]
    assert np.ptp(kinetic) > 10 * np.ptp(energy)  # energy flows between kinetic and potential


def test_npt_volume_follows_the_pressure(models, tmp_path):
    volumes = {}
    for pressure in (1.0, 1e5):  # 1 bar and 10 GPa
        frames, final, _, _ = walk(
            models, tmp_path, ensemble="npt", pressure_bar=pressure, temperature=300, steps=200, stride=20
        )
        assert final.frame["status"][0] == "ok", final.frame["reason"][0]
        volumes[pressure] = abs(np.linalg.det(frames.frame["cell"][-1]))
    # the tiny models' pressure is far from the reference's, so only the response
    # to the pressure is asserted, not where the volume settles
    assert volumes[1e5] < 0.8 * volumes[1.0], volumes


def test_flexible_npt_changes_the_cell_shape(models, tmp_path):
    frames, _, _, _ = walk(
        models, tmp_path, ensemble="npt", barostat="flexible", pressure_bar=1e5, steps=100, stride=20
    )
    cell = frames.frame["cell"][-1]
    assert np.abs(cell - np.diag(np.diag(cell))).max() > 1e-4  # off-diagonal components appear


def test_geometry_optimisation_reaches_its_force_tolerance(models, tmp_path):
    frames, final, _, _ = walk(models, tmp_path, ensemble="opt", fmax=0.1, steps=1000, stride=20)
    assert frames.frame["reason"][-1] == "converged"
    _, forces = Committee.from_files(models).predict(final.to_atoms(0))
    assert np.linalg.norm(forces.mean(axis=0), axis=1).max() < 0.1
    assert frames.frame["energy"][-1] < frames.frame["energy"][0]


def test_metadynamics_hills_persist_across_iterations(models, tmp_path):
    first, state, hills, colvar = walk(models, tmp_path, plumed=str(METAD), steps=40, stride=10)
    assert colvar.startswith("#! FIELDS time d metad.bias")
    n_hills = sum(1 for line in hills["HILLS"].splitlines() if not line.startswith("#"))
    assert n_hills == 40 // 5  # PACE=5 over 40 steps
    # the bias travels in walkers.h5 like the rest of the state
    write_h5(state, tmp_path / "walkers.h5")
    state = read_h5(tmp_path / "walkers.h5")
    bias = json.loads(state.frame["bias"][0])
    second, _, hills_after, colvar_after = walk(
        models,
        tmp_path,
        state=state.to_atoms(0),
        iteration=2,
        step=40,
        bias=bias,
        plumed=str(METAD),
        steps=40,
        stride=10,
    )
    assert sum(1 for line in hills_after["HILLS"].splitlines() if not line.startswith("#")) == 2 * n_hills
    first_row = colvar_after.splitlines()[1].split()
    assert float(first_row[0]) == pytest.approx(0.02)  # time goes on: 40 steps of 0.5 fs
    assert float(first_row[2]) > 0  # the walker restarts inside the bias it built


def test_exploding_walker_is_reset_and_its_frames_not_selected(models, tmp_path):
    frames, final, _, _ = walk(models, tmp_path, timestep=20.0, temperature=2000, steps=200, stride=5)
    assert final.frame["status"][0] == "reset"
    assert frames.frame["status"][-1] == "reset" and frames.frame["reason"][-1]
    assert len(frames) < 40  # stopped early
    selected = select(frames, "committee", 0.0, 1e9, 100)
    assert "reset" not in set(selected.frame["status"])
    assert frames.frame["identifier"][-1] not in set(selected.frame["identifier"])


def test_reset_to_last_sane_state(models, tmp_path):
    frames, final, _, _ = walk(
        models, tmp_path, timestep=20.0, temperature=2000, steps=200, stride=1, reset_to="last_sane"
    )
    assert final.frame["status"][0] == "ok" and "restarted from the last sane state" in final.frame["reason"][0]
    if len(frames) > 1:  # the state before the failing frame
        assert np.array_equal(final.atom["positions"], frames.atom["positions"][frames.atoms_of(len(frames) - 2)])


def test_a_deviating_walker_is_reset(models, tmp_path):
    frames, final, _, _ = walk(models, tmp_path, trust_hi=1e-6, steps=20, stride=5)
    assert final.frame["status"][0] == "reset" and "force deviation" in frames.frame["reason"][-1]


def test_bad_plumed_input_is_refused_naming_file_key_and_line(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("d: DISTANCE ATOMS=1,4\n# a comment\nmetad: METAD ARG=nope SIGMA=0.1 HEIGHT=1 PACE=5\n")
    config = validate(tiny_config(walkers=[{"plumed": str(bad)}]), "my.yaml")
    with pytest.raises(ConfigError, match=rf"my.yaml: key 'walkers.0.plumed': {bad}:3: PLUMED rejects"):
        check_plumed_inputs(config, [read(WATER_8)], "my.yaml")
    good = validate(tiny_config(walkers=[{"plumed": str(METAD)}]), "my.yaml")
    check_plumed_inputs(good, [read(WATER_8)], "my.yaml")


def test_temperature_runaway_resets_the_walker(models, tmp_path):
    frames, final, _, _ = walk(models, tmp_path, max_temperature_factor=1.01, temperature=300, steps=200, stride=5)
    assert final.frame["status"][0] == "reset"
    assert "temperature" in frames.frame["reason"][-1] and "above 1.01x the target" in frames.frame["reason"][-1]


def test_sample_carries_bias_and_colvar_through_parsl(models, tmp_path):
    """Two iterations of `sample` (Parsl tasks) with a biased and a plain walker group."""
    config = validate(
        tiny_config(
            walkers=[
                {"count": 1, "steps": 20, "stride": 5, "plumed": str(METAD), "max_temperature_factor": 100},
                {"count": 1, "steps": 20, "stride": 5, "ensemble": "npt", "max_temperature_factor": 100},
            ]
        ),
        "tiny.yaml",
    )
    images = [read(WATER_8)]
    walkers, hills = None, []  # the first iteration starts every walker at its structure
    for iteration in (1, 2):
        sample_settings = step_settings.sample(config, iteration)
        candidates, walkers, colvars = sample(
            walkers, images, sample_settings, iteration, models, Execution(cores=2), tmp_path / f"parsl_{iteration}"
        )
        write_h5(walkers, tmp_path / "walkers.h5")  # as the rule stores the state between iterations
        walkers = read_h5(tmp_path / "walkers.h5")
        assert list(colvars) == [0] and list(walkers.frame["status"]) == ["ok", "ok"], walkers.frame["reason"]
        hills.append(json.loads(walkers.frame["bias"][0])["HILLS"].count("\n"))
        assert walkers.frame["bias"][1] == "{}"
        assert set(candidates.frame["walker"]) == {0, 1} and (walkers.frame["step"] == 20 * iteration).all()
    assert hills[1] > hills[0]


def test_a_walker_whose_cell_runs_away_is_reset(models, tmp_path):
    frames, final, _, _ = walk(
        models, tmp_path, ensemble="npt", pressure_bar=1e6, pdamp=50, steps=400, stride=10, max_volume_change=0.02
    )  # 100 GPa: the cell collapses
    assert final.frame["status"][0] == "reset"
    assert (
        "volume changed by -" in frames.frame["reason"][-1] and "max_volume_change 0.02" in frames.frame["reason"][-1]
    )


def test_a_walker_following_one_member_records_the_full_committees_deviation(models, tmp_path):
    frames, final, _, _ = walk(models, tmp_path, propagate="member", steps=60, stride=10)
    assert final.frame["status"][0] == "ok", final.frame["reason"][0]
    full = Committee.from_files(models)
    # equal to the float32 models' round-off (the saved positions are wrapped into the cell)
    for k in range(len(frames)):
        atoms = frames.to_atoms(k)
        energies, forces = full.predict(atoms)
        assert frames.frame["deviation"][k] == pytest.approx(uncertainty(energies, forces)[0], rel=1e-5)
        # the walker (walker 0) follows member 0: its recorded energy is that member's
        assert frames.frame["energy"][k] == pytest.approx(energies[0], abs=1e-4)
        assert abs(frames.frame["energy"][k] - energies.mean()) > 1e-3


@pytest.mark.parametrize("propagate", ["member", "mean"])
def test_batched_nve_walkers_reproduce_the_walkers_run_one_by_one(models, tmp_path, propagate):
    """Four NVE walkers in batches (through Parsl) against each run alone with
    ASE's integrator: the walkers at 1 K heat above 3x their target at once
    and leave their batch, the others go on as if alone. Equal to the models'
    round-off: they compute in float32 (`model_dtype`), and a batch need not
    give one structure's forces bit for bit (on some CPUs 1e-7 relative in the
    deviations, 4e-8 Å in positions after 100 steps), where a walker paired
    with the wrong member, momenta or noise would differ by 1e-3 and more."""
    group = {"count": 4, "ensemble": "nve", "temperature": [1, 1, 2000, 2500], "timestep": 0.25, "steps": 100}
    group.update(stride=10, max_volume_change=10.0, propagate=propagate, batch=4)
    settings = step_settings.sample(validate(tiny_config(walkers=[group]), "tiny.yaml"), 1)
    assert settings["batches"] == ([[0, 2], [1, 3]] if propagate == "member" else [[0, 1, 2, 3]])
    batched, _, _ = sample(None, [read(WATER_8)], settings, 1, models, Execution(cores=2), tmp_path / "parsl")
    for k, walker in enumerate(settings["walkers"]):
        task = WalkerTask(k, read(WATER_8), walker, models, 1, 0, settings["trust_hi"], settings["seed"], 2)
        task.workdir = str(tmp_path)
        alone = run_walker(task).frames
        mine = batched.take(np.flatnonzero(batched.frame["walker"] == k))
        assert list(mine.frame["identifier"]) == list(alone.frame["identifier"])
        assert list(mine.frame["reason"]) == list(alone.frame["reason"])
        for key in ("energy", "deviation", "energy_deviation", "temperature"):
            np.testing.assert_allclose(mine.frame[key], alone.frame[key], rtol=1e-5, atol=1e-6)
        for j in range(len(mine)):  # equal up to a lattice vector: torch-sim wraps positions into the cell
            cell = alone.to_atoms(j).cell
            fractional = cell.scaled_positions(mine.to_atoms(j).positions - alone.to_atoms(j).positions)
            assert np.abs((fractional - np.round(fractional)) @ cell.array).max() < 1e-6
        if k < 2:
            assert "temperature" in alone.frame["reason"][-1] and len(alone) < 10
    # walker 2 shares its batch with walker 0 (member) or with all (mean) and outlives their resets
    assert len(batched.take(np.flatnonzero(batched.frame["walker"] == 2))) == 10


def test_batched_langevin_walkers_keep_their_own_temperature_after_one_leaves(models, tmp_path):
    """Two Langevin walkers in one task, at 1 K and 1000 K: the cold one heats
    above 3x its target at once and leaves the batch. The other goes on at
    1000 K, not at the target of the system that held the batch's first slot
    (which cooled it to under 100 K within 100 steps)."""
    group = {"count": 2, "temperature": [1, 1000], "friction": 0.1, "steps": 200, "stride": 10, "batch": 2}
    group.update(propagate="mean", max_temperature_factor=3, max_volume_change=10.0)
    settings = step_settings.sample(validate(tiny_config(walkers=[group]), "tiny.yaml"), 1)
    assert settings["batches"] == [[0, 1]]
    tasks = [
        WalkerTask(k, read(WATER_8), walker, models, 1, 0, settings["trust_hi"], settings["seed"], 2)
        for k, walker in enumerate(settings["walkers"])
    ]
    cold, hot = run_walker_batch(tasks)
    assert len(cold.frames) == 1 and "above 3x the target" in cold.frames.frame["reason"][0]
    assert len(hot.frames) >= 10, hot.frames.frame["reason"][-1]
    temperatures = hot.frames.frame["temperature"][5:]  # friction 0.1/fs: 20 fs to forget the start
    assert 500 < temperatures.mean() < 2000, temperatures
