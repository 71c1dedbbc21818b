"""Rule label: a CP2K single point for every selected frame."""

from psiflow_pipeline.cp2k.command import command_from_config
from psiflow_pipeline.data import read_h5, write_h5
from psiflow_pipeline.execution import Execution
from psiflow_pipeline.labeling import check_failures, label
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.paths import label_cache, parsl_run_dir
from psiflow_pipeline.settings import label_policy

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]):
    settings = snakemake.params.settings
    i = int(snakemake.wildcards.i)
    how = snakemake.config["execution"]["label"]  # not params: how CP2K runs changes no label
    labeled = label(
        read_h5(snakemake.input.selected),
        settings["template"],
        command_from_config(how),
        Execution.from_config(snakemake.config["execution"], "label", snakemake.threads),
        parsl_run_dir("label", i),
        label_cache(i),
        persistent=how["mode"] == "persistent",
        stress=settings["stress"],
    )
    # failed frames are data: keep them in the output, then judge the fraction
    write_h5(labeled, snakemake.output.labeled)
    policy = label_policy(snakemake.config, i)
    check_failures(labeled, policy["max_failed_fraction"], snakemake.output.labeled)
end_process()
