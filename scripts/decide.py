"""Checkpoint decide: whether the loop stops after this iteration
(psiflow_pipeline.stopping.decide), written as YAML with its reason."""

from pathlib import Path

import pandas as pd
import yaml

from psiflow_pipeline.data import read_h5
from psiflow_pipeline.logs import end_process, rule_log
from psiflow_pipeline.stopping import decide

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    rmse = pd.read_csv(snakemake.input.metrics).set_index("subset").force_rmse
    fresh = rmse.get("new", float("nan"))  # no fresh label succeeded: no error to judge, no stop
    deviations = read_h5(snakemake.input.candidates).frame["deviation"]
    decision = decide(fresh, deviations, settings["trust_lo"], settings)
    Path(snakemake.output.decision).write_text(yaml.safe_dump(decision, sort_keys=False, allow_unicode=True))
    log.info(
        "%s after iteration %s: %s",
        "stop" if decision["stop"] else "continue",
        snakemake.wildcards.i,
        decision["reason"],
    )
end_process()
