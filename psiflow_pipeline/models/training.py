"""Training one committee member: `nequip-train`, then `nequip-package build`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from psiflow_pipeline import paths
from psiflow_pipeline.models.training_config import training_config


def nequip_executable(name: str) -> str:
    """A console script of the running environment (rule scripts run with its python)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def can_compile() -> bool:
    """Whether Inductor (torch.compile, AOTInductor) can build kernels here: it writes C++."""
    return shutil.which("c++") is not None


def compiles_training(train_execution: dict, iteration: int) -> bool:
    """Whether the members of `iteration` train through torch.compile
    (`execution.train.compile_from_iteration`), which needs `can_compile()`."""
    first = train_execution["compile_from_iteration"]
    return first is not None and iteration >= first and can_compile()


def train_member(config: dict, workdir, output, threads: int, log_path) -> None:
    """Run `nequip-train` in `workdir`, then package the best checkpoint as
    `output`, in one process (`train_and_package`).

    The package is self-contained, so `results/` can move without breaking it.
    torch.compile keeps its kernels in the study's compile cache (or where
    TORCHINDUCTOR_CACHE_DIR says), so that only a study's first compiling
    job pays for compiling them; on a cluster that folder is on the shared
    file system, unlike Inductor's default under /tmp.
    """
    from psiflow_pipeline.data import replace_atomically

    workdir = Path(workdir).resolve()
    if workdir.exists():  # a rerun starts clean; Lightning would otherwise version its files
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(paths.COMPILE_CACHE).resolve()))

    def train_and_package(tmp):
        run = [sys.executable, "-m", "psiflow_pipeline.models.train_and_package", str(workdir), str(tmp)]
        with open(log_path, "a") as log:
            subprocess.run(run, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)

    replace_atomically(Path(output).resolve(), train_and_package)


def train_on_dataset(
    dataset_path,
    workdir,
    output,
    model: dict,
    seed: int,
    accelerator: str,
    threads: int,
    log_path,
    energy_shifts: dict | None = None,
    warm_start_from: str | None = None,
    resample_seed=None,
    compiled: bool = False,
):
    """Train one member on the train split of a dataset, validating on its valid split.

    With `resample_seed`, the member sees a resample with replacement of the
    training frames (a bootstrap committee). `compiled` trains through
    torch.compile (NequIP's compile_mode "compile").
    """
    from psiflow_pipeline.data import read_h5, write_extxyz
    from psiflow_pipeline.dataset import split

    workdir = Path(workdir).resolve()
    dataset = read_h5(dataset_path)
    train, valid = split(dataset, model["valid_fraction"])
    if len(valid) == 0:  # tiny datasets: validate on the training frames rather than on nothing
        valid = train
    if resample_seed is not None:
        rng = np.random.default_rng(resample_seed)
        train = train.take(rng.integers(0, len(train), len(train)))
    symbols = dataset.symbols()
    data_dir = workdir.parent / "data"  # beside the training folder, which a rerun wipes
    stress = bool(model.get("stress"))  # then every frame carries a stress, NaN where it has none
    write_extxyz(train, data_dir / "train.xyz", with_stress=stress)
    write_extxyz(valid, data_dir / "valid.xyz", with_stress=stress)
    config = training_config(
        str(data_dir / "train.xyz"),
        str(data_dir / "valid.xyz"),
        symbols,
        model,
        seed,
        accelerator,
        energy_shifts,
        warm_start_from,
        "compile" if compiled else "eager",
    )
    train_member(config, workdir, output, threads, log_path)
    return len(train), len(valid)
