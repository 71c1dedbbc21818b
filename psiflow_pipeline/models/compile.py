"""AOTInductor compilation of a packaged model (`nequip-compile`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from psiflow_pipeline.data import replace_atomically
from psiflow_pipeline.models.training import nequip_executable


def compile_model(package, output, device: str, log_path) -> None:
    """AOTInductor-compile a packaged model for ASE (`nequip-compile`)."""

    def compile_to(tmp):
        with open(log_path, "a") as log:
            subprocess.run(
                [nequip_executable("nequip-compile"), str(package), str(tmp)]
                + ["--mode", "aotinductor", "--device", device, "--target", "ase"],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )

    replace_atomically(Path(output).resolve(), compile_to)
