"""The execution context: Parsl runs a rule's fine-grained tasks (one per
walker, one per single point) on the cores that the rule's job was given, or
on SLURM pilot jobs that the rule submits itself."""

from __future__ import annotations

import concurrent.futures
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

EXECUTOR = "tasks"
# seconds between Parsl's scaling decisions (and provider status polls) per provider
STRATEGY_PERIOD_S = {"local": 0.5, "slurm": 5.0}


def job_resources(execution: dict, group: str, cpus: int) -> dict:
    """Snakemake resources of a job from config execution.<group>, named as
    snakemake-executor-plugin-slurm reads them; local runs use cpus and mem_mb."""
    settings = execution[group]
    resources = {"cpus_per_task": cpus, "mem_mb": settings["mem_mb"], "runtime": settings["runtime_min"]}
    optional = {
        "slurm_partition": settings["partition"],
        "slurm_account": execution["account"],
        "slurm_extra": settings["slurm_extra"],
        "gpu": settings.get("gpus"),
    }
    resources.update({key: value for key, value in optional.items() if value})
    return resources


def job_cores(threads: int) -> int:
    """The cores this job may use: Snakemake's threads, never more than the
    CPUs SLURM (or taskset) bound the process to."""
    cores = min(threads, len(os.sched_getaffinity(0)))
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        cores = min(cores, int(os.environ["SLURM_CPUS_PER_TASK"]))
    return max(1, cores)


@dataclass(frozen=True)
class Execution:
    """Where a rule's tasks run, built from one group of the config's execution section.

    provider local: `cores` of this job, `cores // cores_per_task` workers.
    provider slurm: pilot jobs of `pilot.nodes` nodes with `pilot.cores_per_node`
    cores each, submitted through sbatch by Parsl, at most `pilot.max_pilots`.
    `in_threads`: the tasks only drive programs in processes of their own
    (CP2K), so on the local provider the workers are threads of the job's
    process: nothing to start, no interchange between the job and its workers.
    """

    cores: int
    cores_per_task: int = 1
    ranks_per_task: int = 1
    provider: str = "local"
    retries: int = 1
    pilot: dict = field(default_factory=dict)
    account: str | None = None
    in_threads: bool = False

    @classmethod
    def from_config(cls, execution: dict, group: str, threads: int) -> Execution:
        settings = execution[group]
        return cls(
            cores=job_cores(threads),
            # label has none: a single point's cores follow from reference (see labeling.label)
            cores_per_task=settings.get("cores_per_task", 1),
            provider=settings["provider"],
            retries=settings["task_retries"],
            pilot=dict(settings["pilot"]),
            account=execution.get("account"),
        )

    def workers_per_node(self, tasks: int) -> int:
        cores = self.pilot["cores_per_node"] if self.provider == "slurm" else self.cores
        return max(1, min(cores // self.cores_per_task, tasks))

    def worker_init(self) -> str:
        """Shell lines before the workers start: the pilot's `worker_init`
        (e.g. activating the environment that holds the library)."""
        return self.pilot.get("worker_init", "") if self.provider == "slurm" else ""

    def provider_of(self):
        if self.provider == "local":
            from parsl.providers import LocalProvider

            return LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1, worker_init=self.worker_init())
        from parsl.launchers import SingleNodeLauncher, SrunLauncher
        from parsl.providers import SlurmProvider

        pilot = self.pilot
        minutes = pilot["runtime_min"]
        options, cores_per_node = pilot["scheduler_options"], pilot["cores_per_node"]
        if self.ranks_per_task > 1:
            # MPI tasks: the pilot holds one SLURM task per rank, so that the
            # launcher (srun or mpirun) inside it finds the ranks; Parsl's own
            # --cpus-per-task (all cores in one SLURM task) is then left out
            threads = max(1, self.cores_per_task // self.ranks_per_task)
            options += f"\n#SBATCH --ntasks-per-node={cores_per_node // threads}\n#SBATCH --cpus-per-task={threads}\n"
            cores_per_node = None
        return SlurmProvider(
            partition=pilot["partition"],
            account=self.account,
            nodes_per_block=pilot["nodes"],
            cores_per_node=cores_per_node,
            mem_per_node=None if pilot["mem_mb"] is None else max(1, pilot["mem_mb"] // 1024),
            init_blocks=1,
            min_blocks=0,
            max_blocks=pilot["max_pilots"],
            walltime=f"{minutes // 60:02d}:{minutes % 60:02d}:00",
            scheduler_options=options,
            worker_init=self.worker_init(),
            # share nodes with other jobs: a pilot asks only for the cores it uses
            exclusive=False,
            launcher=SrunLauncher() if pilot["nodes"] > 1 else SingleNodeLauncher(),
        )

    def parsl_config(self, run_dir, tasks: int):
        from parsl.config import Config
        from parsl.executors import HighThroughputExecutor, ThreadPoolExecutor

        local = self.provider == "local"
        if local and self.in_threads:
            executor = ThreadPoolExecutor(label=EXECUTOR, max_threads=self.workers_per_node(tasks))
        else:
            executor = HighThroughputExecutor(
                label=EXECUTOR,
                address="127.0.0.1" if local else self.pilot["address"],
                max_workers_per_node=self.workers_per_node(tasks),
                cores_per_worker=1,
                heartbeat_period=5,
                heartbeat_threshold=30,
                provider=self.provider_of(),
            )
        return Config(
            executors=[executor],
            run_dir=str(run_dir),
            # Parsl submits even the initial block on the scaling strategy's
            # first tick, one period after start (5 s by default): on this
            # machine's local provider a status poll is a cheap local check
            strategy_period=STRATEGY_PERIOD_S[self.provider],
            retries=self.retries,
            usage_tracking=0,
        )


def run_tasks(
    function: Callable, arguments: Iterable[tuple], execution: Execution, run_dir
) -> Iterator[tuple[int, object]]:
    """Run `function(*args)` for every tuple of `arguments` as Parsl tasks.

    Yields `(index, result)` as tasks finish, so that callers can store each
    result at once; an exception raised by a task (after its retries) is
    yielded as the result. Parsl is shut down on every exit, also on error,
    so no interchange, worker or pilot job outlives the rule.
    """
    import parsl

    # HTEX starts its interchange and workers by command name: they must come
    # from the environment that runs this script.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    arguments = list(arguments)
    if not arguments:
        return
    app = parsl.python_app(function, executors=[EXECUTOR])
    with parsl.load(execution.parsl_config(Path(run_dir).resolve(), len(arguments))):
        futures = {app(*args): index for index, args in enumerate(arguments)}
        for future in concurrent.futures.as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # a task's failure is data for the caller
                yield futures[future], error
