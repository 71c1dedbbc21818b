"""The settings that determine each job's output, resolved for its iteration.

A job's Snakemake `params` are exactly what these functions return: schedule
entries applied for the job's iteration, defaults filled (by validation),
files that the config names represented by their content, in one canonical
form (sorted keys, integral floats as ints). Snakemake compares params as
written, so a setting that changes nothing compares equal, and a setting
that changes a result reruns exactly the jobs it reaches. A setting that
decides which files a job reads (the committee size, the iterations the
summary covers) is part of its params too: the profiles leave Snakemake's
`input` trigger off, so that a moved file reruns nothing. Execution settings
(cores, ranks, executables, wall times, providers, compilation) are never
part of them: scripts read those from the config where they are used.
"""

from __future__ import annotations

import copy
import hashlib
import math
from pathlib import Path

# the keys of `model` that do not change what a member learns
_MODEL_EXECUTION_KEYS = ("committee", "compile", "schedule")


def at_iteration(section: dict, iteration: int) -> dict:
    """`section` as it applies in `iteration`: its schedule entries with
    `from_iteration <= iteration` applied in order of `from_iteration` (in
    list order among equal ones), the schedule itself left out."""
    resolved = {key: copy.deepcopy(value) for key, value in section.items() if key != "schedule"}
    entries = sorted(section.get("schedule", []), key=lambda entry: entry["from_iteration"])
    for entry in entries:
        if entry["from_iteration"] <= iteration:
            resolved.update({key: copy.deepcopy(value) for key, value in entry.items() if key != "from_iteration"})
    return resolved


def schedule_points(section: dict) -> list[int]:
    """The iterations at which `section`'s settings may change: 0 and every `from_iteration`."""
    return sorted({0} | {entry["from_iteration"] for entry in section.get("schedule", [])})


def canonical(value):
    """One form for equal settings: sorted keys, lists for tuples, integral
    floats as ints (300.0 -> 300), so that Snakemake sees no change where
    there is none."""
    if isinstance(value, dict):
        return {str(key): canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):  # numpy scalars included
        number = float(value)
        return int(number) if math.isfinite(number) and number.is_integer() else number
    return value


def file_digest(path) -> str:
    """What stands for a file's content in params: its SHA-256 (16 hex digits)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _digests(paths) -> list[str]:
    return [file_digest(path) for path in paths]


# -- per step -------------------------------------------------------------------


def bootstrap(config: dict) -> dict:
    """Iteration 0's frames to label: rattled copies of the structures."""
    boot = config["bootstrap"]
    return canonical(
        {
            "seed": config["seed"],
            "periodic": config["system"]["periodic"],
            "structures": _digests(config["system"]["structures"]),
            "n_rattled": boot["n_rattled"],
            "sigma": boot["sigma"],
            "strain": boot["strain"],
        }
    )


def walkers(config: dict, iteration: int) -> list[dict]:
    """One settings dict per walker in `iteration`: each group's schedule
    applied, list-valued temperatures and pressures spread round-robin, a
    PLUMED input as its lines."""
    from psiflow_pipeline.plumed import read_input

    settings = []
    for group in config["walkers"]:
        group = at_iteration(group, iteration)
        count = group.pop("count")
        temperatures, pressures = _as_list(group["temperature"]), _as_list(group["pressure_bar"])
        plumed = read_input(group["plumed"]) if group["plumed"] else None
        for k in range(count):
            walker = dict(group, plumed=plumed)
            walker["temperature"] = temperatures[k % len(temperatures)]
            walker["pressure_bar"] = pressures[k % len(pressures)]
            settings.append(walker)
    return canonical(settings)


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def propagator(walker: int, settings: dict, committee: int) -> int | None:
    """The committee member whose forces move `walker`: None for the members'
    mean (`propagate: mean`), else member walker mod committee size, so that
    the walkers of a group follow different members."""
    return None if settings["propagate"] == "mean" else walker % committee


