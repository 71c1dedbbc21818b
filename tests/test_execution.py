"""The execution context: job resources from the config, Parsl configurations
for the local and SLURM providers, and a clean shutdown on error; a rule
script's process: Parsl's detail kept out of its log, and its quick end."""

import dataclasses
import logging
import os
import subprocess
import sys

import psutil
import pytest
from conftest import REPO, tiny_config

from psiflow_pipeline.config import validate
from psiflow_pipeline.execution import Execution, job_cores, job_resources, run_tasks
from psiflow_pipeline.logs import rule_log
from psiflow_pipeline.plumed import PlumedInputError, read_input


def execution_config(**groups) -> dict:
    config = tiny_config()
    config["execution"] = groups
    return validate(config, "tiny.yaml")["execution"]


def test_job_resources_carry_every_slurm_setting():
    execution = execution_config(
        account="chem42",
        train={"threads": 8, "gpus": 1, "mem_mb": 32000, "runtime_min": 480, "partition": "gpu",
               "slurm_extra": "--qos=high"},
    )  # fmt: skip
    assert job_resources(execution, "train", 8) == {
        "cpus_per_task": 8,
        "mem_mb": 32000,
        "runtime": 480,
        "slurm_partition": "gpu",
        "slurm_account": "chem42",
        "slurm_extra": "--qos=high",
        "gpu": 1,
    }
    # unset settings leave the cluster's defaults alone; the account holds for every job
    assert job_resources(execution, "evaluate", 2) == {
        "cpus_per_task": 2, "mem_mb": 4000, "runtime": 240, "slurm_account": "chem42"
    }  # fmt: skip


def test_job_cores_never_exceed_what_slurm_or_the_affinity_gives(monkeypatch):
    available = len(os.sched_getaffinity(0))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert job_cores(1000) == available and job_cores(1) == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert job_cores(1000) == 1


def test_local_provider_uses_the_job_cores():
    execution = Execution(cores=8, cores_per_task=2)
    assert execution.workers_per_node(tasks=100) == 4 and execution.workers_per_node(tasks=3) == 3
    config = execution.parsl_config("/tmp/run", tasks=100)
    executor = config.executors[0]
    assert type(executor.provider).__name__ == "LocalProvider" and executor.max_workers_per_node == 4
    assert config.retries == 1
    # a sample job's workers follow execution.sample.cores_per_task
    sample = Execution.from_config(execution_config(sample={"cores": 4, "cores_per_task": 2}), "sample", threads=1)
    assert sample.cores_per_task == 2


def test_tasks_in_threads_run_in_the_job_process_only_on_the_local_provider():
    local = Execution(cores=8, cores_per_task=2, in_threads=True).parsl_config("/tmp/run", tasks=3).executors[0]
    assert type(local).__name__ == "ThreadPoolExecutor" and local.max_threads == 3
    pilot = execution_config()["label"]["pilot"]
    slurm = Execution(cores=1, provider="slurm", pilot=pilot, in_threads=True).parsl_config("/tmp/run", tasks=3)
    assert type(slurm.executors[0]).__name__ == "HighThroughputExecutor"


def test_slurm_provider_submits_pilots_as_configured():
    settings = execution_config(
        account="chem42",
        label={"provider": "slurm", "task_retries": 2,
               "pilot": {"nodes": 2, "cores_per_node": 64, "max_pilots": 8, "mem_mb": 120000, "runtime_min": 90,
                         "partition": "cpu", "scheduler_options": "#SBATCH --qos=high",
                         "worker_init": "module load CP2K"}},
    )  # fmt: skip
    # labeling sets a single point's cores from reference.mpi_ranks x omp_threads
    execution = dataclasses.replace(Execution.from_config(settings, "label", threads=1), cores_per_task=8)
    config = execution.parsl_config("/tmp/run", tasks=1000)
    provider = config.executors[0].provider
    assert type(provider).__name__ == "SlurmProvider"
    assert (provider.partition, provider.account, provider.nodes_per_block) == ("cpu", "chem42", 2)
    assert (provider.cores_per_node, provider.mem_per_node, provider.max_blocks) == (64, 117, 8)
    assert provider.walltime == "01:30:00" and provider.exclusive is False
    assert type(provider.launcher).__name__ == "SrunLauncher"
    assert provider.worker_init.strip() == "module load CP2K"  # the library comes with the environment it activates
    assert config.executors[0].max_workers_per_node == 8 and config.retries == 2


