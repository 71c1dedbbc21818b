"""Configuration: schema validation with defaults, and input checks that run
before any compute. Every error names the config file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import numpy as np
import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def _with_defaults(validator_class):
    """A validator that also fills in defaults (as snakemake.utils.validate does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate(config: dict, source: str) -> dict:
    """Fill defaults into `config` and check it against the schema and for consistency.

    We use jsonschema directly rather than snakemake.utils.validate so that the
    error names the offending key path and the config file in one line.
    """
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    # the most specific error: for "a number or a list" that is the number's bound
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        if error.validator == "additionalProperties":
            message = f"unknown key: {error.message}"
        else:
            message = error.message
        raise ConfigError(f"{source}: key '{_key(error.absolute_path)}': {message}")
    _check_consistency(config, source)
    return config


def _check_consistency(config: dict, source: str) -> None:
    selection = config["selection"]
    if selection["trust_lo"] >= selection["trust_hi"]:
        raise ConfigError(
            f"{source}: key 'selection.trust_lo' ({selection['trust_lo']}) must be below "
            f"'selection.trust_hi' ({selection['trust_hi']})"
        )
    n_structures = len(config["system"]["structures"])
    for k, walker in enumerate(config["walkers"]):
        if walker["ensemble"] == "npt" and not config["system"]["periodic"]:
            raise ConfigError(f"{source}: key 'walkers.{k}.ensemble': npt needs a periodic system (system.periodic)")
        if walker["structure"] >= n_structures:
            raise ConfigError(
                f"{source}: key 'walkers.{k}.structure': {walker['structure']} but system.structures "
                f"has {n_structures} entries"
            )


def _read_input_file(path: Path, reader, what: str, key: str, source: str):
    """`reader(path)`, or a ConfigError naming the config key when the file is missing or unreadable."""
    if not path.is_file():
        raise ConfigError(f"{source}: key '{key}': {what} {path} does not exist")
    try:
        return reader(path)
    except Exception as error:  # ASE raises many kinds for unreadable files
        raise ConfigError(f"{source}: key '{key}': cannot read {path}: {error}") from error


def check_structures(system: dict, source: str) -> list:
    """Read every initial structure of `system`, refusing what cannot be simulated."""
    from ase.io import read

    images = []
    for k, name in enumerate(system["structures"]):
        key = f"system.structures.{k}"
        path = Path(name)
        atoms = _read_input_file(path, read, "structure file", key, source)
        if len(atoms) == 0:
            raise ConfigError(f"{source}: key '{key}': {path} holds no atoms")
        if system["periodic"]:
            if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
                raise ConfigError(
                    f"{source}: key '{key}': {path} has no cell, but system.periodic is true "
                    "(add a Lattice= to the extxyz comment line)"
                )
            atoms.pbc = True
        else:
            atoms.pbc = False
        if len(atoms) > 1:
            distances = atoms.get_all_distances(mic=atoms.pbc.any())
            closest = float(np.min(distances[np.triu_indices(len(atoms), 1)]))
            if closest < 0.5:
                raise ConfigError(f"{source}: key '{key}': {path} has atoms {closest:.3f} Å apart (overlapping)")
        images.append(atoms)
    return images


def load(path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def check_labeled_file(path, key: str, source: str):
    """An extxyz of reference data: every frame needs an energy and forces."""
    from psiflow.data import read_extxyz

    path = Path(path)
    frames = _read_input_file(path, read_extxyz, "labeled data", key, source)
    if len(frames) == 0:
        raise ConfigError(f"{source}: key '{key}': {path} holds no frames")
    for k in range(len(frames)):
        sl = frames.atoms_of(k)
        if not np.isfinite(frames.frame["energy"][k]) or not np.isfinite(frames.atom["forces"][sl]).all():
            raise ConfigError(f"{source}: key '{key}': frame {k} of {path} has no energy or no forces")
    return frames


def template_elements(template: str) -> set[str]:
    """The elements of a CP2K template's &KIND sections (ELEMENT, else the label's letters)."""
    elements = set()
    for label, body in re.findall(r"^\s*&KIND\s+(\S+)(.*?)^\s*&END", template, flags=re.M | re.S | re.I):
        element = re.search(r"^\s*ELEMENT\s+(\w+)", body, flags=re.M | re.I)
        name = element.group(1) if element else re.match(r"[A-Za-z]+", label).group(0)
        elements.add(name.capitalize())
    return elements


def check_elements(
    images: list, template: str, template_path, initial_data=None, test_set=None, source: str = "config"
) -> None:
    """Every element of the system has a &KIND in a template that uses kinds (DFT;
    xTB needs none), and the test set holds no element that no training data holds."""
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
