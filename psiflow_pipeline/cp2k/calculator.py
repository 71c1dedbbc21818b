"""CP2K as an ASE calculator, through the persistent shell: for reference-level
MD (independent test sets, reference NPT runs), never inside the loop."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, CalculatorError, all_changes

from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.shell import persistent_single_point
from psiflow_pipeline.data import Status


class Cp2kCalculator(Calculator):
    """Energy, forces and (for periodic cells, with `stress`) the stress of a
    CP2K template, in eV, eV/Å and eV/Å³ (ASE's sign convention). Counts its
    single points in `calls`."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, template: str, command: Cp2kCommand | None = None, stress: bool = False, workdir=None):
        super().__init__()
        self.template, self.command, self.stress = template, command or Cp2kCommand(), stress
        self.workdir = workdir
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        result = persistent_single_point(
            self.atoms, self.template, self.command, self.stress, self.workdir, trajectory=True
        )
        self.calls += 1
        if result.status != Status.OK:
            raise CalculatorError(f"CP2K single point failed: {result.reason}")
        self.results = {"energy": result.energy, "free_energy": result.energy, "forces": result.forces}
        if result.stress is not None:
            stress = np.asarray(result.stress)
            self.results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]  # Voigt: xx yy zz yz xz xy
