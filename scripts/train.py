"""Rule train: one committee member with nequip-train."""

import pandas as pd

from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.models.training import compiles_training, train_on_dataset
from psiflow_pipeline.paths import training_dir

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    i, m = int(snakemake.wildcards.i), int(snakemake.wildcards.m)
    execution = snakemake.config["execution"]["train"]
    compiled = compiles_training(execution, i)
    n_train, n_valid = train_on_dataset(
        snakemake.input.dataset,
        training_dir(i, m),
        snakemake.output.model,
        settings,
        seed=settings["seed"] + m,
        accelerator=execution["accelerator"],
        threads=snakemake.threads,
        log_path=snakemake.log[0],
        warm_start_from=snakemake.input.warm_start[0] if snakemake.input.warm_start else None,
        resample_seed=[settings["seed"], i, m] if settings["bootstrap_resample"] else None,
        compiled=compiled,
        energy_shifts=(
            dict(pd.read_csv(snakemake.input.isolated[0]).set_index("element").energy)
            if snakemake.input.isolated
            else None
        ),
    )
    log.info("trained on %d frames, validated on %d%s", n_train, n_valid, " (torch.compile)" if compiled else "")
end_process()
