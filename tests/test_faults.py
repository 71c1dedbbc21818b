"""Faults a long run meets, injected into real runs: the Snakemake process
killed during training, a Parsl worker process killed mid-task, a second run
on the same directory. (Killed during labeling, a CP2K shell that dies:
test_labeling; a SLURM job that fails: test_slurm.)"""

import os
import signal
import subprocess
import threading
import time

import psutil
from conftest import snakemake_command, snakemake_env, tiny_config, write_config

from psiflow_pipeline.data import read_h5
from psiflow_pipeline.execution import Execution, run_tasks


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_killed_during_training_resumes_without_retraining_finished_members(tmp_path):
    config = tiny_config()
    config["model"].update(max_epochs=30, patience=100)  # long enough for the kill to land mid-training
    write_config(tmp_path, config)
    target = "results/iter_0/metrics.csv"
    members = [tmp_path / f"results/iter_0/models/member_{m}/model.nequip.zip" for m in (0, 1)]
    # one core: the members train one after the other
    command = snakemake_command(tmp_path, "--cores", "1", target)
    process = subprocess.Popen(
        command, env=snakemake_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    training = [tmp_path / f"results/iter_0/models/member_{m}/training" for m in (0, 1)]
    wait_for(lambda: any(p.exists() for p in members), 600, "the first trained member")
    first = next(m for m in (0, 1) if members[m].exists())
    second = 1 - first
    wait_for(lambda: training[second].exists(), 120, "the second member's training")
    time.sleep(3)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not members[second].exists(), "the kill must land while the second member trains"
    finished = members[first].stat().st_mtime_ns
    first_log = (tmp_path / f"logs/train/iter_0_member_{first}.log").read_text()

    refused = subprocess.run(command, env=snakemake_env(), capture_output=True, text=True)
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr
    subprocess.run([*command, "--unlock"], env=snakemake_env(), check=True, capture_output=True)
    rerun = subprocess.run([*command, "--rerun-incomplete"], env=snakemake_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    output = rerun.stdout + rerun.stderr
    assert f"Train iteration 0, committee member {second}" in output
    assert f"Train iteration 0, committee member {first}" not in output
    assert "Label iteration 0" not in output
    assert members[first].stat().st_mtime_ns == finished
    assert (tmp_path / f"logs/train/iter_0_member_{first}.log").read_text() == first_log
    assert members[second].exists()
    # nothing left corrupt: every HDF5 file reads and passes its checks
    stores = sorted((tmp_path / "results").rglob("*.h5"))
    assert len(stores) >= 3
    for store in stores:
        assert len(read_h5(store)) > 0


def worker_of(process: psutil.Process) -> psutil.Process | None:
    """The Parsl worker (a Python process, never this test's) that started `process`."""
    for parent in process.parents():
        if parent.name().startswith("python") and parent.pid != os.getpid():
            return parent
    return None


def test_parsl_worker_killed_mid_task_is_retried(tmp_path):
    """A worker process (of a sample job, or of a label job's SLURM pilot)
    that dies mid-task: Parsl runs the task again on a new worker."""
    starts = tmp_path / "starts"
    command = ["bash", "-c", f"echo start >> {starts}; sleep 5; echo done"]
    results = {}

    def run():
        execution = Execution(cores=1, retries=1)
        results.update(run_tasks(subprocess.check_output, [(command,)], execution, tmp_path / "parsl"))

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(starts.exists, 120, "the task to start")
    killed = None
    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] == command and (worker := worker_of(process)) is not None:
            worker.kill()
            process.kill()
            killed = worker.pid
    thread.join(timeout=300)
    assert killed is not None, "the kill must land mid-task"
    assert results[0] == b"done\n" and starts.read_text().count("start") == 2


def test_second_run_on_the_same_directory_is_refused(tmp_path):
    write_config(tmp_path, tiny_config())
    target = "results/iter_0/labeled.h5"
    first = subprocess.Popen(
        snakemake_command(tmp_path, "--cores", "1", target),
        env=snakemake_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: list(tmp_path.glob(".snakemake/locks/*")), 120, "the first run's lock")
    second = subprocess.run(
        snakemake_command(tmp_path, "--cores", "1", target), env=snakemake_env(), capture_output=True, text=True
    )
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output[-3000:]
    assert set(read_h5(tmp_path / target).frame["status"]) == {"ok"}
