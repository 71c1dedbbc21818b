"""Steering a finished study: each config change plans exactly the jobs it
affects, read from Snakemake's own plan (`--summary`), with the profile's
rerun triggers."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import PIPELINE_ITERATIONS, REPO, XTB, snakemake, write_config

from psiflow_pipeline import paths, plan

pytestmark = pytest.mark.pipeline
LAST = PIPELINE_ITERATIONS
MEMBERS = (0, 1)


def planned_jobs(workdir) -> set[str]:
    return plan.planned_jobs(snakemake(workdir, "--summary").stdout)


def iteration_jobs(i: int, first: str = "sample") -> set[str]:
    """The jobs of iteration i from step `first` on."""
    steps = ["sample", "select", "label", "dataset", "train", "evaluate"]
    jobs = set()
    for step in steps[steps.index(first) :]:
        if step == "train":
            jobs |= {f"train {i}/{m}" for m in MEMBERS}
        elif i > 0 or step not in ("sample", "select"):
            jobs.add(f"{step} {i}")
    return jobs


FINAL = {"summary", "validate"} | {f"compile {m}" for m in MEMBERS}
EVERYTHING = {"bootstrap", "isolated_atoms"} | {job for i in range(LAST + 1) for job in iteration_jobs(i)} | FINAL


def walker_schedule(config, entry):
    config["walkers"][0]["schedule"] = [entry]


def template_copy(config, tmp, text):
    (tmp / "template.inp").write_text(text)
    config["reference"]["input"] = str(tmp / "template.inp")


def reference_copy(config, tmp) -> str:
    """Another file of the validation's reference frames, as a second run of that MD."""
    source = Path(config["validation"]["reference"])
    shutil.copy(source if source.is_absolute() else REPO / source, tmp / "reference_2.xyz")
    return str(tmp / "reference_2.xyz")


# change -> the jobs it must plan, on a finished run of LAST iterations
CASES = {
    "one more iteration": (lambda c, tmp: c.update(iterations=LAST + 1), iteration_jobs(LAST + 1) | FINAL),
    "one more iteration with a walker schedule from it": (
        lambda c, tmp: (
            c.update(iterations=LAST + 1),
            walker_schedule(c, {"from_iteration": LAST + 1, "temperature": [500, 600], "steps": 30}),
        ),
        iteration_jobs(LAST + 1) | FINAL,
    ),
    "walker schedule from the last iteration": (
        lambda c, tmp: walker_schedule(c, {"from_iteration": LAST, "temperature": 350}),
        iteration_jobs(LAST) | FINAL,
    ),
    "selection schedule from the last iteration": (
        lambda c, tmp: c["selection"].update(schedule=[{"from_iteration": LAST, "max_per_iteration": 3}]),
        iteration_jobs(LAST, "select") | FINAL,
    ),
    "training schedule from the last iteration": (
        lambda c, tmp: c["model"].update(schedule=[{"from_iteration": LAST, "max_epochs": 3}]),
        iteration_jobs(LAST, "train") | FINAL,
    ),
    "a cosine learning-rate schedule from the last iteration": (
        lambda c, tmp: c["model"].update(schedule=[{"from_iteration": LAST, "lr_schedule": "cosine"}]),
        iteration_jobs(LAST, "train") | FINAL,
    ),
    "temperatures written as floats": (
        lambda c, tmp: c["walkers"][0].update(temperature=[300.0, 400.0]),
        set(),
    ),
    "keys in another order": (lambda c, tmp: None, set()),  # the config is written reversed below
    "CP2K wall time": (lambda c, tmp: c["execution"]["label"].update(walltime_s=7200), set()),
    "OpenMP threads and MPI ranks of CP2K": (
        lambda c, tmp: c["execution"]["label"].update(omp_threads=2, mpi_ranks=2, mode="fresh"),
        set(),
    ),
    "cores, memory, wall time, providers and compiled training": (
        lambda c, tmp: c["execution"].update(
            train={"threads": 2, "mem_mb": 9000, "runtime_min": 30, "compile_from_iteration": 1},
            sample={"cores": 1, "provider": "slurm"},
        ),
        set(),
    ),
    "a longer validation run": (lambda c, tmp: c["validation"].update(duration_ps=0.03), {"validate", "summary"}),
    "the validation's reference MD as a list of one run": (
        lambda c, tmp: c["validation"].update(reference=[c["validation"]["reference"]]),
        set(),
    ),
    "a second run of the validation's reference MD": (
        lambda c, tmp: c["validation"].update(reference=[c["validation"]["reference"], reference_copy(c, tmp)]),
        {"validate", "summary"},
    ),
    "no compiled final model": (lambda c, tmp: c["model"].update(compile=False), set()),
    "a failure policy for labeling": (lambda c, tmp: c["reference"].update(max_failed_fraction=0.5), set()),
    "the same template at another path": (lambda c, tmp: template_copy(c, tmp, XTB.read_text()), set()),
    "the template's content": (
        lambda c, tmp: template_copy(c, tmp, XTB.read_text().replace("EPS_SCF 1.0E-6", "EPS_SCF 1.0E-7")),
        EVERYTHING - {"bootstrap"},  # the rattled copies stay; every label and all that follows is redone
    ),
    "the seed": (lambda c, tmp: c.update(seed=c["seed"] + 1), EVERYTHING - {"isolated_atoms"}),
}


