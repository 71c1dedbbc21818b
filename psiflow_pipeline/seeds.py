"""The seeded randomness of the loop."""

from __future__ import annotations

import numpy as np


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """Randomness that flows from the seed, the iteration and the walker index,
    so that a rerun reproduces its frames."""
    return np.random.default_rng([seed, *keys])
