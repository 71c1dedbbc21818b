"""Rule compile: one member of the final committee, AOTInductor-compiled for ASE."""

from psiflow_pipeline.logs import rule_log
from psiflow_pipeline.models.committee import default_device
from psiflow_pipeline.models.compile import compile_model

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    accelerator = snakemake.config["execution"]["train"]["accelerator"]
    device = {"cpu": "cpu", "gpu": "cuda"}.get(accelerator) or default_device()
    compile_model(snakemake.input.package, snakemake.output.compiled, device, snakemake.log[0])
    log.info("compiled for %s", device)
