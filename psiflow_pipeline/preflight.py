"""Checks of every input file the config names, run once per Snakemake
invocation in the main process, before any job: a refusal names the config
file, the key and, where it can, the frame, atom or template line."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from psiflow_pipeline.config import ConfigError
from psiflow_pipeline.geometry import closest_pair
from psiflow_pipeline.plumed import PlumedInputError, read_input


def _read_input_file(path: Path, reader, what: str, key: str, source: str):
    """`reader(path)`, or a ConfigError naming the config key when the file is missing or unreadable."""
    if path.is_dir():
        raise ConfigError(f"{source}: key '{key}': {path} is a directory, not a {what}")
    if not path.is_file():
        raise ConfigError(f"{source}: key '{key}': {what} {path} does not exist")
    try:
        return reader(path)
    except Exception as error:  # ASE raises many kinds for unreadable files
        raise ConfigError(f"{source}: key '{key}': cannot read {path}: {error}") from error


def _first_non_finite(array: np.ndarray) -> int | None:
    """The first row of `array` holding a NaN or infinity, or None."""
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def check_structures(system: dict, source: str) -> list:
    """Read every initial structure of `system`, refusing what cannot be simulated."""
    from ase.io import read

    images = []
    for k, name in enumerate(system["structures"]):
        key = f"system.structures.{k}"
        path = Path(name)
        frames = _read_input_file(path, lambda p: read(p, index=":"), "structure file", key, source)
        atoms = frames[-1]  # ASE's choice for a file of several frames: the last one
        where = f"{path} (frame {len(frames) - 1})"
        if len(atoms) == 0:
            raise ConfigError(f"{source}: key '{key}': {path} holds no atoms")
        atom = _first_non_finite(atoms.positions)
        if atom is not None:
            raise ConfigError(f"{source}: key '{key}': {where}, atom {atom}: position is not a finite number")
        if not np.isfinite(atoms.cell.array).all():
            raise ConfigError(f"{source}: key '{key}': {where}: the cell is not finite")
        if system["periodic"]:
            if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
                raise ConfigError(
                    f"{source}: key '{key}': {path} has no cell, but system.periodic is true "
                    "(add a Lattice= to the extxyz comment line)"
                )
            atoms.pbc = True
        else:
            atoms.pbc = False
        close = closest_pair(atoms, 0.5)
        if close:
            i, j, distance = close
            apart = f"atoms {i} and {j} {distance:.3f} Å apart"
            raise ConfigError(f"{source}: key '{key}': {path} has {apart} (overlapping)")
        images.append(atoms)
    return images


def check_labeled_file(path, key: str, source: str):
    """An extxyz of reference data: every frame with a finite energy and finite forces."""
    from psiflow_pipeline.data import read_extxyz

    path = Path(path)
    frames = _read_input_file(path, read_extxyz, "labeled data file", key, source)
    if len(frames) == 0:
        raise ConfigError(f"{source}: key '{key}': {path} holds no frames")
    for k in range(len(frames)):
        sl = frames.atoms_of(k)
        forces = frames.atom["forces"][sl]
        if np.isnan(frames.frame["energy"][k]) or np.isnan(forces).all():
            raise ConfigError(f"{source}: key '{key}': frame {k} of {path} has no energy or no forces")
        if not np.isfinite(frames.frame["energy"][k]):
            raise ConfigError(f"{source}: key '{key}': frame {k} of {path}: the energy is not a finite number")
        for column, values in (("position", frames.atom["positions"][sl]), ("force", forces)):
            atom = _first_non_finite(values)
            if atom is not None:
                raise ConfigError(
                    f"{source}: key '{key}': frame {k} of {path}, atom {atom}: {column} is not a finite number"
                )
        stress = frames.frame["stress"][k]
        if not np.isnan(stress).all() and not np.isfinite(stress).all():
            raise ConfigError(f"{source}: key '{key}': frame {k} of {path}: the stress is not finite")
    return frames


def check_reference_md(path, key: str, source: str) -> list:
    """The frames of a reference MD whose structure the validation run is compared with (no labels needed)."""
    from ase.io import read

    path = Path(path)
    frames = _read_input_file(path, lambda p: read(p, index=":"), "reference MD file", key, source)
    if not frames or not all(atoms.cell.rank == 3 for atoms in frames):
        raise ConfigError(f"{source}: key '{key}': {path} holds no periodic frames to compare structure with")
    return frames


def check_elements(images: list, template: str, template_path, initial_data=None, test_set=None, source="config"):
    """Every element of the system has a &KIND in a template that uses kinds (DFT;
    xTB needs none), and the test set holds no element that no training data holds."""
    from psiflow_pipeline.cp2k.template import template_elements

    elements = {symbol for atoms in images for symbol in atoms.get_chemical_symbols()}
    kinds = template_elements(template)
    if kinds and elements - kinds:
        raise ConfigError(
            f"{source}: key 'reference.input': {template_path} has no &KIND for "
            f"{', '.join(sorted(elements - kinds))} of system.structures"
        )
    trained = elements | set(initial_data.symbols() if initial_data is not None else [])
    unseen = set(test_set.symbols() if test_set is not None else []) - trained
    if unseen:
        raise ConfigError(
            f"{source}: key 'evaluation.test_set': holds {', '.join(sorted(unseen))}, "
            "which no training data holds (system.structures, bootstrap.initial_data): the model cannot predict it"
        )


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
    for k, walker in enumerate(config["walkers"]):
        if walker["plumed"]:
            try:
                check_input(walker["plumed"], len(images[walker["structure"]]), walker["timestep"])
            except PlumedInputError as error:
                raise ConfigError(f"{source}: key 'walkers.{k}.plumed': {error}") from error


def check_inputs(config: dict, source: str) -> None:
    """Every check of the files a validated, located config names; raises
    ConfigError or TemplateError. The CP2K template is parsed by CP2K itself
    (`cp2k --check`) when the executable is on PATH."""
    from psiflow_pipeline.cp2k.command import command_from_config
    from psiflow_pipeline.cp2k.template import TemplateError, check_template, check_with_cp2k

    images = check_structures(config["system"], source)
    check_plumed_inputs(config, images, source)
    from psiflow_pipeline.data import Frames

    initial = config["bootstrap"]["initial_data"]
    labeled = {
        "bootstrap.initial_data": check_labeled_file(initial, "bootstrap.initial_data", source) if initial else None
    }
    test_sets = [
        check_labeled_file(path, f"evaluation.test_set.{k}", source)
        for k, path in enumerate(config["evaluation"]["test_set"])
    ]
    labeled["evaluation.test_set"] = Frames.concatenate(test_sets) if test_sets else None
    for k, path in enumerate(config["validation"]["reference"]):
        check_reference_md(path, f"validation.reference.{k}", source)
    template_path = config["reference"]["input"]
    command = command_from_config(config["execution"]["label"])
    try:
        template = check_template(template_path)
        if shutil.which(command.executable):
            check_with_cp2k(template_path, template, images[0], command, stress=config["reference"]["stress"])
    except TemplateError as error:
        raise ConfigError(f"{source}: key 'reference.input': {error}") from error
    check_elements(
        images, template, template_path, labeled["bootstrap.initial_data"], labeled["evaluation.test_set"], source
    )
