"""Labeling: one CP2K single point per selected frame, run as Parsl tasks."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psiflow.cp2k import Cp2kCommand, SinglePoint, single_point
from psiflow.data import Frames
from psiflow.execution import run_tasks


def command_from_config(reference: dict) -> Cp2kCommand:
    return Cp2kCommand(
        executable=reference["executable"],
        mpi_ranks=reference["mpi_ranks"],
        omp_threads=reference["omp_threads"],
        launcher=reference["launcher"],
        walltime_s=reference["walltime_s"],
    )


def label_task(atoms: Atoms, template: str, command: Cp2kCommand) -> SinglePoint:
    return single_point(atoms, template, command)


def label(frames: Frames, template: str, command: Cp2kCommand, cores: int, run_dir) -> tuple[Frames, list[str]]:
    """Energies and forces for every frame; failures are recorded, not raised."""
    labeled = frames.take(np.arange(len(frames)))
    labeled.atom["forces"][:] = np.nan
    labeled.frame["energy"][:] = np.nan
    cores_per_task = command.mpi_ranks * command.omp_threads
    tasks = [(frames.to_atoms(k), template, command) for k in range(len(frames))]
    log = []
    for k, result in run_tasks(label_task, tasks, max(1, cores // cores_per_task), run_dir):
        if isinstance(result, Exception):
            result = SinglePoint("failed", f"task error: {result!r}"[:300])
        labeled.frame["status"][k] = result.status
        labeled.frame["reason"][k] = result.reason
        if result.status == "ok":
            labeled.frame["energy"][k] = result.energy
            labeled.atom["forces"][labeled.atoms_of(k)] = result.forces
        log.append(f"{labeled.frame['identifier'][k]}: {result.status} {result.reason} ({result.seconds:.1f} s)")
    return labeled, log


def check_failures(labeled: Frames, max_failed_fraction: float, source: str) -> None:
    failed = labeled.frame["status"] != "ok"
    if len(labeled) and failed.mean() > max_failed_fraction:
        reasons = {}
        for reason in labeled.frame["reason"][failed]:
            reasons[reason] = reasons.get(reason, 0) + 1
        summary = "; ".join(f"{n}x {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
        raise RuntimeError(
            f"{source}: {failed.sum()} of {len(labeled)} single points failed, more than "
            f"reference.max_failed_fraction={max_failed_fraction}: {summary}"
        )
