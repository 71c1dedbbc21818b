"""Rule train: one committee member with nequip-train."""

import pandas as pd
from psiflow.models import train_on_dataset
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    n_train, n_valid = train_on_dataset(
        snakemake.input.dataset,
        snakemake.params.workdir,
        snakemake.output.model,
        snakemake.params.model,
        seed=snakemake.params.seed + int(snakemake.wildcards.m),
        accelerator=snakemake.params.accelerator,
        threads=snakemake.threads,
        log_path=snakemake.log[0],
        warm_start_from=snakemake.input.warm_start[0] if snakemake.input.warm_start else None,
        resample_seed=(
            [snakemake.params.seed, int(snakemake.wildcards.i), int(snakemake.wildcards.m)]
            if snakemake.params.model["bootstrap_resample"]
            else None
        ),
        energy_shifts=(
            dict(pd.read_csv(snakemake.input.isolated[0]).set_index("element").energy)
            if snakemake.input.isolated
            else None
        ),
    )
    log.info("trained on %d frames, validated on %d", n_train, n_valid)
