"""The pipeline on a real one-node SLURM cluster (scripts/slurm_cluster.sh):
jobs go through sbatch via profiles/slurm, the sample and label steps' Parsl
context submits its own pilot jobs, a cancelled job is retried by Snakemake,
and MPI single points run inside a pilot."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from conftest import REPO, snakemake_command, snakemake_env, tiny_config, write_config

from psiflow_pipeline.bootstrap import rattled_frames
from psiflow_pipeline.config import validate
from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.process import single_point
from psiflow_pipeline.cp2k.template import check_template
from psiflow_pipeline.data import read_h5
from psiflow_pipeline.execution import Execution, run_tasks
from psiflow_pipeline.labeling import label
from psiflow_pipeline.plumed import read_input

CLUSTER = REPO / "scripts" / "slurm_cluster.sh"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running cluster, stopped afterwards whatever happens; yields its state folder."""
    if os.geteuid() != 0 or not shutil.which("slurmctld"):
        pytest.skip("the local SLURM cluster needs root and slurm-wlm ('make test' installs it as root)")
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(state / "slurm.conf")
    try:
        yield state
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", str(state)], capture_output=True)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def job_records(state: Path) -> dict[int, dict]:
    """SLURM's record of every finished job (jobcomp/filetxt), by job id."""
    records = {}
    log = state / "jobcomp.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records[int(fields["JobId"])] = fields
    return records


def squeue(*columns) -> list[list[str]]:
    process = subprocess.run(["squeue", "-h", "-o", " ".join(columns)], capture_output=True, text=True, check=True)
    return [line.split() for line in process.stdout.splitlines()]


def test_pipeline_runs_through_sbatch_with_pilot_jobs_and_a_cancelled_job_is_retried(slurm, tmp_path):
    config = tiny_config(iterations=1)
    config["model"]["compile"] = False
    job = {"mem_mb": 1000, "runtime_min": 30}
    config["execution"] = {
        "retries": 1,
        "sample": {"provider": "slurm", "pilot": {"cores_per_node": 2, "runtime_min": 10}},
        "label": {"provider": "slurm", "pilot": {"cores_per_node": 2, "runtime_min": 10}},
        "train": {"threads": 1, **job},
        "evaluate": {"threads": 2, **job},
    }
    write_config(tmp_path, config)
    command = snakemake_command(tmp_path, "--profile", str(REPO / "profiles" / "slurm"))
    log = open(tmp_path / "snakemake.log", "w")
    process = subprocess.Popen(command, cwd=tmp_path, env=snakemake_env(), stdout=log, stderr=subprocess.STDOUT)

    # fault injection: cancel the first train job a few seconds into its run, as a node failure would
    cancelled, running_since = None, {}
    deadline = time.time() + 900
    while process.poll() is None and time.time() < deadline:
        if cancelled is None:
            for job_id, comment, state in squeue("%i", "%k", "%T"):
                if comment.startswith("rule_train") and state == "RUNNING":
                    if time.time() - running_since.setdefault(job_id, time.time()) > 3:
                        subprocess.run(["scancel", job_id], check=True)
                        cancelled = int(job_id)
                        break
        time.sleep(0.5)
    if process.poll() is None:
        process.kill()
    log.close()
    output = (tmp_path / "snakemake.log").read_text()
    assert process.wait() == 0, output[-5000:]
    assert cancelled is not None, "no train job was caught running"

    records = job_records(slurm)
    # the rule and wildcards of each Snakemake job, from the plugin's per-job SLURM logs
    rule_of = {
        int(p.stem): p.parent.relative_to(tmp_path / "logs/slurm").as_posix()
        for p in tmp_path.glob("logs/slurm/**/*.log")
    }
    assert records[cancelled]["JobState"] == "CANCELLED"
    retried = rule_of[cancelled]
    attempts = sorted(j for j, r in rule_of.items() if r == retried)
    assert len(attempts) == 2 and records[attempts[-1]]["JobState"] == "COMPLETED"
    assert f"SLURM-job '{cancelled}' failed" in output

    # every other Snakemake job went through sbatch with the config's resources, once
    completed = {rule_of[j] for j in rule_of if records[j]["JobState"] == "COMPLETED"}
    expected = {"rule_isolated_atoms", "rule_evaluate/0", "rule_evaluate/1", "rule_validate"}
    expected |= {f"rule_train/{i}_{m}" for i in (0, 1) for m in (0, 1)}
    assert completed == expected
    for j, rule in rule_of.items():
        if rule.startswith("rule_train"):
            assert records[j]["ProcCnt"] == "1" and "mem=1000M" in records[j]["Tres"]
            assert records[j]["TimeLimit"] == "30"

    # walkers and single points ran on Parsl pilot jobs (2 cores each), one per sample or
    # label step, submitted from the Snakemake process; none is left behind
    pilots = [r for r in records.values() if r["Name"].startswith("parsl.")]
    assert len(pilots) == 3 and all(r["ProcCnt"] == "2" for r in pilots)
    assert not (tmp_path / "logs/slurm/rule_label").exists() and not (tmp_path / "logs/slurm/rule_sample").exists()
    for step in ("label/iter_1", "sample/iter_1"):
        assert list((tmp_path / f"logs/parsl/{step}").glob("*/submit_scripts/parsl.tasks.block-*.stdout"))
    assert squeue("%i") == []
    for i in (0, 1):
        labeled = read_h5(tmp_path / f"results/iter_{i}/labeled.h5")
        assert len(labeled) > 0 and set(labeled.frame["status"]) == {"ok"}
    assert (tmp_path / "results/summary/metrics.csv").exists()


