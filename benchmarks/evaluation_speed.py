"""Evaluation speed: the forward passes of an evaluate job (the committee of
iteration N on its dataset and the test set, the committee of N-1 on the
fresh labels) one frame at a time through each member's ASE calculator,
against each member scoring the frames in batches (`BatchedCommittee`, what
the evaluate rule uses); alternated, in one process, models loaded
beforehand.

Uses a finished run (by default the default job, `make run`) and the
default config's test set.

    .venv/bin/python benchmarks/evaluation_speed.py [--results results] [--iteration 3] [--repeats 3] [--threads 2]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from psiflow_pipeline.config import load, validate
from psiflow_pipeline.data import Frames, Status, read_extxyz, read_h5
from psiflow_pipeline.models.committee import BatchedCommittee, Committee

REPO = Path(__file__).resolve().parents[1]


def one_by_one(committee: Committee, images) -> np.ndarray:
    forces = []
    for atoms in images:
        forces.append(committee.predict(atoms)[1])
        committee.stresses(atoms)
    return np.concatenate(forces, axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results"))
    parser.add_argument("--iteration", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="both ways, alternated; medians shown")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results, i = Path(args.results), args.iteration
    members = {n: sorted((results / f"iter_{n}/models").glob("member_*/model.nequip.zip")) for n in (i, i - 1)}
    if not members[i] or not members[i - 1]:
        sys.exit(f"no models of iterations {i - 1} and {i} in {results}: run the pipeline first (make run)")
    config = validate(load(REPO / "config/config.yaml"), "config/config.yaml")
    test_set = Frames.concatenate([read_extxyz(REPO / path) for path in config["evaluation"]["test_set"]])
    labeled = read_h5(results / f"iter_{i}/labeled.h5")
    fresh = labeled.take(np.flatnonzero(labeled.frame["status"] == Status.OK))
    jobs = {  # subset: (frames, committee of iteration)
        "dataset": (read_h5(results / f"iter_{i}/dataset.h5"), i),
        "test": (test_set, i),
        "new": (fresh, i - 1),
    }
    jobs = {name: ([frames.to_atoms(k) for k in range(len(frames))], n) for name, (frames, n) in jobs.items()}
    ase = {n: Committee.from_files(paths) for n, paths in members.items()}
    batched = {n: BatchedCommittee.from_files(paths) for n, paths in members.items()}
    times = {"one frame at a time (ASE)": [], "batched": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        reference = [one_by_one(ase[n], images) for images, n in jobs.values()]
        times["one frame at a time (ASE)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = [batched[n].predict_many(images)[1] for images, n in jobs.values()]
        times["batched"].append(time.perf_counter() - start)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(reference, ours))
    calls = sum(len(images) * len(members[n]) for images, n in jobs.values())
    print(f"iteration {i}: " + ", ".join(f"{name} {len(images)} frames" for name, (images, _) in jobs.items()))
    print(f"{calls} member-frame evaluations, {args.threads} threads, medians of {args.repeats}")
    baseline = float(np.median(times["one frame at a time (ASE)"]))
    for name, values in times.items():
        seconds = float(np.median(values))
        print(f"{name:28s} {seconds:7.2f} s  {calls / seconds:7.1f} frames/s  {baseline / seconds:5.2f}x")
    print(f"largest force difference between the two: {difference:.1e} eV/Å")


if __name__ == "__main__":
    main()
