"""Labeling: one CP2K single point per selected frame, run as Parsl tasks,
each finished one cached on disk so that a killed run loses nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.output import SinglePoint
from psiflow_pipeline.cp2k.process import single_point
from psiflow_pipeline.cp2k.shell import close_sessions, persistent_single_point
from psiflow_pipeline.data import Frames, Status, replace_atomically
from psiflow_pipeline.execution import Execution, run_tasks
from psiflow_pipeline.logs import Progress


def label_task(
    atoms: Atoms, template: str, command: Cp2kCommand, persistent: bool, stress: bool, scratch: str
) -> SinglePoint:
    if persistent:
        return persistent_single_point(atoms, template, command, stress, workdir=scratch)
    return single_point(atoms, template, command, stress, workdir=scratch)


class LabelCache:
    """Finished single points, one file each, keyed by the frame identifier and
    a hash of everything that determines the result (template and geometry)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(identifier: str, atoms: Atoms, template: str, stress: bool) -> str:
        digest = hashlib.sha256(f"{template}\nstress={stress}".encode())
        for array in (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc):
            digest.update(np.ascontiguousarray(array).tobytes())
        return f"{identifier}-{digest.hexdigest()[:16]}"

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> SinglePoint | None:
        path = self.path(key)
        if not path.exists():
            return None
        with np.load(path) as stored:
            stress = stored["stress"] if stored["stress"].shape == (3, 3) else None
            return SinglePoint(Status.OK, energy=float(stored["energy"]), forces=stored["forces"], stress=stress)

    def store(self, key: str, result: SinglePoint) -> None:
        stress = result.stress if result.stress is not None else np.zeros(0)
        replace_atomically(
            self.path(key), lambda tmp: np.savez(tmp, energy=result.energy, forces=result.forces, stress=stress)
        )

    def __len__(self) -> int:
        return len(list(self.directory.glob("*.npz")))


def label(
    frames: Frames,
    template: str,
    command: Cp2kCommand,
    execution: Execution,
    run_dir,
    cache_dir,
    persistent: bool = True,
    stress: bool = False,
) -> Frames:
    """Energies and forces for every frame; failures are recorded, not raised.

    Single points found in the cache are not recomputed; every successful
    new one is cached as soon as it arrives, and logged with the count so far
    and an estimate of the time left. Failed ones are computed again by a rerun.
    """
    log = logging.getLogger("psiflow")
    labeled = frames.take(np.arange(len(frames)))
    labeled.atom["forces"][:] = np.nan
    labeled.frame["energy"][:] = np.nan
    labeled.frame["stress"][:] = np.nan
    cache = LabelCache(cache_dir)
    images = [frames.to_atoms(k) for k in range(len(frames))]
    keys = [LabelCache.key(str(frames.frame["identifier"][k]), images[k], template, stress) for k in range(len(frames))]

    def record(k: int, result: SinglePoint) -> None:
        labeled.frame["status"][k] = result.status
        labeled.frame["reason"][k] = result.reason
        if result.status == Status.OK:
            labeled.frame["energy"][k] = result.energy
            labeled.atom["forces"][labeled.atoms_of(k)] = result.forces
            if result.stress is not None:
                labeled.frame["stress"][k] = result.stress

    todo = []
    for k in range(len(frames)):
        cached = cache.load(keys[k])
        if cached is None:
            todo.append(k)
        else:
            record(k, cached)
    log.info("%d single points from the cache, %d to compute", len(frames) - len(todo), len(todo))
    scratch = Path(run_dir).resolve() / "scratch"  # CP2K's files, next to Parsl's logs
    scratch.mkdir(parents=True, exist_ok=True)
    tasks = [(images[k], template, command, persistent, stress, str(scratch)) for k in todo]
    # one worker per single point's worth of cores (MPI ranks x OpenMP threads);
    # a task waits on CP2K's own process, so local workers can be threads
    execution = dataclasses.replace(
        execution,
        cores_per_task=command.mpi_ranks * command.omp_threads,
        ranks_per_task=command.mpi_ranks,
        in_threads=True,
    )
    progress = Progress(len(frames), "single points", log, done=len(frames) - len(todo))
    start, busy = time.perf_counter(), 0.0
    try:
        for index, result in run_tasks(label_task, tasks, execution, run_dir):
            k = todo[index]
            if isinstance(result, Exception):
                result = SinglePoint(Status.FAILED, f"task error: {result!r}"[:300])
            if result.status == Status.OK:
                cache.store(keys[k], result)
            record(k, result)
            busy += result.seconds
            progress.finished(f"{keys[k]}: {result.status} {result.reason} ({result.seconds:.1f} s)".replace("  ", " "))
    finally:
        close_sessions()  # the shells of workers that were threads of this process
    if todo and execution.provider == "local":
        workers = execution.workers_per_node(len(todo))
        elapsed = time.perf_counter() - start
        # the rest of the workers' time: Parsl's and CP2K's start, and waiting for the last single points
        log.info(
            "%d single points in %.1f s on %d workers: worker use %.0f %% (Parsl's start included)",
            len(todo), elapsed, workers, 100 * busy / (workers * elapsed),
        )  # fmt: skip
    return labeled


def check_failures(labeled: Frames, max_failed_fraction: float, source: str) -> None:
    failed = labeled.frame["status"] != Status.OK
    if len(labeled) and failed.mean() > max_failed_fraction:
        reasons = {}
        for reason in labeled.frame["reason"][failed]:
            reasons[reason] = reasons.get(reason, 0) + 1
        summary = "; ".join(f"{n}x {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
        raise RuntimeError(
            f"{source}: {failed.sum()} of {len(labeled)} single points failed, more than "
            f"reference.max_failed_fraction={max_failed_fraction}: {summary}"
        )
