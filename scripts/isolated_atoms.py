"""Rule isolated_atoms: the reference energy of each element, alone in vacuum."""

import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols
from psiflow.config import check_structures
from psiflow.cp2k import check_template, isolated_atom_template, single_point
from psiflow.labeling import command_from_config
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    template = check_template(snakemake.input.template)
    command = command_from_config(snakemake.params.reference)
    numbers = sorted({z for atoms in check_structures(snakemake.params.system, "config") for z in atoms.numbers})
    rows = []
    for number in numbers:  # a handful of cheap single points: no Parsl needed
        atom = Atoms(numbers=[number], pbc=False)
        result = single_point(atom, isolated_atom_template(template, number), command)
        log.info("%s: %s %s %.6f eV", chemical_symbols[number], result.status, result.reason, result.energy)
        rows.append({"element": chemical_symbols[number], "energy": result.energy, "status": result.status})
    table = pd.DataFrame(rows)
    if (table.status != "ok").any():
        raise RuntimeError(f"isolated-atom single points failed:\n{table}")
    table.to_csv(snakemake.output.energies, index=False)
