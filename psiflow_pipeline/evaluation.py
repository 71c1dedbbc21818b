"""Errors of a committee against reference labels: energies per atom (eV/atom),
force components (eV/Å), stress components (GPa)."""

from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols
from ase.units import GPa

from psiflow_pipeline.data import Frames
from psiflow_pipeline.models.uncertainty import uncertainty

METRIC_COLUMNS = [
    "iteration",
    "model_iteration",
    "subset",
    "frames",
    "energy_rmse_per_atom",
    "energy_mae_per_atom",
    "force_rmse",
    "force_mae",
    "stress_rmse_gpa",
    "stress_mae_gpa",
    "deviation_mean",
    "energy_deviation_mean",
    "binding_energy_per_atom",
    "calibration_rank_correlation",
    "calibration_scale",
]


def predict(frames: Frames, committee) -> dict:
    """The committee's (a `BatchedCommittee`) mean energy per atom (per
    frame), mean forces (per atom), mean stress (per frame, eV/Å³; NaN
    without a periodic cell) and disagreement (per frame)."""
    images = [frames.to_atoms(k) for k in range(len(frames))]
    energies, forces, stresses = committee.predict_many(images)
    spread = [
        uncertainty(energies[:, k], forces[:, frames.offsets[k] : frames.offsets[k + 1]]) for k in range(len(frames))
    ]
    return {
        "energy_per_atom": energies.mean(axis=0) / np.diff(frames.offsets),
        "forces": forces.mean(axis=0),
        "stress": stresses.mean(axis=0),
        "deviation": np.array([deviation for deviation, _ in spread]),
        "energy_deviation": np.array([energy_deviation for _, energy_deviation in spread]),
    }


def errors(frames: Frames, committee=None, predicted: dict | None = None) -> dict:
    """Energy per atom (eV/atom), force component (eV/Å) and, over the frames
    with a reference stress, stress component (GPa) errors of the committee
    mean; force errors per element (`force_rmse_O`, ...); its mean disagreement."""
    if len(frames) == 0:
        return {"frames": 0}
    predicted = predicted if predicted is not None else predict(frames, committee)
    energy_errors = predicted["energy_per_atom"] - frames.frame["energy"] / np.diff(frames.offsets)
    force_errors = predicted["forces"] - frames.atom["forces"]
    result = {
        "frames": len(frames),
        "energy_rmse_per_atom": float(np.sqrt(np.mean(energy_errors**2))),
        "energy_mae_per_atom": float(np.mean(np.abs(energy_errors))),
        "force_rmse": float(np.sqrt(np.mean(force_errors**2))),
        "force_mae": float(np.mean(np.abs(force_errors))),
        **_stress_errors(frames.frame["stress"], predicted["stress"]),
        "deviation_mean": float(np.mean(predicted["deviation"])),
        "energy_deviation_mean": float(np.mean(predicted["energy_deviation"])),
    }
    for number in np.unique(frames.atom["numbers"]):
        element = force_errors[frames.atom["numbers"] == number]
        result[f"force_rmse_{chemical_symbols[number]}"] = float(np.sqrt(np.mean(element**2)))
        result[f"force_mae_{chemical_symbols[number]}"] = float(np.mean(np.abs(element)))
    return result


def largest_force_errors(frames: Frames, forces: np.ndarray) -> np.ndarray:
    """Per frame, the largest over atoms of |predicted - reference force| (eV/Å):
    the true error that the committee force deviation (`uncertainty`) estimates."""
    norms = np.linalg.norm(forces - frames.atom["forces"], axis=1)
    return np.maximum.reduceat(norms, frames.offsets[:-1]) if len(frames) else np.zeros(0)


