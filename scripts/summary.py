"""Rule summary: metrics, learning curves, parity plot, deviation histograms, the
calibration figure, the walker table, provenance and the final committee, under results/summary/."""

import os
import shutil
from pathlib import Path

import numpy as np
import yaml

from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.report import (
    MODEL_README,
    calibration_figure,
    collect_metrics,
    deviation_histograms,
    learning_curves,
    parity,
    provenance,
    summary_text,
    walker_table,
)

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    inputs, outputs, settings = snakemake.input, snakemake.output, snakemake.params.settings
    metrics, labels = collect_metrics(inputs.metrics, inputs.datasets)
    metrics.to_csv(outputs.metrics, index=False)
    learning_curves(metrics, labels, outputs.curve)
    with np.load(inputs.parity) as data:
        parity(dict(data), outputs.parity, len(inputs.metrics) - 1)
    deviation_histograms(inputs.candidates, settings["trust_lo"], settings["trust_hi"], outputs.deviations)
    calibration_figure(inputs.fresh_parity, outputs.calibration)
    walker_table(inputs.candidates).to_csv(outputs.walkers, index=False)
    record = provenance(snakemake.config, settings["iterations"], os.environ.get("PSIFLOW_PIPELINE_SOURCE"))
    Path(outputs.provenance).write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    for package, copy in zip(inputs.models, outputs.models, strict=True):
        shutil.copy(package, copy)
    Path(outputs.readme).write_text(MODEL_README.format(members=len(outputs.models)))
    verdict = yaml.safe_load(Path(inputs.verdict[0]).read_text()) if inputs.verdict else None
    text = summary_text(metrics, labels, verdict)
    Path(outputs.text).write_text(text)
    log.info("\n%s\n%s", metrics.to_string(), text)
end_process()
