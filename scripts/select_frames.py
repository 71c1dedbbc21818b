"""Rule select: frames whose committee disagreement lies inside the trust region."""

from psiflow_pipeline.data import read_h5, write_h5
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.seeds import rng_for
from psiflow_pipeline.selection import select

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    s = snakemake.params.settings
    candidates = read_h5(snakemake.input.candidates)
    rng = rng_for(s["seed"], int(snakemake.wildcards.i))
    selected = select(
        candidates, s["method"], s["trust_lo"], s["trust_hi"], s["max_per_iteration"], s["max_per_walker"], rng
    )
    write_h5(selected, snakemake.output.selected)
    log.info("selected %d of %d candidates (%s)", len(selected), len(candidates), s["method"])
end_process()
