#!/usr/bin/env bash
# Set up everything psiflow needs on this machine; a second run installs nothing.
#   .venv/            Python packages pinned in requirements.txt (+ the PLUMED kernel),
#                     and the pipeline's own library (psiflow-pipeline, editable)
#   cp2k.psmp         from the system package manager when root and missing
#   --slurm           also SLURM and munge, for the tests' one-node cluster
set -euo pipefail
cd "$(dirname "$0")/.."
with_slurm=0
[ "${1:-}" = "--slurm" ] && with_slurm=1

PYTHON=${PYTHON:-python3}
STAMP=.venv/.psiflow-installed

need_root_apt() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null
}

# -- CP2K ---------------------------------------------------------------------
if ! command -v cp2k.psmp >/dev/null; then
  if need_root_apt; then
    echo "setup: installing CP2K from the system packages"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q cp2k
  else
    echo "setup: cp2k.psmp not found on PATH. Provide it, e.g. 'conda install -c conda-forge cp2k'" >&2
    echo "       or 'module load CP2K', or run this script as root on Debian/Ubuntu." >&2
    exit 1
  fi
fi

# -- SLURM (tests only: scripts/slurm_cluster.sh) ------------------------------------
if [ "$with_slurm" = 1 ] && ! command -v slurmctld >/dev/null; then
  if need_root_apt; then
    echo "setup: installing SLURM and munge from the system packages"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
  else
    echo "setup: slurm-wlm not found and not root: the SLURM tests will be skipped" >&2
  fi
fi

# -- Python environment ---------------------------------------------------------
want="$(sha256sum requirements.txt pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
  if need_root_apt; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  else
    echo "setup: '$PYTHON -m venv' is not available; install python3-venv" >&2
    exit 1
  fi
fi
echo "setup: creating .venv"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and alone: a plain resolution could pick a multi-GB CUDA build
.venv/bin/python -m pip install -q "$(grep '^torch==' requirements.txt)"
.venv/bin/python -m pip install -q -r requirements.txt
# the PLUMED kernel ships in this wheel; its other requirements are not needed
.venv/bin/python -m pip install -q --no-deps hillclimber==0.1.8
# the library the rule scripts share, editable: a checkout's changes apply at once
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -c "import plumed, nequip, parsl, snakemake, h5py, torch_sim, psiflow_pipeline"
echo "$want" > "$STAMP"
echo "setup: done"
