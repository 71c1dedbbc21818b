"""A molecular liquid or crystal at another density: the cell scaled
isotropically, each molecule moved with its centre of mass and kept rigid
(scaling every atom would squeeze the bonds too). Molecules are the
connected groups of atoms within ASE's natural cutoffs.

    .venv/bin/python resources/structures/scale_density.py resources/structures/water_32.xyz \
        --density 1.25 --out resources/structures/water_32_1.25.xyz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write
from ase.neighborlist import NeighborList, natural_cutoffs
from scipy.sparse.csgraph import connected_components

from psiflow_pipeline.validation import density


def scaled_to_density(atoms: Atoms, target: float) -> Atoms:
    neighbors = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=True)
    neighbors.update(atoms)
    n_molecules, molecule = connected_components(neighbors.get_connectivity_matrix())
    factor = (density(atoms) / target) ** (1 / 3)
    scaled = atoms.copy()
    positions = atoms.get_positions()
    masses = atoms.get_masses()
    for m in range(n_molecules):
        members = np.flatnonzero(molecule == m)
        anchor = members[0]
        # whole molecule: each atom at its minimum image from the first one
        offsets = atoms.get_distances(anchor, members, mic=True, vector=True)
        whole = positions[anchor] + offsets
        centre = masses[members] @ whole / masses[members].sum()
        positions[members] = whole + (factor - 1) * centre
    scaled.set_cell(atoms.cell * factor, scale_atoms=False)
    scaled.set_positions(positions)
    scaled.wrap()
    return scaled


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("structure", type=Path)
    parser.add_argument("--density", type=float, required=True, help="g/cm³")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    atoms = read(args.structure)
    scaled = scaled_to_density(atoms, args.density)
    write(args.out, scaled, format="extxyz")
    print(f"{args.structure}: {density(atoms):.3f} -> {density(scaled):.3f} g/cm³, cell {scaled.cell.lengths()}")


if __name__ == "__main__":
    main()
