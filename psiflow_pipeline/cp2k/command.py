"""How CP2K is started: executable, MPI launcher, threads and environment."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass


@dataclass
class Cp2kCommand:
    """How to start CP2K: executable, MPI ranks and OpenMP threads per single point."""

    executable: str = "cp2k.psmp"
    mpi_ranks: int = 1
    omp_threads: int = 1
    launcher: str = "mpirun -np {ranks}"
    walltime_s: float = 3600.0

    def argv(self, *arguments: str) -> list[str]:
        argv = [self.executable, *arguments]
        if self.mpi_ranks > 1:
            argv = shlex.split(self.launcher.format(ranks=self.mpi_ranks)) + argv
        return argv

    def settings(self) -> dict:
        """Environment variables that CP2K needs on top of the caller's."""
        settings = {"OMP_NUM_THREADS": str(self.omp_threads)}
        # mpirun refuses root unless told; containers and CI often run as root
        for name in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"):
            settings[name] = os.environ.get(name, "1")
        # the other ranks of a persistent shell wait for its next frame: let them
        # yield their core meanwhile instead of spinning
        settings["OMPI_MCA_mpi_yield_when_idle"] = os.environ.get("OMPI_MCA_mpi_yield_when_idle", "1")
        return settings

    def hidden(self) -> list[str]:
        """Variables CP2K must not see: inside a SLURM job step, an MPI built
        without SLURM's PMI takes a single-rank CP2K for an srun-launched rank
        and aborts in MPI_Init. A single rank needs no launcher, so it gets
        no SLURM or PMI variables; with a launcher they stay (srun needs them)."""
        if self.mpi_ranks > 1:
            return []
        return sorted(name for name in os.environ if name.startswith(("SLURM_", "PMI")))

    def environment(self) -> dict:
        hidden = set(self.hidden())
        return {k: v for k, v in os.environ.items() if k not in hidden} | self.settings()

    def env_command(self) -> list[str]:
        """`env` arguments that give a shell command the same environment."""
        argv = ["env"]
        for name in self.hidden():
            argv += ["-u", name]
        return argv + [f"{k}={v}" for k, v in self.settings().items()]


def command_from_config(label: dict) -> Cp2kCommand:
    """How CP2K runs, from the config's `execution.label`."""
    return Cp2kCommand(
        executable=label["executable"],
        mpi_ranks=label["mpi_ranks"],
        omp_threads=label["omp_threads"],
        launcher=label["launcher"],
        walltime_s=label["walltime_s"],
    )
