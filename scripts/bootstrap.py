"""Rule bootstrap: rattled copies to label in iteration 0, and the initial walkers."""

from psiflow.config import check_structures
from psiflow.data import write_h5
from psiflow.rules import rule_log
from psiflow.sampling import initial_walkers, rattled_frames

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    images = check_structures(snakemake.params.system, "config")
    boot = snakemake.params.bootstrap
    selected = rattled_frames(images, boot["n_rattled"], boot["sigma"], boot["strain"], snakemake.params.seed)
    walkers = initial_walkers(images, snakemake.params.walkers)
    write_h5(selected, snakemake.output.selected)
    write_h5(walkers, snakemake.output.walkers)
    log.info("%d frames to label, %d walkers", len(selected), len(walkers))
