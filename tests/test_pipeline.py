"""The whole online-learning loop on the tiny config: real CP2K, real nequip-train,
real Parsl executors, driven by Snakemake."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import PIPELINE_ITERATIONS, SCF_ENERGY_TOLERANCE, SCF_FORCE_TOLERANCE, direct_cp2k, snakemake

from psiflow_pipeline.data import read_h5

pytestmark = pytest.mark.pipeline
ITERATIONS = PIPELINE_ITERATIONS


@pytest.fixture
def run(pipeline_run):
    return pipeline_run


def test_every_iteration_produced_its_files(run):
    for i in range(ITERATIONS + 1):
        for name in ("selected.h5", "labeled.h5", "dataset.h5", "metrics.csv"):
            assert (run / f"results/iter_{i}/{name}").is_file()
        for m in range(2):
            assert (run / f"results/iter_{i}/models/member_{m}/model.nequip.zip").stat().st_size > 0
    assert (run / "results/summary/learning_curve.png").stat().st_size > 0
    isolated = pd.read_csv(run / "results/isolated_atoms.csv").set_index("element").energy
    assert set(isolated.index) == {"H", "O"}
    assert len(list((run / "results/summary/model").glob("*.nequip.zip"))) == 2
    assert len(list((run / "results/summary/model").glob("*.nequip.pt2"))) == 2
    assert "NequIPCalculator" in (run / "results/summary/model/README.md").read_text()


# Runs the final committee's README as its reader would: every `atoms.calc = ...`
# it shows, in a fresh process, with a UserWarning (a guessed species map) an error.
README_RUNNER = """
import ast, json, sys
from ase.io import read

blocks, structure = json.loads(sys.argv[1]), sys.argv[2]
namespace = {"atoms": read(structure)}
results = []
for block in blocks:
    for statement in ast.parse(block).body:
        exec(compile(ast.Module([statement], []), "README", "exec"), namespace)
        if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "atoms.calc":
            atoms = namespace["atoms"]
            results.append({
                "calculator": ast.unparse(statement.value),
                "energy": atoms.get_potential_energy(),
                "forces": atoms.get_forces().tolist(),
                "deviation": atoms.calc.results.get("deviation"),
            })
