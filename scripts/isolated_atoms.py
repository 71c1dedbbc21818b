"""Rule isolated_atoms: the reference energy of each element, alone in vacuum."""

import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols

from psiflow_pipeline.cp2k.command import command_from_config
from psiflow_pipeline.cp2k.isolated import isolated_atom_template
from psiflow_pipeline.cp2k.process import single_point
from psiflow_pipeline.data import Status, read_structures
from psiflow_pipeline.logs import end_process, rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    template = snakemake.params.settings["template"]
    command = command_from_config(snakemake.config["execution"]["label"])
    numbers = sorted({z for atoms in read_structures(snakemake.input.structures, False) for z in atoms.numbers})
    rows = []
    for number in numbers:  # a handful of cheap single points: no Parsl needed
        atom = Atoms(numbers=[number], pbc=False)
        result = single_point(atom, isolated_atom_template(template, number), command)
        log.info("%s: %s %s %.6f eV", chemical_symbols[number], result.status, result.reason, result.energy)
        rows.append({"element": chemical_symbols[number], "energy": result.energy, "status": str(result.status)})
    table = pd.DataFrame(rows)
    if (table.status != Status.OK).any():
        raise RuntimeError(f"isolated-atom single points failed:\n{table}")
    table.to_csv(snakemake.output.energies, index=False)
end_process()
