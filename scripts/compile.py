"""Rule compile: one member of the final committee, AOTInductor-compiled for ASE."""

from psiflow_pipeline.data import read_h5
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.models.committee import default_device
from psiflow_pipeline.models.compile import compile_model

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    accelerator = snakemake.config["execution"]["train"]["accelerator"]
    device = {"cpu": "cpu", "gpu": "cuda"}.get(accelerator) or default_device()
    dataset = read_h5(snakemake.input.dataset)
    check = dataset.to_atoms(len(dataset) - 1)  # a frame of the run's own data
    difference = compile_model(snakemake.input.package, snakemake.output.compiled, device, snakemake.log[0], check)
    log.info("compiled for %s; forces within %.1e eV/Å of the package", device, difference)
end_process()
