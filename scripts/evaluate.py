"""Rule evaluate: errors of the committee of this iteration (and of the previous
one on the fresh labels) against the reference."""

import numpy as np
import pandas as pd
from psiflow.data import read_h5
from psiflow.dataset import split
from psiflow.evaluation import METRIC_COLUMNS, binding_energy_per_atom, errors
from psiflow.models import Committee
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    import torch

    torch.set_num_threads(snakemake.threads)
    i = int(snakemake.wildcards.i)
    dataset = read_h5(snakemake.input.dataset)
    labeled = read_h5(snakemake.input.labeled)
    fresh = labeled.take(np.flatnonzero(labeled.frame["status"] == "ok"))
    train, valid = split(dataset, snakemake.params.valid_fraction)
    current = Committee.from_files(snakemake.input.models)
    rows = [
        {"iteration": i, "model_iteration": i, "subset": "train", **errors(train, current)},
        {"iteration": i, "model_iteration": i, "subset": "valid", **errors(valid, current)},
    ]
    if i > 0:
        previous = Committee.from_files(snakemake.input.previous_models)
        rows.append({"iteration": i, "model_iteration": i - 1, "subset": "new", **errors(fresh, previous)})
    # an empty subset (no validation frame yet) has no errors to report
    isolated = (
        dict(pd.read_csv(snakemake.input.isolated[0]).set_index("element").energy) if snakemake.input.isolated else None
    )
    subsets = {"train": train, "valid": valid, "new": fresh}
    for row in rows:
        row["binding_energy_per_atom"] = binding_energy_per_atom(subsets[row["subset"]], isolated)
    rows = [r for r in rows if r["frames"]]
    extra = sorted({key for row in rows for key in row} - set(METRIC_COLUMNS))  # per-element errors
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS + extra)
    table.to_csv(snakemake.output.metrics, index=False)
    log.info("\n%s", table.to_string())
