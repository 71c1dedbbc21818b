"""The forces between molecules, where a liquid's structure is decided: the
final committee's net force on each molecule of the held-out frames against
the reference's, per test-set file.

    .venv/bin/python benchmarks/molecular_forces.py [--run DIR] [--models A B ...]

Molecules are the covalently bonded groups of the first frame (ASE's natural
cutoffs x 1.2, so that stretched bonds count). Prints the reference's RMS
net force per molecule component, the committee's RMSE on it (absolute and
relative) and the least-squares slope of committee against reference (1: no
systematic bias; below 1, the committee's intermolecular forces are too
weak).
"""

import argparse
from pathlib import Path

import numpy as np
from ase.neighborlist import natural_cutoffs, neighbor_list
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from psiflow_pipeline import paths
from psiflow_pipeline.config import load, locate_files, validate
from psiflow_pipeline.data import read_extxyz
from psiflow_pipeline.evaluation import predict
from psiflow_pipeline.models.committee import BatchedCommittee

REPO = Path(__file__).resolve().parents[1]


def molecules(atoms) -> np.ndarray:
    """The molecule index of every atom: connected components of the covalent bonds."""
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    bonds = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(atoms), len(atoms)))
    return connected_components(bonds, directed=False)[1]


def net_forces(forces: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per molecule, the sum of its atoms' forces (n_molecules x 3)."""
    total = np.zeros((labels.max() + 1, 3))
    np.add.at(total, labels, forces)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=REPO, help="working directory of a finished run")
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--models", type=Path, nargs="*", help="packaged members (default: the run's final committee)")
    args = parser.parse_args()
    config = validate(load(args.config), str(args.config))
    locate_files(config, lambda path: str(REPO / path) if (REPO / path).exists() else None)
    models = args.models or [args.run / paths.final_model(m) for m in range(config["model"]["committee"])]
    committee = BatchedCommittee.from_files(models)
    for path in config["evaluation"]["test_set"]:
        frames = read_extxyz(path)
        labels = molecules(frames.to_atoms(0))
        predicted_forces = predict(frames, committee)["forces"]
        per_frame = [frames.atoms_of(k) for k in range(len(frames))]
        reference = np.concatenate([net_forces(frames.atom["forces"][atoms], labels) for atoms in per_frame]).ravel()
        predicted = np.concatenate([net_forces(predicted_forces[atoms], labels) for atoms in per_frame]).ravel()
        scale = np.sqrt(np.mean(reference**2))
        rmse = np.sqrt(np.mean((predicted - reference) ** 2))
        slope = (reference @ predicted) / (reference @ reference)
        print(
            f"{Path(path).name}: {labels.max() + 1} molecules x {len(frames)} frames; net force per molecule: "
            f"reference RMS {scale:.3f} eV/Å, committee RMSE {rmse:.3f} ({100 * rmse / scale:.0f} %), slope {slope:.3f}"
        )


if __name__ == "__main__":
    main()
