"""CP2K as the reference level of theory: input from a template, run, parse.

A template holds one `&FORCE_EVAL` (the method); psiflow adds the cell,
coordinates and force printing, and a `&GLOBAL` section.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

ENERGY_PATTERN = re.compile(r"ENERGY\| Total FORCE_EVAL \( \w+ \) energy \[(?:a\.u\.|hartree)\]:\s+(\S+)")
FORCE_HEADER = "ATOMIC FORCES in [a.u.]"


class TemplateError(ValueError):
    """A CP2K template that psiflow cannot use."""


def check_template(path) -> str:
    """Return the template text, or raise naming the file and line of the problem."""
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"{path}: CP2K input template not found (config key reference.input)")
    text = path.read_text()
    depth, force_evals, has_method = [], 0, False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("!")[0].split("#")[0].strip()
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("&END"):
            if not depth:
                raise TemplateError(f"{path}:{number}: '{line}' closes a section that was never opened")
            opened = depth.pop()
            closing = upper[4:].strip().split()
            if closing and closing[0] != opened:
                raise TemplateError(f"{path}:{number}: '{line}' closes &{opened}")
        elif upper.startswith("&"):
            name = upper[1:].split()[0]
            if name in ("COORD", "TOPOLOGY") or (name == "CELL" and depth == ["FORCE_EVAL", "SUBSYS"]):
                raise TemplateError(
                    f"{path}:{number}: the template sets &{name}; psiflow fills in coordinates and cell itself"
                )
            if name == "GLOBAL" or name == "MOTION":
                raise TemplateError(f"{path}:{number}: the template must hold only &FORCE_EVAL, not &{name}")
            if name == "FORCE_EVAL":
                force_evals += 1
            depth.append(name)
        elif depth == ["FORCE_EVAL"] and upper.split()[0] == "METHOD":
            has_method = True
    if depth:
        raise TemplateError(f"{path}: section &{depth[-1]} is never closed")
    if force_evals != 1:
        raise TemplateError(f"{path}: expected exactly one &FORCE_EVAL section, found {force_evals}")
    if not has_method and "&DFT" not in text.upper():
        raise TemplateError(f"{path}: &FORCE_EVAL has neither METHOD nor &DFT")
    return text


def _subsys(atoms: Atoms) -> str:
    cell = atoms.cell.array
    periodic = "".join(axis for axis, p in zip("XYZ", atoms.pbc) if p) or "NONE"
    if not atoms.pbc.any() and atoms.cell.rank < 3:
        # CP2K needs a box even for a molecule; make it enclose the atoms with margin
        extent = np.ptp(atoms.positions, axis=0) + 10.0
        cell = np.diag(extent)
    lines = ["  &SUBSYS", "    &CELL"]
    lines += [f"      {name} {' '.join(f'{x:.16f}' for x in vec)}" for name, vec in zip("ABC", cell)]
    lines += [f"      PERIODIC {periodic}", "    &END CELL", "    &COORD"]
    lines += [
        f"      {s} {x:.16f} {y:.16f} {z:.16f}" for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions)
    ]
    lines += ["    &END COORD", "  &END SUBSYS"]
    return "\n".join(lines)


def write_input(template: str, atoms: Atoms, project: str = "psiflow") -> str:
    """The full CP2K input for one energy+forces single point of `atoms`."""
    end = template.upper().rfind("&END FORCE_EVAL")
    force_print = "  &PRINT\n    &FORCES ON\n      NDIGITS 14\n    &END FORCES\n  &END PRINT"
    subsys = _subsys(atoms)
    match = re.search(r"^\s*&SUBSYS\b.*$", template, flags=re.IGNORECASE | re.MULTILINE)
    if match:  # keep the template's &KIND sections; add cell and coordinates inside its &SUBSYS
        inner = subsys.split("\n")[1:-1]
        body = template[: match.end()] + "\n" + "\n".join(inner) + template[match.end() : end]
    else:
        body = template[:end] + subsys + "\n"
    return (
        f"&GLOBAL\n  PROJECT {project}\n  RUN_TYPE ENERGY_FORCE\n  PRINT_LEVEL LOW\n&END GLOBAL\n"
        + body
        + force_print
        + "\n"
        + template[end:]
    )


@dataclass
class SinglePoint:
    """The result of one CP2K single point; energy in eV, forces in eV/Å."""

    status: str  # "ok" or "failed"
    reason: str = ""
    energy: float = float("nan")
    forces: np.ndarray | None = None
    seconds: float = 0.0


def parse_output(text: str, n_atoms: int) -> SinglePoint:
    if "SCF run NOT converged" in text:
        return SinglePoint("failed", "SCF not converged")
    energies = ENERGY_PATTERN.findall(text)
    if not energies:
        return SinglePoint("failed", "no energy in CP2K output")
    start = text.rfind(FORCE_HEADER)
    if start < 0:
        return SinglePoint("failed", "no forces in CP2K output")
    forces = []
    for line in text[start:].splitlines()[3 : 3 + n_atoms]:
        fields = line.split()
        forces.append([float(x) for x in fields[3:6]])
    forces = np.array(forces)
    if forces.shape != (n_atoms, 3):
        return SinglePoint("failed", f"forces block has {len(forces)} rows, expected {n_atoms}")
    return SinglePoint("ok", energy=float(energies[-1]) * Hartree, forces=forces * Hartree / Bohr)


@dataclass
class Cp2kCommand:
    """How to start CP2K: executable, MPI ranks and OpenMP threads per single point."""

    executable: str = "cp2k.psmp"
    mpi_ranks: int = 1
    omp_threads: int = 1
    launcher: str = "mpirun -np {ranks}"
    walltime_s: float = 3600.0

    def argv(self, input_file: str, output_file: str) -> list[str]:
        argv = [self.executable, "-i", input_file, "-o", output_file]
        if self.mpi_ranks > 1:
            argv = shlex.split(self.launcher.format(ranks=self.mpi_ranks)) + argv
        return argv

    def environment(self) -> dict:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.omp_threads))
        # mpirun refuses root unless told; containers and CI often run as root
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        return env


def single_point(atoms: Atoms, template: str, command: Cp2kCommand, workdir: str | None = None) -> SinglePoint:
    """Run CP2K on `atoms` in a scratch folder; failures come back as data."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cp2k_", dir=workdir) as scratch:
        Path(scratch, "cp2k.inp").write_text(write_input(template, atoms))
        try:
            process = subprocess.run(
                command.argv("cp2k.inp", "cp2k.out"),
                cwd=scratch,
                env=command.environment(),
                capture_output=True,
                text=True,
                timeout=command.walltime_s,
            )
        except subprocess.TimeoutExpired:
            return SinglePoint("failed", f"walltime of {command.walltime_s:g} s exceeded", seconds=command.walltime_s)
        except OSError as error:
            return SinglePoint("failed", f"cannot start CP2K: {error}")
        output_path = Path(scratch, "cp2k.out")
        output = output_path.read_text(errors="replace") if output_path.exists() else ""
        result = parse_output(output, len(atoms))
        if process.returncode != 0 and result.reason != "SCF not converged":
            detail = _abort_message(output) or (process.stderr.strip().splitlines() or ["no output"])[-1]
            result = SinglePoint("failed", f"CP2K exited with {process.returncode}: {detail}"[:300])
    result.seconds = time.perf_counter() - start
    return result


def _abort_message(output: str) -> str:
    """The message inside CP2K's ABORT banner, if any."""
    lines = output.splitlines()
    for k, line in enumerate(lines):
        if "[ABORT]" in line:
            text = " ".join(part.strip(" *") for part in lines[k + 1 : k + 4] if part.strip(" *"))
            return text.strip()
    return ""
