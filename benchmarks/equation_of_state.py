"""The reference level's own equilibrium volume of a crystal: CP2K single
points of the uniformly scaled cell and a Birch-Murnaghan fit (ASE's
EquationOfState). The 0 K volume a crystal's NPT walkers are judged against
(thermal expansion aside).

    .venv/bin/python benchmarks/equation_of_state.py --structure resources/structures/si_64.xyz
"""

import argparse
from pathlib import Path

import numpy as np
from ase.eos import EquationOfState
from ase.io import read
from ase.units import GPa

from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.process import single_point
from psiflow_pipeline.cp2k.template import check_template

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", type=Path, default=REPO / "resources/structures/si_64.xyz")
    parser.add_argument("--template", type=Path, default=REPO / "resources/cp2k/xtb.inp")
    parser.add_argument(
        "--scales", type=float, nargs="+", default=[0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.05]
    )
    args = parser.parse_args()
    atoms = read(args.structure)
    atoms.pbc = True
    template = check_template(args.template)
    volumes, energies = [], []
    print(f"{'scale':>6s} {'volume (Å3)':>12s} {'energy (eV)':>14s} {'pressure (GPa)':>15s}")
    for scale in args.scales:
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell.array * scale, scale_atoms=True)
        result = single_point(scaled, template, Cp2kCommand(), stress=True)
        pressure = -np.trace(result.stress) / 3 / GPa
        volumes.append(scaled.get_volume())
        energies.append(result.energy)
        print(f"{scale:6.3f} {volumes[-1]:12.2f} {energies[-1]:14.4f} {pressure:15.2f}")
    v0, e0, bulk_modulus = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    print(
        f"V0 {v0:.2f} Å3 ({v0 / len(atoms):.3f} Å3/atom, {(v0 / atoms.get_volume()) ** (1 / 3):.4f} x the cell's edges)"
    )
    print(f"bulk modulus {bulk_modulus / GPa:.1f} GPa")


if __name__ == "__main__":
    main()
