"""The configuration: schema validation with defaults, the consistency rules
the schema cannot say, and where the files it names are. Every error names
the config file and the key."""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Callable
from functools import cache
from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    pass


@cache
def schema() -> dict:
    """The config schema shipped with the package (also workflow/schemas/)."""
    return yaml.safe_load(importlib.resources.files("psiflow_pipeline").joinpath("config.schema.yaml").read_text())


def _with_defaults(validator_class):
    """A validator that also fills in defaults (as snakemake.utils.validate does).

    Schedule entries carry no defaults (their properties are $refs without
    one), so an entry changes only the keys it names.
    """
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def key_path(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate(config: dict, source: str) -> dict:
    """Fill defaults into `config` and check it against the schema and for consistency.

    We use jsonschema directly rather than snakemake.utils.validate so that the
    error names the offending key path and the config file in one line.
    """
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema())
    # the most specific error: for "a number or a list" that is the number's bound
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        message = f"unknown key: {error.message}" if error.validator == "additionalProperties" else error.message
        raise ConfigError(f"{source}: key '{key_path(error.absolute_path)}': {message}")
    for section, key, is_list in FILE_KEYS:  # one path (or none) where a list may be given: a list
        value = config[section][key]
        if is_list and not isinstance(value, list):
            config[section][key] = [] if value is None else [value]
    _check_consistency(config, source)
    return config


def _from_iteration(i: int) -> str:
    """Where a scheduled value applies, for an error message ("" from the start)."""
    return f" (from iteration {i} on)" if i else ""


def _check_consistency(config: dict, source: str) -> None:
    from psiflow_pipeline.settings import at_iteration, batching_refused, schedule_points

    selection = config["selection"]
    for i in schedule_points(selection):
        resolved = at_iteration(selection, i)
        if resolved["trust_lo"] >= resolved["trust_hi"]:
            raise ConfigError(
                f"{source}: key 'selection.trust_lo' ({resolved['trust_lo']}) must be below "
                f"'selection.trust_hi' ({resolved['trust_hi']}){_from_iteration(i)}"
            )
    _check_stress(config, source)
    _check_compiled_training(config, source)
    n_structures = len(config["system"]["structures"])
    validation = config["validation"]
    if validation["structure"] >= n_structures:
        raise ConfigError(
            f"{source}: key 'validation.structure': {validation['structure']} but system.structures "
            f"has {n_structures} entries"
        )
    if validation["ensemble"] == "npt" and not config["system"]["periodic"]:
        raise ConfigError(f"{source}: key 'validation.ensemble': npt needs a periodic system (system.periodic)")
    for k, walker in enumerate(config["walkers"]):
        if walker["ensemble"] == "npt" and not config["system"]["periodic"]:
            raise ConfigError(f"{source}: key 'walkers.{k}.ensemble': npt needs a periodic system (system.periodic)")
        if walker["structure"] >= n_structures:
            raise ConfigError(
                f"{source}: key 'walkers.{k}.structure': {walker['structure']} but system.structures "
                f"has {n_structures} entries"
            )
        for i in schedule_points(walker):
            resolved = at_iteration(walker, i)
            refused = batching_refused(resolved)
            if refused:
                raise ConfigError(
                    f"{source}: key 'walkers.{k}.batch': {resolved['batch']}{_from_iteration(i)}, but {refused}"
                )


def _check_compiled_training(config: dict, source: str) -> None:
    """NequIP's compiled training fails on batches that never hold 2 frames."""
    from psiflow_pipeline.settings import at_iteration, schedule_points

    first = config["execution"]["train"]["compile_from_iteration"]
    if first is None:
        return
    for i in sorted({first} | {i for i in schedule_points(config["model"]) if i > first}):
        batch_size = at_iteration(config["model"], i)["batch_size"]
        if batch_size < 2:
            raise ConfigError(
                f"{source}: key 'model.batch_size': {batch_size}"
                + _from_iteration(i)
                + f", but execution.train.compile_from_iteration ({first}) trains through torch.compile,"
                " which needs batches of at least 2 frames"
            )


def _check_stress(config: dict, source: str) -> None:
    """A walker that changes the cell follows the committee's stress, which it
    learns only from stress labels with a stress term in the loss."""
    from psiflow_pipeline.settings import at_iteration, cell_moves, moves_cell, schedule_points, stress_labels

    if not cell_moves(config):
        return
    k, group = next((k, g) for k, g in enumerate(config["walkers"]) if moves_cell(g))
    what = (
        f"{source}: key 'walkers.{k}.ensemble': {group['ensemble']} walkers change the cell by the committee's stress"
    )
    if not stress_labels(config):
        raise ConfigError(f"{what}, which it never learns without stress labels: set reference.stress to auto or true")
    for i in schedule_points(config["model"]):
        if at_iteration(config["model"], i)["stress_weight"] <= 0:
            raise ConfigError(
                f"{what}, which it never learns with model.stress_weight 0"
                + _from_iteration(i)
                + ": give the stress a weight in the training loss"
            )


# -- files named by the config ------------------------------------------------

# the config keys that name input files: (section, key, whether a list)
FILE_KEYS = [
    ("system", "structures", True),
    ("bootstrap", "initial_data", False),
    ("reference", "input", False),
    ("evaluation", "test_set", True),
    ("validation", "reference", True),
]


def locate(path: str, shipped: Callable[[str], str | None]) -> str:
    """Where a file named in the config is: an absolute path as it is; a
    relative one in the working directory, else among the workflow's own
    files (`shipped(path)`, e.g. resources/cp2k/xtb.inp of a deployed
    module), else as given (the checks then say it is missing)."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    return shipped(path) or path


def locate_files(config: dict, shipped: Callable[[str], str | None]) -> dict:
    """A validated `config` with every file it names located (`locate`)."""
    for section, key, is_list in FILE_KEYS:
        value = config[section][key]
        if is_list:
            config[section][key] = [locate(p, shipped) for p in value]
        elif value is not None:
            config[section][key] = locate(value, shipped)
    for walker in config["walkers"]:
        if walker["plumed"] is not None:
            walker["plumed"] = locate(walker["plumed"], shipped)
    return config


def load(path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}
