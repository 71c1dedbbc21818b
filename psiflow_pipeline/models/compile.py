"""AOTInductor compilation of a packaged model (`nequip-compile`), checked
against the package on a real frame."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
from ase import Atoms

from psiflow_pipeline.data import replace_atomically
from psiflow_pipeline.models.training import nequip_executable

# float32 models: the compiled and the eager model agree to this (eV, eV/Å)
TOLERANCE = 1e-4


def compile_model(package, output, device: str, log_path, check: Atoms) -> float:
    """AOTInductor-compile a packaged model for ASE; returns the largest force
    difference between the compiled model and the package on `check`.

    nequip-compile's own check also compares the stress, which is NaN for a
    molecule without a cell (and NaN never equals NaN), so it is skipped and
    energy and forces are compared here instead, on a frame of the run's data.
    """
    from psiflow_pipeline.models.committee import load_calculator

    def compile_to(tmp):
        with open(log_path, "a") as log:
            subprocess.run(
                [nequip_executable("nequip-compile"), str(package), str(tmp)]
                + ["--mode", "aotinductor", "--device", device, "--target", "ase"],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                env=dict(os.environ, NEQUIP_SKIP_AOTI_MODEL_CHECK="1"),
            )
        results = []
        for model in (package, tmp):
            calculator = load_calculator(model, device)
            calculator.calculate(check.copy(), ["energy", "forces"])
            results.append(calculator.results)
        energy = abs(results[0]["energy"] - results[1]["energy"])
        force = float(np.abs(results[0]["forces"] - results[1]["forces"]).max())
        if energy > TOLERANCE * len(check) or force > TOLERANCE:
            raise RuntimeError(
                f"the compiled model differs from {package}: energy by {energy} eV, forces by {force} eV/Å"
            )
        differences.append(force)

    differences: list[float] = []
    replace_atomically(Path(output).resolve(), compile_to)
    return differences[0]
