"""Rule validate: a production MD with the final committee, its stability,
committee deviation and radial distribution functions against a reference MD."""

import pandas as pd
import yaml

from psiflow_pipeline.data import read_structures
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.report import validation_figure
from psiflow_pipeline.validation import read_reference, validate_committee

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    import torch

    torch.set_num_threads(snakemake.threads)
    settings = snakemake.params.settings
    structure = snakemake.config["validation"]["structure"]
    atoms = read_structures(snakemake.input.structures, settings["periodic"])[structure]
    reference = read_reference(snakemake.input.reference)
    run, structures, record = validate_committee(atoms, snakemake.input.models, settings, reference)
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
end_process()