def test_mpi_single_points_run_on_a_pilot_job_with_one_slurm_task_per_rank(slurm, tmp_path):
    frames = rattled_frames([read(REPO / "resources/structures/water_8.xyz")], 4, 0.05, 0.0, seed=5)
    template = check_template(REPO / "resources/cp2k/xtb.inp")
    pilot = validate(tiny_config(), "tiny.yaml")["execution"]["label"]["pilot"]
    pilot.update(cores_per_node=4, runtime_min=10)
    # two single points of 2 MPI ranks at once on a 4-core pilot
    command = Cp2kCommand(mpi_ranks=2, launcher="mpirun --bind-to none -np {ranks}")
    execution = Execution(cores=1, provider="slurm", pilot=pilot)
    before = set(job_records(slurm))
    labeled = label(frames, template, command, execution, tmp_path / "parsl", tmp_path / "cache")
    assert list(labeled.frame["status"]) == ["ok"] * 4, labeled.frame["reason"]
    outputs = list((tmp_path / "parsl/scratch").glob("*/cp2k.out"))
    assert outputs and all(re.search(r"message passing processes\s+2\n", p.read_text()) for p in outputs)
    direct = single_point(frames.to_atoms(0), template, Cp2kCommand())
    assert abs(labeled.frame["energy"][0] - direct.energy) < 1e-5
    assert np.abs(labeled.atom["forces"][labeled.atoms_of(0)] - direct.forces).max() < 1e-4
    wait = time.time() + 30
    while not set(job_records(slurm)) - before and time.time() < wait:
        time.sleep(0.5)  # the pilot's record is written when Parsl has cancelled it
    (pilot_record,) = [job_records(slurm)[j] for j in set(job_records(slurm)) - before]
    assert pilot_record["Name"].startswith("parsl.") and pilot_record["ProcCnt"] == "4"


def test_pilot_jobs_are_cancelled_when_the_step_fails(slurm, tmp_path):
    pilot = validate(tiny_config(), "tiny.yaml")["execution"]["label"]["pilot"] | {"runtime_min": 10}
    inputs = [(p,) for p in sorted((REPO / "resources/plumed").glob("*.dat"))]
    with pytest.raises(RuntimeError, match="the step fails"):
        for _ in run_tasks(read_input, inputs, Execution(cores=1, provider="slurm", pilot=pilot), tmp_path):
            assert squeue("%j")  # a pilot job runs the tasks
            raise RuntimeError("the step fails after its first result")
    wait = time.time() + 30
    while squeue("%i") and time.time() < wait:
        time.sleep(0.5)
    assert squeue("%i") == []
