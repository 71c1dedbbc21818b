"""Rule select: frames whose committee disagreement lies inside the trust region."""

from psiflow.data import read_h5, write_h5
from psiflow.rules import rule_log
from psiflow.selection import rng_for, select

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    s = snakemake.params.selection
    candidates = read_h5(snakemake.input.candidates)
    rng = rng_for(snakemake.params.seed, int(snakemake.wildcards.i))
    selected = select(
        candidates, s["method"], s["trust_lo"], s["trust_hi"], s["max_per_iteration"], s["max_per_walker"], rng
    )
    write_h5(selected, snakemake.output.selected)
    log.info("selected %d of %d candidates (%s)", len(selected), len(candidates), s["method"])
