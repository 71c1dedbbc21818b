"""Rule compile: one member of the final committee, AOTInductor-compiled for ASE."""

from psiflow.models import compile_model, default_device
from psiflow.rules import rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    accelerator = snakemake.params.accelerator
    device = {"cpu": "cpu", "gpu": "cuda"}.get(accelerator) or default_device()
    compile_model(snakemake.input.package, snakemake.output.compiled, device, snakemake.log[0])
    log.info("compiled for %s", device)