# what a walker may differ in from the others of its task
PER_WALKER = ("structure", "temperature", "pressure_bar")


def batching_refused(walker: dict) -> str:
    """Why a walker group with `batch` > 1 cannot be advanced in batches, or ""."""
    if walker["batch"] == 1:
        return ""
    if walker["plumed"] is not None:
        return "PLUMED-biased walkers run one per task"
    if walker["ensemble"] == "nve" or (walker["ensemble"] == "nvt" and walker["thermostat"] == "langevin"):
        return ""
    return "only nve and nvt with the langevin thermostat are batched"


def batches(walkers: list[dict], committee: int) -> list[list[int]]:
    """Which walkers share a task: those whose settings are equal but for
    `PER_WALKER` and that follow the same committee member, in chunks of
    their `batch`; every other walker alone. In walker order."""
    groups: dict[tuple, list[int]] = {}
    for k, walker in enumerate(walkers):
        if walker["batch"] == 1:  # (validation refused batches of walkers that cannot share a task)
            groups[("alone", k)] = [k]
            continue
        shared = {key: value for key, value in walker.items() if key not in PER_WALKER}
        groups.setdefault((repr(sorted(shared.items())), propagator(k, walker, committee)), []).append(k)
    tasks = []
    for members in groups.values():
        size = walkers[members[0]]["batch"]
        tasks += [members[start : start + size] for start in range(0, len(members), size)]
    return sorted(tasks)


def sample(config: dict, iteration: int) -> dict:
    """The walkers of `iteration`, what resets them, and, where walkers are
    batched, which of them share a task (`batches`: lists of walker indices)."""
    group_walkers = walkers(config, iteration)
    tasks = batches(group_walkers, config["model"]["committee"])
    settings = {
        "seed": config["seed"],
        "periodic": config["system"]["periodic"],
        "structures": _digests(config["system"]["structures"]),
        # `batch` lives on in `batches`: without batching, the params are what they were before the key existed
        "walkers": [{key: value for key, value in walker.items() if key != "batch"} for walker in group_walkers],
        "trust_hi": selection(config, iteration)["trust_hi"],
        "committee": config["model"]["committee"],
    }
    if len(tasks) < len(group_walkers):
        settings["batches"] = tasks
    return canonical(settings)


def selection(config: dict, iteration: int) -> dict:
    return canonical(dict(at_iteration(config["selection"], iteration), seed=config["seed"]))


def moves_cell(group: dict) -> bool:
    """Whether a walker group changes the cell: NPT, or a relaxation with the cell."""
    return group["ensemble"] == "npt" or (group["ensemble"] == "opt" and group["optimize_cell"])


def cell_moves(config: dict) -> bool:
    return config["system"]["periodic"] and any(moves_cell(group) for group in config["walkers"])


def stress_labels(config: dict) -> bool:
    """Whether the labels carry the stress: reference.stress, where `auto`
    means whenever a walker changes the cell."""
    stress = config["reference"]["stress"]
    return cell_moves(config) if stress == "auto" else bool(stress)


def label(config: dict) -> dict:
    """The level of theory: the template's text and whether stress is computed."""
    return canonical({"template": Path(config["reference"]["input"]).read_text(), "stress": stress_labels(config)})


def label_policy(config: dict, iteration: int) -> dict:
    """How many failures the label step of `iteration` tolerates (not a param:
    it changes no label)."""
    reference = at_iteration(config["reference"], iteration)
    return {"max_failed_fraction": reference["max_failed_fraction"]}


def isolated_atoms(config: dict) -> dict:
    return canonical(
        {
            "template": Path(config["reference"]["input"]).read_text(),
            "structures": _digests(config["system"]["structures"]),
        }
    )


