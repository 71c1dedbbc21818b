"""The growing training set and its fixed train/valid split."""

from __future__ import annotations

import hashlib

import numpy as np

from psiflow_pipeline.data import Frames, Status


def is_validation(identifiers, fraction: float) -> np.ndarray:
    """Membership of the validation set, a pure function of each identifier,
    so that adding data never moves a frame between train and valid."""

    def unit(identifier: str) -> float:
        digest = hashlib.sha256(identifier.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return np.array([unit(str(i)) < fraction for i in identifiers], dtype=bool)


def extend(previous: Frames | None, labeled: Frames) -> Frames:
    """All successful labels so far; failed single points stay out of training."""
    ok = labeled.take(np.flatnonzero(labeled.frame["status"] == Status.OK))
    parts = [previous, ok] if previous is not None else [ok]
    dataset = Frames.concatenate(parts)
    identifiers = dataset.frame["identifier"]
    if len(set(identifiers)) != len(identifiers):
        raise ValueError("dataset would hold the same frame identifier twice")
    return dataset


def split(dataset: Frames, fraction: float) -> tuple[Frames, Frames]:
    valid = is_validation(dataset.frame["identifier"], fraction)
    return dataset.take(np.flatnonzero(~valid)), dataset.take(np.flatnonzero(valid))
