"""Rule evaluate: errors of the committee of this iteration (and of the previous
one on the fresh labels) against the reference, and the data of parity plots."""

import numpy as np
import pandas as pd
from psiflow.data import read_extxyz, read_h5
from psiflow.dataset import split
from psiflow.evaluation import METRIC_COLUMNS, binding_energy_per_atom, errors, predict
from psiflow.models import Committee
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    import torch

    torch.set_num_threads(snakemake.threads)
    i = int(snakemake.wildcards.i)
    dataset = read_h5(snakemake.input.dataset)
    labeled = read_h5(snakemake.input.labeled)
    train, valid = split(dataset, snakemake.params.valid_fraction)
    current = Committee.from_files(snakemake.input.models)
    # subset -> (frames, committee, the committee's iteration)
    subsets = {"train": (train, current, i), "valid": (valid, current, i)}
    if snakemake.input.test_set:
        subsets["test"] = (read_extxyz(snakemake.input.test_set[0]), current, i)
    if i > 0:  # the honest error: the committee that chose these frames, on their labels
        fresh = labeled.take(np.flatnonzero(labeled.frame["status"] == "ok"))
        subsets["new"] = (fresh, Committee.from_files(snakemake.input.previous_models), i - 1)
    isolated = (
        dict(pd.read_csv(snakemake.input.isolated[0]).set_index("element").energy) if snakemake.input.isolated else None
    )
    rows, parity = [], {}
    for subset, (frames, committee, model_iteration) in subsets.items():
        if len(frames) == 0:  # no validation frame yet: nothing to report
            continue
        predicted = predict(frames, committee)
        row = {"iteration": i, "model_iteration": model_iteration, "subset": subset}
        row.update(errors(frames, predicted=predicted))
        row["binding_energy_per_atom"] = binding_energy_per_atom(frames, isolated)
        rows.append(row)
        parity[f"{subset}_energy_reference"] = frames.frame["energy"] / np.diff(frames.offsets)
        parity[f"{subset}_energy_predicted"] = predicted["energy_per_atom"]
        parity[f"{subset}_forces_reference"] = frames.atom["forces"]
        parity[f"{subset}_forces_predicted"] = predicted["forces"]
    extra = sorted({key for row in rows for key in row} - set(METRIC_COLUMNS))  # per-element errors
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS + extra)
    table.to_csv(snakemake.output.metrics, index=False)
    np.savez_compressed(snakemake.output.parity, **parity)
    log.info("\n%s", table.to_string())
