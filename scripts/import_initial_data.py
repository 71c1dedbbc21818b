"""Rule import_initial_data: the user's labeled frames as the labels of iteration 0."""

from psiflow.config import check_labeled_file
from psiflow.data import write_h5
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    frames = check_labeled_file(snakemake.input.data, "bootstrap.initial_data", "config")
    given = frames.frame["identifier"]
    frames.frame["identifier"][:] = [name or f"i0-d{k}" for k, name in enumerate(given)]
    frames.frame["iteration"][:] = 0
    frames.frame["status"][:] = "ok"
    write_h5(frames, snakemake.output.labeled)
    log.info("%d labeled frames imported", len(frames))