def training(config: dict, iteration: int) -> dict:
    """What a member of `iteration` learns from: architecture, training settings, seed."""
    model = at_iteration(config["model"], iteration)
    for key in _MODEL_EXECUTION_KEYS:
        model.pop(key, None)
    stress = stress_labels(config) and model["stress_weight"] > 0
    if not stress:
        model.pop("stress_weight")
    # only what the schedule uses; the plateau schedule's params are as they
    # were before `lr_schedule` existed, so an upgrade reruns no training
    if model["lr_schedule"] == "plateau":
        model.pop("lr_schedule")
    else:
        model.pop("lr_factor")
        model.pop("lr_patience")
    return canonical(
        dict(model, seed=config["seed"], isolated_atoms=config["reference"]["isolated_atoms"], stress=stress)
    )


def evaluation(config: dict) -> dict:
    return canonical(
        {
            "valid_fraction": config["model"]["valid_fraction"],
            "test_set": _digests(config["evaluation"]["test_set"]),
            "committee": config["model"]["committee"],
            "isolated_atoms": config["reference"]["isolated_atoms"],
        }
    )


def initial_data(config: dict) -> dict:
    return {"initial_data": file_digest(config["bootstrap"]["initial_data"])}


def summary(config: dict, last: int) -> dict:
    """The iterations summarised (0..`last`, the final one), the committee
    shipped, and the thresholds drawn on the deviation histograms (those of
    the last iteration)."""
    thresholds = selection(config, last)
    return canonical(
        {
            "iterations": last,
            "committee": config["model"]["committee"],
            "trust_lo": thresholds["trust_lo"],
            "trust_hi": thresholds["trust_hi"],
        }
    )


def final_model(last: int) -> dict:
    """Which iteration's committee is compiled as the final one."""
    return {"iteration": last}


def stop(config: dict, i: int) -> dict:
    """Whether the loop stops after iteration i: the `stop` criteria and the
    trust_lo of iteration i, which the count of uncertain frames uses."""
    return canonical(dict(config["stop"], trust_lo=selection(config, i)["trust_lo"]))


# the keys a validation run takes from the first walker group: what its dynamics
# follow, its integrator and checks
_VALIDATION_WALKER_KEYS = (
    "propagate",
    "thermostat",
    "barostat",
    "friction",
    "tdamp",
    "pdamp",
    "min_distance",
    "max_force",
    "max_temperature_factor",
    "max_volume_change",
)


def validation(config: dict, last: int) -> dict:
    """The production MD with the final committee (of iteration `last`): the
    first walker group's dynamics (`propagate`), integrator settings and checks
    (as in the last iteration) at the validation's conditions, where it starts,
    and the reference RDFs."""
    v = config["validation"]
    # one file: its digest alone, as before lists were allowed, so that a
    # finished study keeps its validation
    references = _digests(v["reference"])
    group = at_iteration(config["walkers"][0], last)
    walker = {key: group[key] for key in _VALIDATION_WALKER_KEYS}
    walker.update(
        ensemble=v["ensemble"],
        temperature=v["temperature"],
        pressure_bar=v["pressure_bar"],
        timestep=v["timestep"],
        steps=round(v["duration_ps"] * 1000 / v["timestep"]),
        stride=v["stride"],
    )
    return canonical(
        {
            "walker": walker,
            "structure": file_digest(config["system"]["structures"][v["structure"]]),
            "periodic": config["system"]["periodic"],
            "seed": config["seed"],
            "iterations": last,
            "committee": config["model"]["committee"],
            "trust_hi": selection(config, last)["trust_hi"],
            "reference": references if len(references) > 1 else next(iter(references), None),
            "rdf_r_max": v["rdf_r_max"],
            "rdf_bins": v["rdf_bins"],
        }
    )


def every_iteration(config: dict, last: int) -> dict:
    """The settings of every job of the run (iterations 0..`last`), by
    iteration: the provenance of its results."""
    record = {
        "label": dict(label(config), template=file_digest(config["reference"]["input"])),
        "iteration_0": {"bootstrap": bootstrap(config), "training": training(config, 0)},
    }
    for i in range(1, last + 1):
        record[f"iteration_{i}"] = {
            "sample": sample(config, i),
            "selection": selection(config, i),
            "training": training(config, i),
        }
    return record
