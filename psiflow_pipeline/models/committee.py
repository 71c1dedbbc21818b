"""Loading models, and the committee calculator whose force disagreement drives selection."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from psiflow_pipeline.models import scan_installed_packages_once
from psiflow_pipeline.models.uncertainty import uncertainty


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_calculator(path, device: str | None = None, batched: bool = False):
    """A calculator for a packaged (.nequip.zip) or compiled (.nequip.pt2)
    model: ASE's, or with `batched` torch-sim's, which evaluates many
    structures in one forward pass."""
    scan_installed_packages_once()
    if batched:
        from nequip.integrations.torchsim import NequIPTorchSimCalc as Integration
    else:
        from nequip.integrations.ase import NequIPCalculator as Integration

    device = device or default_device()
    if str(path).endswith(".pt2"):
        return Integration.from_compiled_model(str(path), device=device, chemical_species_to_atom_type_map=True)
    # `_from_saved_model` is how nequip loads packaged models eagerly
    return Integration._from_saved_model(str(path), device=device, chemical_species_to_atom_type_map=True)


@functools.lru_cache(maxsize=16)
def _loaded(path: str, modified_ns: int, device: str | None, batched: bool):
    return load_calculator(path, device, batched)


def shared_calculator(path, device: str | None = None, batched: bool = False):
    """The calculator of `path`, loaded once per process (and again when the
    file changes): a Parsl worker runs its walker tasks one after another,
    and loading a model costs about a second. Whoever holds it must not
    expect its results to survive another task's use."""
    path = str(Path(path).resolve())
    return _loaded(path, os.stat(path).st_mtime_ns, device, batched)


class Committee(Calculator):
    """Several models as one calculator, plus their disagreement.

    The dynamics follow the members' mean (`propagator=None`: every member at
    every step), or one member (`propagator=m`: one model's cost per step);
    `assess` then evaluates the others only where a frame is checked, as
    DP-GEN does with its model deviation.
    """

    implemented_properties = ["energy", "forces", "stress", "free_energy", "deviation", "energy_deviation"]

    def __init__(self, calculators, propagator: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.calculators = list(calculators)
        if propagator is not None and not 0 <= propagator < len(self.calculators):
            raise ValueError(f"propagator {propagator} is not a member of a committee of {len(self.calculators)}")
        self.propagator = propagator

    @classmethod
    def from_files(
        cls, paths, device: str | None = None, propagator: int | None = None, shared: bool = False
    ) -> Committee:
        """`shared`: members from `shared_calculator`, loaded once per process."""
        load = shared_calculator if shared else load_calculator
        return cls([load(p, device) for p in paths], propagator)

    def predict(self, atoms, reuse: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-member energies (members,) and forces (members, atoms, 3).
        Member `reuse` keeps its results, which must be of `atoms`."""
        energies, forces = [], []
        for m, calc in enumerate(self.calculators):
            if m != reuse:
                calc.calculate(atoms, ["energy", "forces"], all_changes)
            energies.append(calc.results["energy"])
            forces.append(calc.results["forces"])
        return np.array(energies, dtype=float), np.array(forces, dtype=float)

    def stresses(self, atoms) -> np.ndarray | None:
        """Per-member stresses (members, 3, 3) in eV/Å³ (ASE's sign convention)
        of the last `predict(atoms)`, for cells periodic in all directions."""
        from ase.stress import voigt_6_to_full_3x3_stress

        stresses = [calc.results.get("stress") for calc in self.calculators]
        if not atoms.pbc.all() or any(stress is None for stress in stresses):
            return None
        return np.array([voigt_6_to_full_3x3_stress(np.asarray(stress)) for stress in stresses], dtype=float)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.propagator is not None:
            member = self.calculators[self.propagator]
            member.calculate(self.atoms, ["energy", "forces"], all_changes)
            self.results = {key: member.results[key] for key in ("energy", "forces", "stress") if key in member.results}
            self.results["free_energy"] = self.results["energy"]
            return
        energies, forces = self.predict(self.atoms)
        energy = float(energies.mean())
        deviation, energy_deviation = uncertainty(energies, forces)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces.mean(axis=0),
            "deviation": deviation,
            "energy_deviation": energy_deviation,
        }
        stresses = self.stresses(self.atoms)
        if stresses is not None:
            self.results["stress"] = stresses.mean(axis=0)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]  # Voigt

    def assess(self, atoms) -> dict:
        """The results at `atoms` with the committee's deviation: the
        dynamics' energy, forces (and stress), and the disagreement of all
        members, evaluating those that the dynamics did not."""
        self.get_forces(atoms)  # the dynamics' own results, cached when current
        if self.propagator is None:
            return self.results
        energies, forces = self.predict(self.atoms, reuse=self.propagator)
        deviation, energy_deviation = uncertainty(energies, forces)
        return dict(self.results, deviation=deviation, energy_deviation=energy_deviation)


class BatchedCommittee:
    """Several models scoring many structures: each member evaluates a batch
    of structures in one forward pass (torch-sim's NequIP model), for
    evaluation rather than dynamics (the walkers' `Committee`)."""

    def __init__(self, members, max_atoms: int = 4096):
        self.members, self.max_atoms = list(members), max_atoms

    @classmethod
    def from_files(cls, paths, device: str | None = None) -> BatchedCommittee:
        return cls([load_calculator(p, device, batched=True) for p in paths])

    def batches(self, images: list) -> list[list[int]]:
        """Consecutive structures of one periodicity, up to `max_atoms` atoms a batch."""
        batches = []
        for k, atoms in enumerate(images):
            last = batches[-1] if batches else None
            if (
                last is None
                or tuple(images[last[0]].pbc) != tuple(atoms.pbc)
                or sum(len(images[j]) for j in last) + len(atoms) > self.max_atoms
            ):
                batches.append([k])
            else:
                last.append(k)
        return batches

    def predict_many(self, images: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-member energies (members, structures), forces (members, atoms of
        all structures in order, 3) and stresses (members, structures, 3, 3;
        eV/Å³, ASE's sign convention; NaN where a cell is not periodic in all
        directions)."""
        import torch
        import torch_sim as ts

        members = len(self.members)
        offsets = np.concatenate([[0], np.cumsum([len(atoms) for atoms in images])]).astype(int)
        energies = np.zeros((members, len(images)))
        forces = np.zeros((members, offsets[-1], 3))
        stresses = np.full((members, len(images), 3, 3), np.nan)
        for batch in self.batches(images):
            state = ts.initialize_state([images[k] for k in batch], device=self.members[0].device, dtype=torch.float64)
            periodic = bool(images[batch[0]].pbc.all())
            atoms_of_batch = slice(offsets[batch[0]], offsets[batch[-1] + 1])
            for m, member in enumerate(self.members):
                member.compute_stress = periodic
                out = member(state)
                energies[m, batch] = out["energy"].detach().cpu().numpy()
                forces[m, atoms_of_batch] = out["forces"].detach().cpu().numpy()
                if periodic:
                    stresses[m, batch] = out["stress"].detach().cpu().numpy()
        return energies, forces, stresses
