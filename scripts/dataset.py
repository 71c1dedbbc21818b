"""Rule dataset: the labels of this iteration added to those of all earlier ones."""

from psiflow_pipeline.data import read_h5, write_h5
from psiflow_pipeline.dataset import extend
from psiflow_pipeline.logs import end_process, rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    previous = read_h5(snakemake.input.previous[0]) if snakemake.input.previous else None
    dataset = extend(previous, read_h5(snakemake.input.labeled))
    write_h5(dataset, snakemake.output.dataset)
    log.info("%d frames", len(dataset))
end_process()
