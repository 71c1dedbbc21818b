"""Committee disagreement of one frame, shared by sampling and evaluation."""

from __future__ import annotations

import numpy as np


def uncertainty(energies: np.ndarray, forces: np.ndarray) -> tuple[float, float]:
    """Committee disagreement of one frame, shared by sampling and evaluation.

    Returns (force deviation in eV/Å, energy deviation in eV): the largest,
    over atoms, root mean squared distance of the members' force vectors to
    their mean, and the standard deviation of the members' energies.
    `energies` has shape (members,), `forces` (members, atoms, 3).
    """
    spread = forces - forces.mean(axis=0)
    per_atom = np.sqrt((spread**2).sum(axis=-1).mean(axis=0))
    return (float(per_atom.max()) if per_atom.size else 0.0), float(np.std(energies))
