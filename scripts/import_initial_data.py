"""Rule import_initial_data: the user's labeled frames as the labels of iteration 0."""

from psiflow_pipeline.data import Status, imported_identifier, read_extxyz, write_h5
from psiflow_pipeline.logs import end_process, rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    frames = read_extxyz(snakemake.input.data)  # checked before the run started
    given = frames.frame["identifier"]
    frames.frame["identifier"][:] = [name or imported_identifier(k) for k, name in enumerate(given)]
    frames.frame["iteration"][:] = 0
    frames.frame["status"][:] = Status.OK
    write_h5(frames, snakemake.output.labeled)
    log.info("%d labeled frames imported", len(frames))
end_process()
