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
