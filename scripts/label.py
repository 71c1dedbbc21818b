"""Rule label: a CP2K single point for every selected frame."""

from pathlib import Path

from psiflow.cp2k import check_template
from psiflow.data import read_h5, write_h5
from psiflow.execution import Execution
from psiflow.labeling import check_failures, command_from_config, label
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    reference = snakemake.params.reference
    labeled, messages = label(
        read_h5(snakemake.input.selected),
        check_template(snakemake.input.template),
        command_from_config(reference),
        Execution.from_config(snakemake.config["execution"], "label", snakemake.threads),
        Path(snakemake.params.run_dir).resolve(),
        snakemake.params.cache_dir,
        persistent=reference["mode"] == "persistent",
        stress=reference["stress"],
    )
    for message in messages:
        log.info(message)
    # failed frames are data: keep them in the output, then judge the fraction
    write_h5(labeled, snakemake.output.labeled)
    check_failures(labeled, reference["max_failed_fraction"], snakemake.output.labeled)
