"""PLUMED inputs: checked with the real kernel before any MD."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class PlumedInputError(ValueError):
    pass


def read_input(path) -> list[str]:
    """The input lines of a PLUMED file (comments and blank lines dropped)."""
    path = Path(path)
    if not path.is_file():
        raise PlumedInputError(f"{path}: PLUMED input not found")
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            lines.append(line)
    return lines


def check_input(path, n_atoms: int, timestep_fs: float = 0.5) -> list[str]:
    """Let the PLUMED kernel parse every line; raise naming the file and line it rejects."""
    from plumed import Plumed

    path = Path(path)
    lines = read_input(path)
    numbered = [
        (number, raw.split("#")[0].strip())
        for number, raw in enumerate(path.read_text().splitlines(), start=1)
        if raw.split("#")[0].strip()
    ]
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # PLUMED opens its output files on reading the input
        kernel = Plumed()
        try:
            kernel.cmd("setMDEngine", "python")
            kernel.cmd("setNatoms", n_atoms)
            kernel.cmd("setTimestep", timestep_fs / 1000)
            kernel.cmd("setKbT", 2.5)
            kernel.cmd("setLogFile", "plumed.log")
            kernel.cmd("init")
            for number, line in numbered:
                try:
                    kernel.cmd("readInputLine", line)
                except Exception as error:
                    message = str(error).strip().splitlines()
                    detail = next((m for m in message if m.startswith("ERROR")), message[-1] if message else "")
                    raise PlumedInputError(f"{path}:{number}: PLUMED rejects '{line}': {detail}") from error
        finally:
            kernel.finalize()
            os.chdir(previous)
    return lines


def check_plumed_inputs(config: dict, images: list, source: str) -> None:
    """Every walker group's PLUMED input, parsed by the PLUMED kernel."""
    from psiflow.config import ConfigError

    for k, walker in enumerate(config["walkers"]):
        if walker["plumed"]:
            try:
                check_input(walker["plumed"], len(images[walker["structure"]]), walker["timestep"])
            except PlumedInputError as error:
                raise ConfigError(f"{source}: key 'walkers.{k}.plumed': {error}") from error
