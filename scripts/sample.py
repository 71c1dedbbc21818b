"""Rule sample: every walker runs MD with the previous committee, one Parsl task each."""

from pathlib import Path

from psiflow.config import check_structures
from psiflow.data import read_h5, write_h5
from psiflow.execution import Execution
from psiflow.rules import rule_log
from psiflow.sampling import sample

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    # not params: where tasks run must not make Snakemake rerun the job
    execution = Execution.from_config(snakemake.config["execution"], "sample", snakemake.threads)
    candidates, walkers, colvars, messages = sample(
        read_h5(snakemake.input.walkers),
        check_structures(params.system, "config"),
        params.walkers,
        params.trust_hi,
        params.seed,
        int(snakemake.wildcards.i),
        list(snakemake.input.models),
        execution,
        params.run_dir,
    )
    for message in messages:
        log.info(message)
    colvar_dir = Path(snakemake.output.colvar)
    colvar_dir.mkdir(parents=True, exist_ok=True)
    for k, text in colvars.items():
        (colvar_dir / f"walker_{k}.dat").write_text(text)
    write_h5(candidates, snakemake.output.candidates)
    write_h5(walkers, snakemake.output.walkers)
    log.info("%d candidate frames", len(candidates))
