"""Scale: how long Snakemake takes to plan a large run, and Parsl's task throughput.

1. Planning: `snakemake -n` of a run with 50 iterations, 64 walkers and 200
   labels per iteration (nothing computed yet, and again with the first half
   of the iterations finished, as when a long run is resumed), against
   planning the 3-iteration default job.
2. Parsl: trivial tasks through psiflow's execution context (HTEX on the
   local provider) against a ProcessPoolExecutor with the same workers: start
   time, tasks per second, and the overhead per task relative to a 1 s single
   point.

    .venv/bin/python benchmarks/scale.py [--iterations 50] [--tasks 2000]
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from psiflow_pipeline.config import validate
from psiflow_pipeline.execution import Execution, run_tasks

REPO = Path(__file__).resolve().parents[1]


def noop(x):
    return x


def plan(workdir: Path, config: dict) -> tuple[float, int]:
    """Seconds for `snakemake -n` and the number of jobs it plans."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow/Snakefile"), "-d", str(workdir)]
    command += ["--configfile", str(workdir / "config.yaml"), "-n", "--cores", "64", "--quiet", "rules"]
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(process.stderr[-3000:])
    total = [line for line in process.stdout.splitlines() if line.startswith("total")]
    return seconds, int(total[0].split()[1]) if total else 0


def fake_finished(workdir: Path, iterations: int, committee: int) -> None:
    """Empty files standing for the outputs of iterations 0..iterations-1, oldest first."""
    names = ["candidates.h5", "walkers.h5", "selected.h5", "labeled.h5", "dataset.h5", "metrics.csv", "parity.npz"]
    for i in range(iterations):
        folder = workdir / f"results/iter_{i}"
        (folder / "colvar").mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).touch()
        for m in range(committee):
            (folder / f"models/member_{m}").mkdir(parents=True, exist_ok=True)
            (folder / f"models/member_{m}/model.nequip.zip").touch()
        time.sleep(0.01)  # strictly increasing mtimes along the chain


def parsl_throughput(tasks: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        execution = Execution(cores=workers)
        start = time.perf_counter()
        results = run_tasks(noop, [(k,) for k in range(tasks)], execution, scratch)
        first = next(results)
        started = time.perf_counter() - start
        count = 1 + sum(1 for _ in results)
        total = time.perf_counter() - start
    assert count == tasks and first is not None
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        pool_start = time.perf_counter()
        list(pool.map(noop, range(tasks)))
        pool_total = time.perf_counter() - pool_start
    return {"start_s": started, "total_s": total, "steady_s": total - started, "pool_s": pool_total}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--walkers", type=int, default=64)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    default["system"]["structures"] = [str(REPO / s) for s in default["system"]["structures"]]
    large = yaml.safe_load(yaml.safe_dump(default))
    large["iterations"] = args.iterations
    large["walkers"] = [{**large["walkers"][0], "count": args.walkers}]
    large.setdefault("selection", {})["max_per_iteration"] = args.labels

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "small").mkdir()
        (scratch / "large").mkdir()
        small_s, small_jobs = plan(scratch / "small", default)
        large_s, large_jobs = plan(scratch / "large", large)
        committee = validate(yaml.safe_load(yaml.safe_dump(large)), "large")["model"]["committee"]
        fake_finished(scratch / "large", args.iterations // 2, committee)
        resume_s, resume_jobs = plan(scratch / "large", large)
    print(f"plan (snakemake -n), {args.walkers} walkers, {args.labels} labels per iteration:")
    iterations = validate(yaml.safe_load(yaml.safe_dump(default)), "default")["iterations"]
    print(f"  default job ({iterations} iterations): {small_jobs} jobs in {small_s:.1f} s")
    print(
        f"  {args.iterations} iterations, nothing done: {large_jobs} jobs in {large_s:.1f} s ({large_s / small_s:.1f}x)"
    )
    print(
        f"  {args.iterations} iterations, half done: {resume_jobs} jobs in {resume_s:.1f} s ({resume_s / small_s:.1f}x)"
    )

    parsl = parsl_throughput(args.tasks, args.workers)
    rate = args.tasks / parsl["steady_s"]
    pool_rate = args.tasks / parsl["pool_s"]
    print(f"Parsl HTEX, local provider, {args.workers} workers, {args.tasks} trivial tasks:")
    print(f"  start until the first result: {parsl['start_s']:.1f} s")
    print(f"  throughput: {rate:.0f} tasks/s; ProcessPoolExecutor: {pool_rate:.0f} tasks/s ({pool_rate / rate:.1f}x)")
    print(f"  overhead per task: {1e3 / rate:.2f} ms = {100 / rate:.2f}% of a 1 s single point")


if __name__ == "__main__":
    main()
