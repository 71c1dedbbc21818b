"""Reference-level MD with CP2K (never used for training or selection): the
independent test sets and reference volumes that psiflow's results are
judged against. Every file in this folder was made by this script; the
command that made it is in README.md beside it.

    .venv/bin/python resources/reference/reference_md.py --structure resources/structures/water_32.xyz \
        --ensemble nvt --temperature 350 --equilibrate 2000 --frames 40 --every 40 --seed 1 \
        --out resources/reference/water_32_nvt_350K.xyz

Writes the sampled frames (extxyz: energy, forces, stress when asked) and,
beside them, a .csv with the time series of every step (time, temperature,
potential energy, volume). With `--plumed` the MD is biased by that PLUMED
input (its files go beside the output, named after it); the frames keep the
unbiased reference energy and forces. A structure without a cell is a
molecule in vacuum.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.velocitydistribution import Stationary, thermalize_momenta

from psiflow_pipeline.cp2k.calculator import Cp2kCalculator
from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.template import check_template
from psiflow_pipeline.data import Frames, Status, write_extxyz

REPO = Path(__file__).resolve().parents[2]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", type=Path, required=True)
    parser.add_argument("--template", type=Path, default=REPO / "resources/cp2k/xtb.inp")
    parser.add_argument("--ensemble", choices=["nvt", "npt"], default="nvt")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--pressure_bar", type=float, default=1.0)
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--pdamp", type=float, default=500.0, help="npt: MTK barostat time constant (fs)")
    parser.add_argument("--equilibrate", type=int, default=2000, help="steps before the first saved frame")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--every", type=int, default=40, help="steps between saved frames")
    parser.add_argument("--stress", action="store_true", help="label the frames with the stress too (npt: always)")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads of CP2K")
    parser.add_argument("--plumed", type=Path, help="PLUMED input biasing the MD (nvt)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    atoms = read(args.structure)
    atoms.pbc = atoms.cell.rank == 3  # no cell: a molecule in vacuum
    stress = args.stress or args.ensemble == "npt"
    calculator = Cp2kCalculator(check_template(args.template), Cp2kCommand(omp_threads=args.threads), stress=stress)
    atoms.calc = calculator
    if args.plumed:
        atoms.calc = biased(calculator, args, atoms)
    rng = np.random.default_rng(args.seed)
    thermalize_momenta(atoms, args.temperature, rng=rng)
    Stationary(atoms)  # no drift of the centre of mass
    timestep = args.timestep * units.fs
    if args.ensemble == "nvt":
        dynamics = Langevin(
            atoms, timestep, temperature_K=args.temperature, friction=0.01 / units.fs, fixcm=False, rng=rng
        )
    else:
        dynamics = IsotropicMTKNPT(
            atoms, timestep, temperature_K=args.temperature, pressure_au=args.pressure_bar * units.bar,
            tdamp=50 * units.fs, pdamp=args.pdamp * units.fs,
        )  # fmt: skip
    series, saved = [], []
    start = time.perf_counter()

    def record():
        step = dynamics.nsteps
        series.append(
            f"{step * args.timestep:.1f},{atoms.get_temperature():.2f},{calculator.get_potential_energy(atoms):.8f},"
            f"{atoms.get_volume() if atoms.pbc.all() else float('nan'):.5f}"
        )
        if step >= args.equilibrate and (step - args.equilibrate) % args.every == 0 and len(saved) < args.frames:
            copy = atoms.copy()
            copy.calc = None
            frame = Frames.from_atoms([copy], status=Status.OK, step=step, temperature=atoms.get_temperature())
            # the reference's own results (without any bias) are the labels
            frame.frame["energy"][0] = calculator.get_potential_energy(atoms)
            frame.atom["forces"][:] = calculator.get_forces(atoms)
            if stress:
                frame.frame["stress"][0] = atoms.get_stress(voigt=False)
            frame.frame["identifier"][0] = f"{args.out.stem}-{len(saved)}"
            saved.append(frame)
        if step % 100 == 0:
            rate = calculator.calls / (time.perf_counter() - start)
            volume = f", V {atoms.get_volume():.1f} Å3" if atoms.pbc.all() else ""
            print(f"step {step}: T {atoms.get_temperature():.0f} K{volume}, {rate:.2f} calls/s")

    dynamics.attach(record, interval=1)
    total = args.equilibrate + args.every * (args.frames - 1)
    dynamics.run(total)
    if args.plumed:
        atoms.calc.plumed.finalize()  # flushes HILLS and COLVAR
    write_extxyz(Frames.concatenate(saved), args.out)
    args.out.with_suffix(".csv").write_text("time_fs,temperature_K,energy_eV,volume_A3\n" + "\n".join(series) + "\n")
    print(f"{len(saved)} frames, {total} steps, {calculator.calls} CP2K calls in {time.perf_counter() - start:.0f} s")


def biased(calculator, args, atoms):
    """`calculator` biased by the PLUMED input, its HILLS and COLVAR beside the
    output as <out stem>.HILLS and <out stem>.COLVAR."""
    from ase.calculators.plumed import Plumed

    from psiflow_pipeline.plumed import read_input

    if args.ensemble != "nvt":
        raise SystemExit("--plumed: only with --ensemble nvt")
    stem = args.out.with_suffix("")
    lines = [
        line.replace("FILE=HILLS", f"FILE={stem}.HILLS").replace("FILE=COLVAR", f"FILE={stem}.COLVAR")
        for line in read_input(args.plumed)
    ]
    return Plumed(
        calculator, lines, timestep=args.timestep * units.fs, atoms=atoms,
        kT=units.kB * args.temperature, log=f"{stem}.plumed.log",
    )  # fmt: skip


if __name__ == "__main__":
    main()
