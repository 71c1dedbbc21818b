"""Rule evaluate: errors of the committee of this iteration (and of the previous
one on the fresh labels) against the reference, and the data of parity plots."""

import numpy as np
import pandas as pd

from psiflow_pipeline.data import Frames, read_extxyz, read_h5
from psiflow_pipeline.evaluation import evaluate_iteration
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.models.committee import BatchedCommittee

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    import torch

    torch.set_num_threads(snakemake.threads)
    inputs = snakemake.input
    table, parity = evaluate_iteration(
        int(snakemake.wildcards.i),
        read_h5(inputs.dataset),
        read_h5(inputs.labeled),
        BatchedCommittee.from_files(inputs.models),
        BatchedCommittee.from_files(inputs.previous_models) if "previous_models" in inputs.keys() else None,
        Frames.concatenate([read_extxyz(path) for path in inputs.test_set]) if inputs.test_set else None,
        snakemake.params.settings["valid_fraction"],
        dict(pd.read_csv(inputs.isolated[0]).set_index("element").energy) if inputs.isolated else None,
    )
    table.to_csv(snakemake.output.metrics, index=False)
    np.savez_compressed(snakemake.output.parity, **parity)
    log.info("\n%s", table.to_string())
end_process()
