"""Which sampled frames get labeled."""

from __future__ import annotations

from collections import Counter

import numpy as np

from psiflow_pipeline.data import Frames, Status


def select(
    candidates: Frames,
    method: str,
    trust_lo: float,
    trust_hi: float,
    max_frames: int,
    max_per_walker: int | None = None,
    rng: np.random.Generator | None = None,
) -> Frames:
    """The frames to label; frames of reset walkers and above `trust_hi` never are.

    - committee: deviation within [trust_lo, trust_hi]; the walkers take turns
      (most uncertain frame first within each walker), so the selection spreads
      over the walkers before it goes deeper into any one of them;
    - final: the last sane frame of each walker (psiflow's active learning);
    - diverse: deviation within [trust_lo, trust_hi], a batch that is both
      uncertain and mutually different (`diverse_order`), so that it never
      spends its labels on near-copies of one frame;
    - random: uniformly among the sane frames below trust_hi (the baseline).
    """
    deviation = candidates.frame["deviation"]
    sane = (candidates.frame["status"] == Status.OK) & np.isfinite(deviation) & (deviation <= trust_hi)
    walkers = candidates.frame["walker"]
    if method == "committee":
        eligible = np.flatnonzero(sane & (deviation >= trust_lo))
        queues = [
            sorted(eligible[walkers[eligible] == w], key=lambda k: (-deviation[k], k))
            for w in np.unique(walkers[eligible])
        ]
        depth = max(map(len, queues), default=0)
        order = [queue[d] for d in range(depth) for queue in queues if d < len(queue)]
    elif method == "diverse":
        eligible = np.flatnonzero(sane & (deviation >= trust_lo))
        features = fingerprints(candidates.take(eligible))
        order = [eligible[k] for k in diverse_order(features, deviation[eligible], walkers[eligible], max_per_walker)]
    elif method == "final":
        order = []
        for w in np.unique(walkers[sane]):
            frames_of_walker = np.flatnonzero(sane & (walkers == w))
            order.append(frames_of_walker[np.argmax(candidates.frame["step"][frames_of_walker])])
    elif method == "random":
        order = list((rng or np.random.default_rng()).permutation(np.flatnonzero(sane)))
    else:
        raise ValueError(f"unknown selection method {method!r}")
    if max_per_walker is not None:
        taken, capped = Counter(), []
        for k in order:
            taken[walkers[k]] += 1
            if taken[walkers[k]] <= max_per_walker:
                capped.append(k)
        order = capped
    return candidates.take(np.sort(np.array(order[:max_frames], dtype=np.int64)))


# The fingerprint of a frame: the distances of every element pair within
# FINGERPRINT_CUTOFF, histogrammed per atom in FINGERPRINT_BINS bins and smeared
# over neighbouring bins, so that two frames of one walker a few steps apart lie
# close and a distorted or rearranged frame far.
FINGERPRINT_CUTOFF = 5.0  # Å
FINGERPRINT_BINS = 50


def fingerprints(frames: Frames) -> np.ndarray:
    """One row per frame: its element-pair distance histograms, concatenated."""
    from ase.neighborlist import neighbor_list

    edges = np.linspace(0.0, FINGERPRINT_CUTOFF, FINGERPRINT_BINS + 1)
    elements = np.unique(frames.atom["numbers"])
    pairs = [(a, b) for a in elements for b in elements if a <= b]
    smear = np.array([0.25, 0.5, 0.25])
    rows = np.zeros((len(frames), len(pairs), FINGERPRINT_BINS))
    for k in range(len(frames)):
        atoms = frames.to_atoms(k)
        first, second, distance = neighbor_list("ijd", atoms, FINGERPRINT_CUTOFF)
        zi, zj = atoms.numbers[first], atoms.numbers[second]
        for p, (a, b) in enumerate(pairs):
            counts = np.histogram(distance[(zi == a) & (zj == b)], edges)[0] / len(atoms)
            rows[k, p] = np.convolve(counts, smear, mode="same")
    return rows.reshape(len(frames), -1)


def diverse_order(features: np.ndarray, deviation: np.ndarray, walkers: np.ndarray, max_per_walker=None) -> list[int]:
    """Greedy farthest-point order weighted by uncertainty: the most uncertain
    frame first, then each time the frame whose deviation times its distance
    (in `features`) to the nearest frame already taken is largest; frames of
    a walker that has `max_per_walker` taken are skipped. Deterministic."""
    order: list[int] = []
    if not len(features):
        return order
    nearest = np.full(len(features), np.inf)  # distance to the nearest frame taken
    available = np.ones(len(features), dtype=bool)
    taken = Counter()
    while available.any():
        score = np.where(available, deviation * np.where(np.isinf(nearest), 1.0, nearest), -np.inf)
        k = int(np.argmax(score))
        order.append(k)
        available[k] = False
        taken[walkers[k]] += 1
        if max_per_walker is not None and taken[walkers[k]] >= max_per_walker:
            available &= walkers != walkers[k]
        nearest = np.minimum(nearest, np.linalg.norm(features - features[k], axis=1))
    return order