print(json.dumps(results))
"""


def test_the_final_committee_loads_as_its_readme_shows(run, tmp_path):
    model = run / "results/summary/model"
    blocks = re.findall(r"```python\n(.*?)```", (model / "README.md").read_text(), re.S)
    structure = tmp_path / "structure.xyz"
    read_h5(run / "results/iter_0/dataset.h5").to_atoms(0).write(structure)
    ran = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", README_RUNNER, json.dumps(blocks), str(structure)],
        cwd=model, capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    compiled, packaged, committee = json.loads(ran.stdout.splitlines()[-1])
    assert ".pt2" in compiled["calculator"] and ".zip" in packaged["calculator"]
    # the same member, compiled and eager
    assert compiled["energy"] == pytest.approx(packaged["energy"], abs=1e-4)
    assert np.abs(np.array(compiled["forces"]) - packaged["forces"]).max() < 1e-4
    # the committee's mean differs from one member's by its spread
    assert committee["deviation"] > 0
    assert committee["energy"] != pytest.approx(packaged["energy"], abs=1e-8)


def test_labels_equal_a_direct_cp2k_run(run, tmp_path):
    labeled = read_h5(run / f"results/iter_{ITERATIONS}/labeled.h5")
    k = 0
    assert labeled.frame["status"][k] == "ok"
    direct, _ = direct_cp2k(labeled.to_atoms(k), tmp_path)
    assert np.abs(labeled.atom["forces"][labeled.atoms_of(k)] - direct.forces).max() < SCF_FORCE_TOLERANCE
    assert labeled.frame["energy"][k] == pytest.approx(direct.energy, abs=SCF_ENERGY_TOLERANCE)


def test_label_log_states_how_busy_the_workers_were(run):
    log = (run / f"logs/label/iter_{ITERATIONS}.log").read_text()
    seconds = [float(x) for x in re.findall(r"\(([0-9.]+) s\); \d+ of \d+ single points done", log)]
    count, elapsed, workers, use = re.search(
        r"(\d+) single points in ([0-9.]+) s on (\d+) workers: worker use (\d+) %", log
    ).groups()
    assert int(count) == len(seconds) > 0 and int(workers) in (1, 2)
    # the log gives each single point's seconds to 0.1 s, the use to 1 %
    rounding = 100 * 0.05 * len(seconds) / (int(workers) * float(elapsed)) + 0.5
    assert int(use) == pytest.approx(100 * sum(seconds) / (int(workers) * float(elapsed)), abs=rounding)
    assert 0 < int(use) <= 100


def test_sampled_frames_come_from_the_walkers(run):
    candidates = read_h5(run / "results/iter_1/candidates.h5")
    assert set(candidates.frame["walker"]) == {0, 1}
    assert np.isfinite(candidates.frame["deviation"]).all() and (candidates.frame["deviation"] > 0).all()
    selected = read_h5(run / "results/iter_1/selected.h5")
    assert set(selected.frame["identifier"]) <= set(candidates.frame["identifier"])
    walkers = read_h5(run / "results/iter_2/walkers.h5")
    running = walkers.frame["status"] == "ok"
    assert (walkers.frame["step"][running] == 40).all()  # 2 iterations of 20 steps


def test_dataset_grows_every_iteration(run):
    sizes = [len(read_h5(run / f"results/iter_{i}/dataset.h5")) for i in range(ITERATIONS + 1)]
    assert sizes[0] == 6
    assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes
    final = read_h5(run / f"results/iter_{ITERATIONS}/dataset.h5")
    assert len(set(final.frame["identifier"])) == len(final)
    assert np.isfinite(final.atom["forces"]).all()


def test_metrics_are_finite_for_every_iteration(run):
    table = pd.read_csv(run / "results/summary/metrics.csv")
    for i in range(ITERATIONS + 1):
        rows = table[table.iteration == i]
        assert "train" in set(rows.subset)
        assert np.isfinite(rows[["energy_rmse_per_atom", "force_rmse", "force_mae"]].to_numpy()).all()
        # isolated atoms are on in the tiny config: water binds, by a few eV per atom in GFN1-xTB
        assert (rows.binding_energy_per_atom < -1).all() and (rows.binding_energy_per_atom > -10).all()
        if i > 0:  # the previous committee on this iteration's fresh labels
            new = rows[rows.subset == "new"]
            assert len(new) == 1 and new.model_iteration.item() == i - 1


def test_calibration_pairs_the_sampled_deviation_with_the_true_error_of_the_committee_that_sampled(run):
    from psiflow_pipeline.evaluation import calibration

    table = pd.read_csv(run / "results/summary/metrics.csv")
    for i in range(1, ITERATIONS + 1):
        labeled = read_h5(run / f"results/iter_{i}/labeled.h5")
        ok = labeled.frame["status"] == "ok"
        with np.load(run / f"results/iter_{i}/parity.npz") as data:
            sampled, error = data["new_deviation_sampled"], data["new_force_error_largest"]
        np.testing.assert_array_equal(sampled, labeled.frame["deviation"][ok])  # recorded by the walker
        new = table[(table.iteration == i) & (table.subset == "new")].iloc[0]
        # the largest atom's error norm is at least sqrt(3) times the frame's component RMSE
        assert np.sqrt(np.mean(error**2)) >= np.sqrt(3) * new.force_rmse * (1 - 1e-9)
        fit = calibration(sampled, error)
        assert new.calibration_scale == pytest.approx(fit["calibration_scale"]) and fit["calibration_scale"] > 0
        assert new.calibration_rank_correlation == pytest.approx(fit["calibration_rank_correlation"])
    assert (run / "results/summary/calibration.png").stat().st_size > 0
    assert "calibration on the fresh labels: rank correlation" in (run / "results/summary/summary.txt").read_text()


def test_second_invocation_has_nothing_to_do(run):
    process = snakemake(run, "-n", "--cores", "2")
    assert "Nothing to be done" in process.stdout + process.stderr


def test_progress_of_a_run_is_built_from_its_finished_iterations(run, tmp_path):
    import shutil
    import sys
    from pathlib import Path

    partial = tmp_path / "run"
    shutil.copytree(run / "results/iter_0", partial / "results/iter_0")  # as if iteration 1 were still running
    shutil.copytree(run / "results/iter_1", partial / "results/iter_1")
    (partial / "results/iter_1/metrics.csv").unlink()
    command = [str(Path(sys.executable).parent / "psiflow-progress"), "-d", str(partial)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "1 iterations finished" in printed
    progress = pd.read_csv(partial / "results/progress/metrics.csv")
    expected = pd.read_csv(run / "results/summary/metrics.csv")
    expected = expected[expected.iteration == 0].reset_index(drop=True)
    assert progress.equals(expected)
    assert (partial / "results/progress/learning_curve.png").stat().st_size > 0


def test_validation_runs_the_final_committee_and_writes_its_figures_and_verdict(run):
    import yaml

    folder = run / "results/summary/validation"
    verdict = yaml.safe_load((folder / "verdict.yaml").read_text())
    assert verdict["duration_ps"] == 0.02 and verdict["verdict"].split()[0] in ("stable", "unstable:")
    assert 0 < verdict["stable_ps"] <= 0.02
    series = pd.read_csv(folder / "series.csv")
    assert len(series) >= 1 and np.isfinite(series.deviation).all()
    # the structure of the frames it saved, against the reference MD
    assert set(verdict["rdf"]) == {"H-H", "H-O", "O-O"} and verdict["largest_rdf_difference"]["value"] > 0
    assert {"peak_g_error", "reference_peak_g_error"} <= set(verdict["rdf"]["O-O"])
    rdf = pd.read_csv(folder / "rdf.csv")
    assert {"r", "g_O-O", "g_O-O_reference"} <= set(rdf.columns) and rdf.r.max() < 3.2  # half the 8-water box
    assert (folder / "validation.png").stat().st_size > 0
    assert f"validation: {verdict['verdict']}" in (run / "results/summary/summary.txt").read_text()
    log = (run / "logs/validate/validate.log").read_text()
    assert "ps: " in log and " MD steps done" in log  # a long run shows how far it is
