"""Labeling with real CP2K: persistent shell vs fresh process, stress, vacuum,
failures as data, and a cache that survives a killed run."""

import os
import re
import signal
import subprocess
import threading
import time

import numpy as np
import psutil
import pytest
from ase.io import read
from conftest import REPO, WATER_8, XTB, snakemake_command, snakemake_env, tiny_config, write_config

from psiflow_pipeline.bootstrap import rattled_frames
from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.process import single_point
from psiflow_pipeline.cp2k.shell import persistent_single_point
from psiflow_pipeline.cp2k.template import LABEL_GUESS, check_template, label_guess_input, write_input
from psiflow_pipeline.data import Frames, read_h5
from psiflow_pipeline.execution import Execution
from psiflow_pipeline.labeling import LabelCache, label

WATER_32 = REPO / "resources" / "structures" / "water_32.xyz"
PBE = REPO / "resources" / "cp2k" / "pbe_d3.inp"


@pytest.fixture(autouse=True)
def no_shell_outlives_its_test():
    """The persistent shells a test starts in this process end with it."""
    from psiflow_pipeline.cp2k.shell import close_sessions

    yield
    close_sessions()


@pytest.fixture(scope="module")
def trajectory():
    """Three nearby geometries of the 8-water box, as consecutive MD frames are."""
    from conftest import WATER_8

    atoms = read(WATER_8)
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(3):
        atoms = atoms.copy()
        atoms.positions += rng.normal(0, 0.02, atoms.positions.shape)
        frames.append(atoms)
    return frames


def test_closing_ends_every_workers_shell(tmp_path):
    """The shells of two worker threads are asked to exit before either is
    waited for: each CP2K ends by its EXIT (exit code 0) and its files go; a
    shell that is not at its prompt (a single point cut short) is terminated."""
    from psiflow_pipeline.cp2k import shell

    template, atoms = check_template(XTB), read(WATER_8)
    statuses = []

    def worker():
        statuses.append(persistent_single_point(atoms, template, Cp2kCommand(), workdir=tmp_path).status)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == ["ok", "ok"]
    sessions = [
        s for per_thread in shell._SESSIONS.values() for s in per_thread.values() if tmp_path in s.directory.parents
    ]
    assert len(sessions) == 2
    children = [session.shell._child for session in sessions]
    sessions[1].shell.isready = False  # as if its single point had been cut short
    shell.close_sessions()
    assert [child.returncode for child in children] == [0, -signal.SIGTERM]
    assert not shell._SESSIONS and not list(tmp_path.iterdir())


def test_persistent_shell_matches_fresh_process_within_scf_tolerance(trajectory):
    template = check_template(XTB)
    for atoms in trajectory:  # the same shell serves all three
        shell = persistent_single_point(atoms, template, Cp2kCommand())
        fresh = single_point(atoms, template, Cp2kCommand())
        assert shell.status == fresh.status == "ok"
        # EPS_SCF 1e-6 bounds the difference of the two SCF starting points
        assert np.abs(shell.forces - fresh.forces).max() < 1e-3
        assert shell.energy == pytest.approx(fresh.energy, abs=1e-5)


