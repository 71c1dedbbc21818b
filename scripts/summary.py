"""Rule summary: all metrics in one table, the learning curve and the final model."""

import shutil
from pathlib import Path

import matplotlib
import pandas as pd
from psiflow.rules import rule_log

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    table = pd.concat([pd.read_csv(p) for p in snakemake.input.metrics], ignore_index=True)
    table.to_csv(snakemake.output.metrics, index=False)
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for subset, label in (("valid", "validation set"), ("new", "fresh labels (previous model)")):
        part = table[table.subset == subset]
        if len(part):
            axis.plot(part.iteration, part.force_rmse, marker="o", label=label)
    axis.set_xlabel("iteration")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("force RMSE (eV/Å)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(snakemake.output.curve, dpi=120)
    final = Path(snakemake.output.models)
    final.mkdir(parents=True, exist_ok=True)
    for m, model in enumerate(snakemake.input.models):
        shutil.copy(model, final / f"member_{m}.nequip.zip")
    log.info("\n%s", table.to_string())