def parsl_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if any("interchange" in part or "process_worker_pool" in part for part in process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def test_task_errors_are_data_and_parsl_shuts_down_when_the_caller_fails(tmp_path):
    # a library function the workers can import: it raises for a missing file
    inputs = [(tmp_path / "missing.dat",)] + [(p,) for p in sorted((REPO / "resources/plumed").glob("*.dat"))]
    results = dict(run_tasks(read_input, inputs, Execution(cores=2, retries=0), tmp_path / "a"))
    assert isinstance(results[0], PlumedInputError) and all(isinstance(results[k], list) for k in range(1, len(inputs)))
    with pytest.raises(RuntimeError):
        for _, result in run_tasks(read_input, inputs[1:], Execution(cores=2), tmp_path / "b"):
            raise RuntimeError(f"the caller fails on {result}")
    psutil.wait_procs(parsl_processes(), timeout=15)
    assert parsl_processes() == []


def test_mpi_tasks_get_one_slurm_task_per_rank_on_their_pilots():
    pilot = execution_config()["label"]["pilot"] | {"cores_per_node": 64}
    execution = Execution(cores=1, cores_per_task=16, ranks_per_task=8, provider="slurm", pilot=pilot)
    config = execution.parsl_config("/tmp/run", tasks=100)
    provider = config.executors[0].provider
    # 4 single points of 8 ranks x 2 threads: 32 SLURM tasks of 2 CPUs per node
    assert config.executors[0].max_workers_per_node == 4 and provider.cores_per_node is None
    assert "#SBATCH --ntasks-per-node=32\n#SBATCH --cpus-per-task=2\n" in provider.scheduler_options


def test_a_rule_log_keeps_parsls_warnings_and_leaves_its_detail_to_parsls_own_log(tmp_path):
    saved = logging.root.handlers[:], logging.root.level
    try:
        with rule_log(tmp_path / "rule.log") as log:
            inputs = [(p,) for p in sorted((REPO / "resources/plumed").glob("*.dat"))]
            execution = Execution(cores=2, in_threads=True)
            assert len(dict(run_tasks(read_input, inputs, execution, tmp_path / "parsl"))) == len(inputs)
            logging.getLogger("parsl.dataflow").warning("a warning of Parsl")
            log.info("done")
    finally:
        logging.root.handlers[:], logging.root.level = saved
    lines = (tmp_path / "rule.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines[1:]] == ["a warning of Parsl", "done"]
    assert "Task 0 submitted" in next((tmp_path / "parsl").glob("*/parsl.log")).read_text()


def test_a_rule_script_ends_without_teardown_and_keeps_its_log(tmp_path):
    log, teardown = tmp_path / "rule.log", tmp_path / "teardown"
    script = tmp_path / "script.py"
    script.write_text(
        "import atexit\n"
        "from psiflow_pipeline.logs import end_process, rule_log\n"
        f"atexit.register(lambda: open({str(teardown)!r}, 'w').close())\n"
        f"with rule_log({str(log)!r}) as log:\n"
        "    log.info('logged')\n"
        "    print('printed')\n"
        "end_process()\n"
    )
    subprocess.run([sys.executable, str(script)], check=True)
    assert "logged" in log.read_text() and "printed" in log.read_text()
    assert not teardown.exists()  # Python's teardown (atexit, finalizers) did not run
