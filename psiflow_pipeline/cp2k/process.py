"""A single point as a fresh CP2K process in a scratch folder."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from ase import Atoms

from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.output import SinglePoint, abort_message, parse_output
from psiflow_pipeline.cp2k.template import write_input
from psiflow_pipeline.data import Status


def single_point(
    atoms: Atoms, template: str, command: Cp2kCommand, stress: bool = False, workdir: str | None = None
) -> SinglePoint:
    """Run CP2K on `atoms` in a scratch folder; failures come back as data."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cp2k_", dir=workdir) as scratch:
        Path(scratch, "cp2k.inp").write_text(write_input(template, atoms, stress=stress))
        try:
            process = subprocess.run(
                command.argv("-i", "cp2k.inp", "-o", "cp2k.out"),
                cwd=scratch,
                env=command.environment(),
                capture_output=True,
                text=True,
                timeout=command.walltime_s,
            )
        except subprocess.TimeoutExpired:
            return SinglePoint(
                Status.FAILED, f"walltime of {command.walltime_s:g} s exceeded", seconds=command.walltime_s
            )
        except OSError as error:
            return SinglePoint(Status.FAILED, f"cannot start CP2K: {error}")
        output_path = Path(scratch, "cp2k.out")
        output = output_path.read_text(errors="replace") if output_path.exists() else ""
        result = parse_output(output, len(atoms))
        if process.returncode != 0 and result.reason != "SCF not converged":
            detail = abort_message(output) or (process.stderr.strip().splitlines() or ["no output"])[-1]
            result = SinglePoint(Status.FAILED, f"CP2K exited with {process.returncode}: {detail}"[:300])
    result.seconds = time.perf_counter() - start
    return result