def test_the_shell_guess_fits_the_method_unless_the_template_chooses(trajectory, tmp_path):
    """A label job's frames are not consecutive MD steps: the shell's input
    replaces CP2K's MD extrapolation (ASPC) by the previous frame's
    wavefunction for DFT and the atomic guess for xTB, wherever the template
    leaves it open, and CP2K accepts it."""
    pbe = check_template(PBE)
    without_qs = re.sub(r"\n\s*&QS\n.*?&END QS", "", pbe, flags=re.S)
    assert "&QS" not in without_qs
    cases = [(check_template(XTB), "semi-empirical"), (pbe, "dft"), (without_qs, "dft")]
    for k, (template, method) in enumerate(cases):
        text = label_guess_input(write_input(template, trajectory[0]))
        assert text.count("EXTRAPOLATION") == text.count(LABEL_GUESS[method]) == 1
        (tmp_path / f"{k}.inp").write_text(text)
        command = Cp2kCommand()
        check = subprocess.run(
            [command.executable, "--check", "-i", f"{k}.inp"],
            cwd=tmp_path,
            env=command.environment(),
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout[-2000:]
    chosen = pbe.replace("&QS\n", "&QS\n      EXTRAPOLATION ASPC\n")
    assert label_guess_input(chosen) == chosen


def test_stress_matches_a_finite_difference_of_the_energy(trajectory):
    template = check_template(XTB)
    atoms = trajectory[0]
    fresh = single_point(atoms, template, Cp2kCommand(), stress=True)
    shell = persistent_single_point(atoms, template, Cp2kCommand(), stress=True)
    assert np.abs(fresh.stress - shell.stress).max() < 1e-5
    energies = []
    for sign in (+1, -1):
        strained = atoms.copy()
        strained.set_cell(atoms.cell.array @ np.diag([1 + sign * 0.002, 1, 1]), scale_atoms=True)
        energies.append(single_point(strained, template, Cp2kCommand()).energy)
    numeric = (energies[0] - energies[1]) / (2 * 0.002) / atoms.get_volume()  # ASE: (1/V) dE/d(strain)
    assert fresh.stress[0, 0] == pytest.approx(numeric, rel=0.02)
    assert abs(numeric) > 1e-3


def molecule_frames(name: str, count: int = 3) -> list:
    """Nearby geometries of a molecule in vacuum (no cell), as a walker visits them."""
    from ase.build import molecule

    atoms = molecule(name)
    atoms.cell, atoms.pbc = None, False
    rng = np.random.default_rng(2)
    frames = []
    for _ in range(count):
        atoms = atoms.copy()
        atoms.positions += rng.normal(0, 0.02, atoms.positions.shape)
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("template, name", [(XTB, "CH3CH2OH"), (PBE, "H2O")], ids=["xtb-ethanol", "pbe-water"])
def test_a_molecule_in_the_persistent_shell_matches_fresh_processes_and_a_direct_run(template, name, tmp_path):
    """The persistent shell gives a molecule the same box as a fresh CP2K process."""
    frames = molecule_frames(name, count=2)
    # a coarse grid keeps the DFT case cheap: the test is about the box, not the accuracy
    text = check_template(template).replace("CUTOFF 400", "CUTOFF 150").replace("REL_CUTOFF 60", "REL_CUTOFF 30")
    for k, atoms in enumerate(frames):  # one shell for all: the SCF restarts from the previous frame
        shell = persistent_single_point(atoms, text, Cp2kCommand())
        fresh = single_point(atoms, text, Cp2kCommand())
        assert shell.status == fresh.status == "ok", (shell.reason, fresh.reason)
        tolerance = 1e-6 if k == 0 else 1e-3  # the first frame starts from scratch, like a direct run
        assert np.abs(shell.forces - fresh.forces).max() < tolerance
        assert shell.energy == pytest.approx(fresh.energy, abs=1e-6 if k == 0 else 1e-5)


def test_stress_is_not_asked_for_a_molecule():
    from ase.build import molecule

    water = molecule("H2O")
    result = single_point(water, check_template(XTB), Cp2kCommand(), stress=True)
    assert result.status == "ok" and result.stress is None


def test_pbe_template_works_periodic_and_in_vacuum():
    from ase.build import molecule

    template = check_template(PBE)
    vacuum = molecule("H2O")
    isolated = single_point(vacuum, template, Cp2kCommand())
    boxed = vacuum.copy()
    boxed.cell = [6, 6, 6]
    boxed.center()
    boxed.pbc = True
    periodic = single_point(boxed, template, Cp2kCommand())
    assert isolated.status == periodic.status == "ok", (isolated.reason, periodic.reason)
    for result in (isolated, periodic):
        hydrogen_1, hydrogen_2 = result.forces[1], result.forces[2]  # mirror images in the molecule's plane
        assert hydrogen_1[1] == pytest.approx(-hydrogen_2[1], abs=1e-4)
        assert hydrogen_1[2] == pytest.approx(hydrogen_2[2], abs=1e-4)
        # no net force but the real-space grid's egg-box error at 400 Ry
        assert np.abs(result.forces.sum(axis=0)).max() < 0.15
    assert isolated.energy == pytest.approx(periodic.energy, abs=0.1)  # images 6 Å apart barely interact


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "fresh"])
def test_failures_are_data_with_reasons(trajectory, persistent):
    broken = XTB.read_text().replace("MAX_SCF 50", "MAX_SCF 1").replace("MAX_SCF 10", "MAX_SCF 1")
    run = persistent_single_point if persistent else single_point
    assert run(trajectory[0], broken, Cp2kCommand()).reason == "SCF not converged"
    crash = run(trajectory[0], XTB.read_text().replace("MAX_SCF 50", "NOT_A_KEYWORD 50"), Cp2kCommand())
    assert crash.status == "failed" and "unknown keyword NOT_A_KEYWORD" in crash.reason
    slow = run(trajectory[0], XTB.read_text(), Cp2kCommand(walltime_s=0.05))
    assert slow.status == "failed" and "walltime" in slow.reason
    missing = run(trajectory[0], XTB.read_text(), Cp2kCommand(executable="no-such-cp2k"))
    assert missing.status == "failed" and "no-such-cp2k" in missing.reason
    assert run(trajectory[0], XTB.read_text(), Cp2kCommand()).status == "ok"  # recovers afterwards