@pytest.fixture(scope="module")
def finished(pipeline_run, tmp_path_factory):
    """A copy of the finished tiny run (modification times and Snakemake's records kept)."""
    workdir = tmp_path_factory.mktemp("steering") / "run"
    shutil.copytree(pipeline_run, workdir, symlinks=True)
    return workdir


@pytest.mark.parametrize("case", list(CASES))
def test_a_config_change_replans_exactly_the_jobs_it_affects(finished, tmp_path, case):
    edit, expected = CASES[case]
    config = yaml.safe_load((finished / "config.yaml").read_text())
    original = yaml.safe_dump(config)
    edit(config, tmp_path)
    if case == "keys in another order":
        config = dict(reversed(list(config.items())))
    (finished / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        assert planned_jobs(finished) == expected
    finally:
        (finished / "config.yaml").write_text(original)


def test_the_unchanged_study_plans_nothing(finished):
    write_config(finished, yaml.safe_load((finished / "config.yaml").read_text()))
    assert planned_jobs(finished) == set()


def test_a_stop_criterion_ends_the_loop_and_tightening_it_continues_without_recomputing(pipeline_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stop") / "run"
    shutil.copytree(pipeline_run, workdir, symlinks=True)
    computed = {p: p.stat().st_mtime_ns for p in (workdir / "results").glob("iter_*/**/*") if p.is_file()}
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    # at most one iteration more, but stop as soon as the fresh labels' error is below 100 eV/Å: after iteration 1
    config.update(iterations=LAST + 1, stop={"force_rmse": 100.0})
    # which committee is final is what this test is about, not compiling it (about 75 s a time; test_models does)
    config["model"]["compile"] = False
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    decision = yaml.safe_load((workdir / paths.stop_decision(1)).read_text())
    assert decision["stop"] and "< 100 eV/Å" in decision["reason"]
    assert pd.read_csv(workdir / "results/summary/metrics.csv").iteration.max() == 1
    assert "iterations 0..1" in (workdir / "results/summary/summary.txt").read_text()
    assert not (workdir / paths.iteration_dir(LAST + 1)).exists() and not (workdir / paths.stop_decision(2)).exists()
    assert planned_jobs(workdir) == set()  # a stopped run plans nothing more
    # a target no committee meets: the run continues to the maximum, iteration LAST + 1 only
    config["stop"] = {"force_rmse": 1e-6}
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    assert [yaml.safe_load((workdir / paths.stop_decision(i)).read_text())["stop"] for i in range(1, LAST + 1)] == [
        False
    ] * LAST
    assert pd.read_csv(workdir / "results/summary/metrics.csv").iteration.max() == LAST + 1
    assert (workdir / paths.member_model(LAST + 1, 0)).is_file()
    assert {p: p.stat().st_mtime_ns for p in computed} == computed  # nothing of iterations 0..LAST recomputed
