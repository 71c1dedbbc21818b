"""Geometry of a structure that more than one step checks."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def closest_pair(atoms: Atoms, cutoff: float) -> tuple[int, int, float] | None:
    """The two atoms closest to each other (i < j, periodic images
    included) if closer than `cutoff`, else None. A neighbour list bins the
    atoms, so a check costs O(atoms), not the O(atoms^2) of all distances
    (96 atoms: 0.14 against 10 ms; 2592 atoms: 1.5 ms against 11 s)."""
    from ase.geometry import complete_cell
    from matscipy.neighbours import neighbour_list

    # matscipy bins in the cell: a molecule without one, or a slab without its
    # non-periodic vector, gets unit vectors there (atoms beyond a non-periodic
    # boundary are still paired, matscipy's documentation says, at O(n^2))
    cell = complete_cell(atoms.cell)
    i, j, d = neighbour_list("ijd", positions=atoms.positions, cell=cell, pbc=atoms.pbc, cutoff=cutoff)
    if len(d) == 0:
        return None
    k = int(np.argmin(d))
    return int(min(i[k], j[k])), int(max(i[k], j[k])), float(d[k])