def test_label_caches_every_result_and_reuses_it(tmp_path, trajectory, caplog):
    frames = Frames.from_atoms(trajectory, iteration=1)
    frames.frame["identifier"][:] = ["a", "b", "c"]
    template = check_template(XTB)
    caplog.set_level("INFO", logger="psiflow")
    first = label(frames, template, Cp2kCommand(), Execution(cores=2), tmp_path / "parsl", tmp_path / "cache")
    assert list(first.frame["status"]) == ["ok"] * 3
    assert "0 single points from the cache, 3 to compute" in caplog.text
    assert "3 of 3 single points done" in caplog.text  # each one is logged as it finishes
    assert len(LabelCache(tmp_path / "cache")) == 3
    caplog.clear()
    again = label(frames, template, Cp2kCommand(), Execution(cores=2), tmp_path / "parsl", tmp_path / "cache")
    assert "3 single points from the cache, 0 to compute" in caplog.text
    assert again.atom["forces"].tobytes() == first.atom["forces"].tobytes()
    # another template is another result: nothing is reused
    other = template.replace("EPS_SCF 1.0E-6\n      MAX_SCF 50", "EPS_SCF 1.0E-7\n      MAX_SCF 50")
    caplog.clear()
    label(frames, other, Cp2kCommand(), Execution(cores=2), tmp_path / "parsl", tmp_path / "cache")
    assert "0 single points from the cache, 3 to compute" in caplog.text


def test_label_workers_are_threads_that_each_keep_one_shell(tmp_path, trajectory, monkeypatch):
    from psiflow_pipeline.cp2k import shell

    starts = []
    monkeypatch.setattr(shell.ShellSession, "__init__", counted(shell.ShellSession.__init__, starts))
    frames = Frames.from_atoms(trajectory * 2, iteration=1)
    frames.frame["identifier"][:] = [f"f{k}" for k in range(6)]
    labeled = label(frames, check_template(XTB), Cp2kCommand(), Execution(cores=2), tmp_path / "p", tmp_path / "c")
    assert list(labeled.frame["status"]) == ["ok"] * 6
    # two workers, two shells for six single points; none outlives the label step
    assert len(starts) == 2 and len({thread for thread, _ in starts}) == 2
    assert shell._SESSIONS == {} and not psutil.Process().children(recursive=True)


def counted(init, calls: list):
    def wrapper(self, *args, **kwargs):
        calls.append((threading.get_ident(), args))
        init(self, *args, **kwargs)

    return wrapper


