"""Rule sample: every walker runs MD with the previous committee, one Parsl task each."""

from pathlib import Path

from psiflow_pipeline.data import read_h5, read_structures, write_h5
from psiflow_pipeline.execution import Execution
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.paths import parsl_run_dir
from psiflow_pipeline.sampling import sample

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    i = int(snakemake.wildcards.i)
    # not params: where tasks run must not make Snakemake rerun the job
    execution = Execution.from_config(snakemake.config["execution"], "sample", snakemake.threads)
    candidates, walkers, colvars = sample(
        read_h5(snakemake.input.walkers[0]) if snakemake.input.walkers else None,
        read_structures(snakemake.input.structures, settings["periodic"]),
        settings,
        i,
        list(snakemake.input.models),
        execution,
        parsl_run_dir("sample", i),
    )
    colvar_dir = Path(snakemake.output.colvar)
    colvar_dir.mkdir(parents=True, exist_ok=True)
    for k, text in colvars.items():
        (colvar_dir / f"walker_{k}.dat").write_text(text)
    write_h5(candidates, snakemake.output.candidates)
    write_h5(walkers, snakemake.output.walkers)
    log.info("%d candidate frames", len(candidates))
end_process()
