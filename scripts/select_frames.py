"""Rule select: frames whose committee disagreement lies inside the trust region."""

from psiflow.data import read_h5, write_h5
from psiflow.rules import rule_log
from psiflow.sampling import select

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    s = snakemake.params.selection
    candidates = read_h5(snakemake.input.candidates)
    selected = select(candidates, s["trust_lo"], s["trust_hi"], s["max_per_iteration"])
    write_h5(selected, snakemake.output.selected)
    log.info("selected %d of %d candidates", len(selected), len(candidates))
