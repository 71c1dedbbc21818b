"""PLUMED inputs: the lines of a file (the kernel checks them before any
MD: `psiflow_pipeline.preflight.check_plumed_inputs`)."""

from __future__ import annotations

from pathlib import Path


class PlumedInputError(ValueError):
    pass


def read_input(path) -> list[str]:
    """The input lines of a PLUMED file (comments and blank lines dropped)."""
    path = Path(path)
    if path.is_dir():
        raise PlumedInputError(f"{path}: is a directory, not a PLUMED input")
    if not path.is_file():
        raise PlumedInputError(f"{path}: PLUMED input not found")
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            lines.append(line)
    return lines
