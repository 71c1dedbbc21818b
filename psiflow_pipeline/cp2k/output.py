"""CP2K output: energy, forces, stress and SCF state, in eV and Å."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from ase.units import Bohr, GPa, Hartree

from psiflow_pipeline.data import Status

ENERGY_PATTERN = re.compile(r"ENERGY\| Total FORCE_EVAL \( \w+ \) energy \[(?:a\.u\.|hartree)\]:\s+(\S+)")
FORCE_HEADER = "ATOMIC FORCES in [a.u.]"


@dataclass
class SinglePoint:
    """The result of one CP2K single point; energy in eV, forces in eV/Å."""

    status: Status  # ok or failed
    reason: str = ""
    energy: float = float("nan")
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None  # 3x3, eV/Å^3, ASE's sign convention
    seconds: float = 0.0


STRESS_HEADER = "STRESS| Analytical stress tensor [GPa]"


def parse_stress(text: str) -> np.ndarray | None:
    """CP2K's last analytical stress tensor in eV/Å^3; CP2K's sign is ASE's opposite."""
    start = text.rfind(STRESS_HEADER)
    if start < 0:
        return None
    rows = text[start:].splitlines()[2:5]
    values = np.array([[float(x) for x in row.split()[2:5]] for row in rows])
    return -values * GPa


def parse_output(text: str, n_atoms: int) -> SinglePoint:
    if "SCF run NOT converged" in text:
        return SinglePoint(Status.FAILED, "SCF not converged")
    energies = ENERGY_PATTERN.findall(text)
    if not energies:
        return SinglePoint(Status.FAILED, "no energy in CP2K output")
    start = text.rfind(FORCE_HEADER)
    if start < 0:
        return SinglePoint(Status.FAILED, "no forces in CP2K output")
    forces = []
    for line in text[start:].splitlines()[3 : 3 + n_atoms]:
        fields = line.split()
        forces.append([float(x) for x in fields[3:6]])
    forces = np.array(forces)
    if forces.shape != (n_atoms, 3):
        return SinglePoint(Status.FAILED, f"forces block has {len(forces)} rows, expected {n_atoms}")
    return SinglePoint(
        Status.OK, energy=float(energies[-1]) * Hartree, forces=forces * Hartree / Bohr, stress=parse_stress(text)
    )


def abort_message(output: str) -> str:
    """The message inside CP2K's ABORT banner (without its ASCII art), if any."""
    lines = output.splitlines()
    for k, line in enumerate(lines):
        if "[ABORT]" in line:
            words = []
            for part in lines[k + 1 : k + 8]:
                if set(part.strip()) <= {"*"}:
                    break
                words.append(re.sub(r"^[\\/_|O ]+", "", part.strip(" *")))
            return " ".join(w for w in words if w).strip()
    return ""
