#!/usr/bin/env bash
# Installs psiflow's library (psiflow-pipeline) into this environment from
# PSIFLOW_PIPELINE_SOURCE, which the Snakefile sets: the workflow's checkout
# (installed editable) or the git repository a module was deployed from.
set -euo pipefail
if [ -d "$PSIFLOW_PIPELINE_SOURCE" ]; then
  python -m pip install --no-deps -e "$PSIFLOW_PIPELINE_SOURCE"
else
  python -m pip install --no-deps "psiflow-pipeline @ $PSIFLOW_PIPELINE_SOURCE"
fi