def calibration(deviation: np.ndarray, error: np.ndarray) -> dict:
    """How well the committee deviation recorded at sampling time predicts the
    true error of that committee, per frame: the Spearman rank correlation (does
    a larger deviation mean a larger error?) and the scale s of the least-squares
    line error = s * deviation through the origin (s > 1: the committee is
    overconfident). NaN with fewer than three frames."""
    from scipy.stats import spearmanr

    finite = np.isfinite(deviation) & np.isfinite(error) & (deviation > 0)
    deviation, error = deviation[finite], error[finite]
    if len(deviation) < 3:
        return {"calibration_rank_correlation": np.nan, "calibration_scale": np.nan}
    return {
        "calibration_rank_correlation": float(spearmanr(deviation, error).statistic),
        "calibration_scale": float(np.dot(deviation, error) / np.dot(deviation, deviation)),
    }


def _stress_errors(reference: np.ndarray, predicted: np.ndarray) -> dict:
    both = np.isfinite(reference).all(axis=(1, 2)) & np.isfinite(predicted).all(axis=(1, 2))
    if not both.any():
        return {"stress_rmse_gpa": np.nan, "stress_mae_gpa": np.nan}
    difference = (predicted[both] - reference[both]) / GPa
    return {
        "stress_rmse_gpa": float(np.sqrt(np.mean(difference**2))),
        "stress_mae_gpa": float(np.mean(np.abs(difference))),
    }


def binding_energy_per_atom(frames: Frames, atom_energies: dict | None) -> float:
    """Mean reference energy per atom relative to the isolated atoms (eV/atom)."""
    if not atom_energies or len(frames) == 0:
        return np.nan
    reference = np.array([atom_energies[chemical_symbols[z]] for z in frames.atom["numbers"]])
    per_frame = np.add.reduceat(reference, frames.offsets[:-1])
    return float(np.mean((frames.frame["energy"] - per_frame) / np.diff(frames.offsets)))


def evaluate_iteration(
    iteration: int,
    dataset: Frames,
    labeled: Frames,
    current,
    previous=None,
    test_set: Frames | None = None,
    valid_fraction: float = 0.1,
    isolated: dict | None = None,
):
    """The metrics table of one iteration and the data of its parity plots.

    Rows: the committee of `iteration` on the train and valid splits (and the
    test set), and `previous` (the committee of iteration-1, which chose the
    frames) on the fresh labels - the honest out-of-sample error, with the
    calibration of the deviation it recorded while sampling them.
    """
    import pandas as pd

    from psiflow_pipeline.data import Status
    from psiflow_pipeline.dataset import split

    train, valid = split(dataset, valid_fraction)
    # subset -> (frames, committee, the committee's iteration)
    subsets = {"train": (train, current, iteration), "valid": (valid, current, iteration)}
    if test_set is not None:
        subsets["test"] = (test_set, current, iteration)
    if previous is not None:
        fresh = labeled.take(np.flatnonzero(labeled.frame["status"] == Status.OK))
        subsets["new"] = (fresh, previous, iteration - 1)
    rows, parity = [], {}
    for subset, (frames, committee, model_iteration) in subsets.items():
        if len(frames) == 0:  # no validation frame yet: nothing to report
            continue
        predicted = predict(frames, committee)
        row = {"iteration": iteration, "model_iteration": model_iteration, "subset": subset}
        row.update(errors(frames, predicted=predicted))
        row["binding_energy_per_atom"] = binding_energy_per_atom(frames, isolated)
        if subset == "new":
            sampled, error = frames.frame["deviation"], largest_force_errors(frames, predicted["forces"])
            row.update(calibration(sampled, error))
            parity["new_deviation_sampled"], parity["new_force_error_largest"] = sampled, error
        rows.append(row)
        parity[f"{subset}_energy_reference"] = frames.frame["energy"] / np.diff(frames.offsets)
        parity[f"{subset}_energy_predicted"] = predicted["energy_per_atom"]
        parity[f"{subset}_forces_reference"] = frames.atom["forces"]
        parity[f"{subset}_forces_predicted"] = predicted["forces"]
    extra = sorted({key for row in rows for key in row} - set(METRIC_COLUMNS))  # per-element errors
    return pd.DataFrame(rows, columns=METRIC_COLUMNS + extra), parity
