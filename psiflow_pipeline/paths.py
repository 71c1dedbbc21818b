"""Where a run keeps its files, relative to the working directory. Every path
pattern of the pipeline is defined here; the rules fill in `{i}` and `{m}`
as wildcards, scripts and tools with numbers."""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"
SUMMARY = f"{RESULTS}/summary"
FINAL_MODEL = f"{SUMMARY}/model"
ISOLATED_ATOMS = f"{RESULTS}/isolated_atoms.csv"
PROGRESS = f"{RESULTS}/progress"
VALIDATION = f"{SUMMARY}/validation"
# torch.compile's kernels, shared by a study's training jobs
COMPILE_CACHE = f"{RESULTS}/.torch_compile_cache"


def iteration_dir(i="{i}") -> str:
    return f"{RESULTS}/iter_{i}"


def iteration_file(name: str, i="{i}") -> str:
    """results/iter_{i}/<name>: candidates.h5, walkers.h5, selected.h5, labeled.h5, dataset.h5, metrics.csv, ..."""
    return f"{iteration_dir(i)}/{name}"


def stop_decision(i="{i}") -> str:
    """Whether the loop stops after iteration i (with a `stop` criterion only)."""
    return iteration_file("stop.yaml", i)


def member_dir(i="{i}", m="{m}") -> str:
    return iteration_file(f"models/member_{m}", i)


def member_model(i="{i}", m="{m}") -> str:
    """The deployable package of member m of iteration i."""
    return f"{member_dir(i, m)}/model.nequip.zip"


def training_dir(i="{i}", m="{m}") -> str:
    """nequip-train's folder of member m of iteration i (wiped when it trains again)."""
    return f"{member_dir(i, m)}/training"


def label_cache(i="{i}") -> str:
    """Finished single points of iteration i; not an output, so Snakemake never deletes it."""
    return iteration_file("label_cache", i)


def colvar_dir(i="{i}") -> str:
    return iteration_file("colvar", i)


def final_model(m="{m}", suffix: str = "nequip.zip") -> str:
    return f"{FINAL_MODEL}/member_{m}.{suffix}"


def summary_file(name: str) -> str:
    return f"{SUMMARY}/{name}"


def validation_file(name: str) -> str:
    """The production MD with the final committee: series.csv, rdf.csv, validation.png, verdict.yaml."""
    return f"{VALIDATION}/{name}"


def log_file(rule: str, name: str) -> str:
    return f"{LOGS}/{rule}/{name}.log"


def benchmark_file(rule: str, name: str) -> str:
    """Snakemake's resource record of a job (`benchmark:`), apart from the benchmark scripts in benchmarks/."""
    return f"{LOGS}/benchmarks/{rule}/{name}.tsv"


def parsl_run_dir(rule: str, i="{i}") -> str:
    """Parsl's run directory (and CP2K's and the walkers' scratch) of a job."""
    return f"{LOGS}/parsl/{rule}/iter_{i}"
