"""Rule bootstrap: rattled copies of the initial structures, labeled in iteration 0."""

from psiflow_pipeline.bootstrap import rattled_frames
from psiflow_pipeline.data import read_structures, write_h5
from psiflow_pipeline.logs import end_process, rule_log

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    images = read_structures(snakemake.input.structures, settings["periodic"])
    selected = rattled_frames(images, settings["n_rattled"], settings["sigma"], settings["strain"], settings["seed"])
    write_h5(selected, snakemake.output.selected)
    log.info("%d frames to label", len(selected))
end_process()
