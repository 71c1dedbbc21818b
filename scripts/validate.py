"""Rule validate: a production MD with the final committee, its stability,
committee deviation and radial distribution functions against a reference MD."""

import pandas as pd
import yaml
from ase.io import read

from psiflow_pipeline.data import read_structures
from psiflow_pipeline.logs import rule_log
from psiflow_pipeline.models.committee import Committee
from psiflow_pipeline.report import validation_figure
from psiflow_pipeline.validation import compare_structure, production_md, rdf_range, verdict

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    import torch

    torch.set_num_threads(snakemake.threads)
    settings = snakemake.params.settings
    structure = snakemake.config["validation"]["structure"]
    atoms = read_structures(snakemake.input.structures, settings["periodic"])[structure]
    run = production_md(
        atoms, Committee.from_files(snakemake.input.models), settings["walker"], settings["trust_hi"], settings["seed"]
    )
    reference = read(snakemake.input.reference[0], index=":") if snakemake.input.reference else None
    r_max = settings["rdf_r_max"] or (rdf_range(atoms) if atoms.pbc.all() else 0.0)
    structures = compare_structure(run, reference, r_max, settings["rdf_bins"])
    record = verdict(run, settings, structures, reference)
    series = pd.DataFrame(
        {"time_ps": run.times_ps, "temperature_K": run.temperatures, "deviation": run.deviations}
        | ({"density_g_cm3": run.densities} if settings["walker"]["ensemble"] == "npt" else {})
    )
    series.to_csv(snakemake.output.series, index=False)
    columns = {}
    for pair, entry in structures.items():
        columns["r"] = entry["r"]
        columns[f"g_{pair}"] = entry["g"]
        if "g_reference" in entry:
            columns[f"g_{pair}_reference"] = entry["g_reference"]
    pd.DataFrame(columns).to_csv(snakemake.output.rdf, index=False)
    validation_figure(series, structures, record["verdict"], snakemake.output.figure)
    with open(snakemake.output.verdict, "w") as handle:
        yaml.safe_dump(record, handle, sort_keys=False, allow_unicode=True)
    log.info("%s; committee deviation %.3f eV/Å on average", record["verdict"], record["deviation_mean"])