def test_killed_labeling_recomputes_only_unfinished_frames(tmp_path):
    """SIGKILL to the whole Snakemake process group mid-labeling, then unlock and rerun."""
    n_frames = 10
    config = tiny_config(bootstrap={"n_rattled": n_frames, "sigma": 0.05, "strain": 0.02})
    config["system"]["structures"] = [str(WATER_32)]
    write_config(tmp_path, config)
    command = snakemake_command(tmp_path, "--cores", "2")
    env = snakemake_env()
    target = "results/iter_0/labeled.h5"
    cache = tmp_path / "results/iter_0/label_cache"
    process = subprocess.Popen(
        [*command, target], env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(cache.glob("*.npz"))) < 2:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_at_kill = len(list(cache.glob("*.npz")))
    # the log showed each finished single point while the job ran
    log_at_kill = (tmp_path / "logs/label/iter_0.log").read_text()
    assert re.search(rf"\d+ of {n_frames} single points done, about \d+ (s|min) left", log_at_kill), log_at_kill
    assert 2 <= done_at_kill < n_frames, "the kill must land mid-labeling"
    assert not (tmp_path / target).exists()

    subprocess.run([*command, "--unlock"], env=env, check=True, capture_output=True)
    rerun = subprocess.run([*command, "--rerun-incomplete", target], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (tmp_path / "logs/label/iter_0.log").read_text()
    assert f"{done_at_kill} single points from the cache, {n_frames - done_at_kill} to compute" in log
    labeled = read_h5(tmp_path / target)
    assert list(labeled.frame["status"]) == ["ok"] * n_frames
    assert len(list(cache.glob("*.npz"))) == n_frames


def test_rattled_frames_label_with_the_frame_identifiers(tmp_path):
    atoms = read(WATER_32)
    frames = rattled_frames([atoms], 2, 0.05, 0.0, seed=3)
    labeled = label(
        frames, check_template(XTB), Cp2kCommand(), Execution(cores=2), tmp_path / "parsl", tmp_path / "cache"
    )
    assert sorted(p.name.split("-")[2] for p in (tmp_path / "cache").glob("*.npz")) == ["b0", "b1"]
    assert np.isfinite(labeled.frame["energy"]).all()


def test_ground_state_multiplicities_follow_hund():
    from psiflow_pipeline.cp2k.isolated import ground_state_multiplicity

    assert [ground_state_multiplicity(z) for z in (1, 2, 6, 7, 8, 10, 14, 26)] == [2, 1, 3, 4, 3, 1, 3, 5]


def test_isolated_atom_template_is_unrestricted_with_its_spin():
    from psiflow_pipeline.cp2k.isolated import isolated_atom_template

    text = isolated_atom_template(XTB.read_text(), 8)
    assert "MULTIPLICITY 3" in text and "UKS T" in text and "MULTIPLICITY 1" not in text
    result = single_point(read(REPO / "resources/structures/water_8.xyz")[:1], text, Cp2kCommand())
    assert result.status == "ok"


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "fresh"])
def test_mpi_ranks_give_the_same_forces(trajectory, persistent):
    run = persistent_single_point if persistent else single_point
    template = check_template(XTB)
    serial = single_point(trajectory[1], template, Cp2kCommand())
    parallel = run(trajectory[1], template, Cp2kCommand(mpi_ranks=2))
    assert parallel.status == "ok", parallel.reason
    assert np.abs(parallel.forces - serial.forces).max() < 1e-3


def test_label_step_fails_only_beyond_the_allowed_fraction():
    from psiflow_pipeline.labeling import check_failures

    frames = Frames.from_atoms([read(REPO / "resources/structures/water_8.xyz")] * 5)
    frames.frame["status"][:] = ["ok", "ok", "ok", "ok", "failed"]
    frames.frame["reason"][4] = "SCF not converged"
    check_failures(frames, 0.2, "labeled.h5")  # 1 of 5 is allowed
    frames.frame["status"][3] = "failed"
    frames.frame["reason"][3] = "SCF not converged"
    with pytest.raises(RuntimeError, match=r"labeled.h5: 2 of 5 single points failed.*2x SCF not converged"):
        check_failures(frames, 0.2, "labeled.h5")
