"""The execution context: Parsl runs a rule's fine-grained tasks (one per
walker, one per single point) over the cores that the rule was given."""

from __future__ import annotations

import concurrent.futures
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]


def local_config(workers: int, run_dir, retries: int = 0):
    """HighThroughputExecutor with `workers` worker processes on this node."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    # workers import the library by module name, as the rule script does;
    # appended (as Snakemake does) so that no script shadows a standard module
    worker_init = f"export PYTHONPATH=${{PYTHONPATH:+$PYTHONPATH:}}{SCRIPTS}"
    return Config(
        executors=[
            HighThroughputExecutor(
                label="local",
                address="127.0.0.1",
                max_workers_per_node=workers,
                cores_per_worker=1,
                heartbeat_period=5,
                heartbeat_threshold=30,
                provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1, worker_init=worker_init),
            )
        ],
        run_dir=str(run_dir),
        retries=retries,
        usage_tracking=0,
    )


def run_tasks(function: Callable, arguments: Iterable[tuple], workers: int, run_dir) -> Iterator[tuple[int, object]]:
    """Run `function(*args)` for every tuple of `arguments` as Parsl tasks.

    Yields `(index, result)` as tasks finish, so that callers can store each
    result at once; an exception raised by a task is yielded as the result.
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
    app = parsl.python_app(function, executors=["local"])
    with parsl.load(local_config(max(1, min(workers, len(arguments))), run_dir)):
        futures = {app(*args): index for index, args in enumerate(arguments)}
        for future in concurrent.futures.as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # a task's failure is data for the caller
                yield futures[future], error
