"""Whether the loop stops after an iteration: the previous committee's error
on the fresh labels, and how many sampled frames it still was unsure about."""

from __future__ import annotations

import numpy as np


def stop_criteria_set(stop: dict) -> bool:
    """Whether the config's `stop` section asks the loop to stop early at all."""
    return stop["force_rmse"] is not None or stop["min_uncertain"] is not None


def decide(fresh_force_rmse: float, deviations: np.ndarray, trust_lo: float, stop: dict) -> dict:
    """Stop after this iteration when every criterion that `stop` sets is met:
    the previous committee's force RMSE on this iteration's fresh labels is
    below `force_rmse`, and fewer than `min_uncertain` sampled frames have a
    committee deviation of `trust_lo` or more (a frame without a finite
    deviation - an exploded walker - counts as uncertain)."""
    uncertain = int(np.sum(~(np.asarray(deviations) < trust_lo)))
    checks = []  # (met, what was compared)
    if stop["force_rmse"] is not None:
        met = bool(fresh_force_rmse < stop["force_rmse"])
        relation = "<" if met else ">="
        checks.append((met, f"fresh-label force RMSE {fresh_force_rmse:.4f} {relation} {stop['force_rmse']} eV/Å"))
    if stop["min_uncertain"] is not None:
        met = uncertain < stop["min_uncertain"]
        relation = "<" if met else ">="
        checks.append((met, f"{uncertain} frames at or above trust_lo {trust_lo} {relation} {stop['min_uncertain']}"))
    return {
        "stop": bool(checks) and all(met for met, _ in checks),
        "reason": "; ".join(text for _, text in checks) or "no stop criterion set",
        "fresh_force_rmse": float(fresh_force_rmse),
        "uncertain_frames": uncertain,
    }
