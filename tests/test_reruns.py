"""Reruns as a user does them: redo an iteration, extend a finished run, start
from labeled data. Jobs are counted from Snakemake's own plan and logs."""

import re
import shutil

import pandas as pd
import pytest
from conftest import PIPELINE_ITERATIONS, snakemake, tiny_config, write_config

from psiflow_pipeline.data import read_h5, write_extxyz

pytestmark = pytest.mark.pipeline


def planned_outputs(workdir, *args) -> list[str]:
    """The output files Snakemake would (re)create, from its `--summary` plan column."""
    process = snakemake(workdir, "--summary", *args)
    rows = [line.split("\t") for line in process.stdout.splitlines() if "\t" in line]
    return [row[0] for row in rows if row[-1] == "update pending"]


def iterations_touched(outputs: list[str]) -> set[int]:
    return {int(i) for line in outputs for i in re.findall(r"results/iter_(\d+)/", line)}


def test_forcerun_of_an_iteration_redoes_it_and_what_follows_only(pipeline_run):
    outputs = planned_outputs(pipeline_run, "--forcerun", "results/iter_1/labeled.h5")
    assert iterations_touched(outputs) == {1, 2}
    assert any("results/iter_1/labeled.h5" in line for line in outputs)
    assert not any("walkers.h5" in line and "iter_1" in line for line in outputs)  # sampling of 1 stays


def test_forcerun_of_a_selection_reruns_from_there(pipeline_run):
    outputs = planned_outputs(pipeline_run, "--forcerun", "results/iter_2/selected.h5")
    assert iterations_touched(outputs) == {2}
    assert not any("candidates.h5" in line for line in outputs)


def test_more_iterations_continue_a_finished_run_without_recomputing(pipeline_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(pipeline_run, workdir, symlinks=True)  # keeps modification times
    config = tiny_config(iterations=PIPELINE_ITERATIONS + 1)
    write_config(workdir, config)
    outputs = planned_outputs(workdir)
    assert iterations_touched(outputs) == {PIPELINE_ITERATIONS + 1}
    before = {p: p.stat().st_mtime_ns for p in (workdir / "results").glob("iter_[0-2]/*.h5")}
    snakemake(workdir, "--cores", "2", f"results/iter_{PIPELINE_ITERATIONS + 1}/metrics.csv")
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after  # no earlier file was rewritten
    assert len(read_h5(workdir / "results/iter_3/dataset.h5")) > len(read_h5(workdir / "results/iter_2/dataset.h5"))


def test_initial_data_and_test_set(pipeline_run, tmp_path):
    """Iteration 0 from the user's labeled extxyz; every committee also scored on a test set."""
    initial, test = tmp_path / "initial.xyz", tmp_path / "test.xyz"
    write_extxyz(read_h5(pipeline_run / "results/iter_0/labeled.h5"), initial)
    write_extxyz(read_h5(pipeline_run / "results/iter_2/labeled.h5"), test)
    config = tiny_config(iterations=1)
    config["bootstrap"]["initial_data"] = str(initial)
    config["evaluation"] = {"test_set": str(test)}
    workdir = tmp_path / "run"
    workdir.mkdir()
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2", "results/iter_0/metrics.csv", "results/iter_1/metrics.csv")
    assert not (workdir / "logs/label/iter_0.log").exists()  # no CP2K in iteration 0
    imported = read_h5(workdir / "results/iter_0/dataset.h5")
    original = read_h5(pipeline_run / "results/iter_0/labeled.h5")
    assert imported.atom["forces"].tobytes() == original.atom["forces"].tobytes()
    for i in (0, 1):
        metrics = pd.read_csv(workdir / f"results/iter_{i}/metrics.csv")
        assert (metrics.subset == "test").sum() == 1


def test_initial_data_without_forces_is_refused(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text('3\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 pbc="T T T"\n'
                   "O 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")  # fmt: skip
    config = tiny_config()
    config["bootstrap"]["initial_data"] = str(bad)
    write_config(tmp_path, config)
    process = snakemake(tmp_path, "-n", check=False)
    assert process.returncode != 0
    assert (
        f"key 'bootstrap.initial_data': frame 0 of {bad} has no energy or no forces" in process.stdout + process.stderr
    )


def test_report_builds_with_every_figure(pipeline_run, tmp_path):
    summary = pipeline_run / "results/summary"
    for name in ("learning_curve.png", "parity.png", "deviations.png", "walkers.csv", "provenance.yaml"):
        assert (summary / name).stat().st_size > 0, name
    walkers = pd.read_csv(summary / "walkers.csv")
    assert set(walkers.iteration) == {1, 2} and set(walkers.walker) == {0, 1}
    provenance = (summary / "provenance.yaml").read_text()
    assert "nequip:" in provenance and "CP2K version" in provenance and "git_commit" in provenance
    report = tmp_path / "report.zip"
    snakemake(pipeline_run, "--report", str(report))
    assert report.stat().st_size > 10_000
    import zipfile

    names = zipfile.ZipFile(report).namelist()
    assert any(name.endswith("learning_curve.png") for name in names)
    assert any(name.endswith("parity.png") for name in names)
