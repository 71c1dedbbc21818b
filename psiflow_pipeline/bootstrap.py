"""Iteration 0: rattled and strained copies of the initial structures."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psiflow_pipeline.data import Frames, Status, bootstrap_identifier
from psiflow_pipeline.seeds import rng_for


def rattled_frames(images: list[Atoms], n_rattled: int, sigma: float, strain: float, seed: int) -> Frames:
    """`n_rattled` copies of each structure: positions displaced by a Gaussian of
    width `sigma` (Å) and, for periodic ones, the cell strained by a random
    symmetric strain of entries up to `strain`."""
    rng = rng_for(seed, 0)
    copies, identifiers = [], []
    for s, atoms in enumerate(images):
        for k in range(n_rattled):
            copy = atoms.copy()
            if atoms.pbc.any():
                deformation = np.eye(3) + rng.uniform(-strain, strain, (3, 3))
                copy.set_cell(atoms.cell.array @ ((deformation + deformation.T) / 2), scale_atoms=True)
            copy.positions += rng.normal(0.0, sigma, copy.positions.shape)
            copies.append(copy)
            identifiers.append(bootstrap_identifier(s, k))
    frames = Frames.from_atoms(copies, iteration=0, status=Status.OK)
    frames.frame["identifier"][:] = identifiers
    return frames
