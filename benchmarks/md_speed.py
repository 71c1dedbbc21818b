"""MD speed of a walker: steps per second of psiflow's walker against a bare
loop of model forward calls on the same structure (the limit) and a plain ASE
Langevin loop, for a 3-atom and a 96-atom water system; and the cost of a
committee of `--committee` members, propagated with their mean (every member
every step) or with one member (the others on the saved frames only), against
one model. With `--batch N`: N walkers of the 8-water and the 32-water box
in one batched task (`walkers.batch`) against each in a task of its own,
one after another as one worker runs them, the batched task with one model
(what the integrator and checks cost over the model), and a bare loop of
batched forward calls. Every rate is measured `--repeats` times, alternated,
and its median shown.

Runs on the device the walkers use (`default_device`: the GPU where there is
one), baselines included.

Uses the packaged models of a finished run (by default the default job's
last iteration, `make run`); a committee larger than the run's repeats its
members (the cost is the same). Where the run compiled its final committee,
the compiled model's forward calls against its package's.

    .venv/bin/python benchmarks/md_speed.py [--steps 200] [--threads 2] [--committee 4] [--stride 10]
        [--batch 8] [--repeats 3]
"""

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.calculator import all_changes
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from psiflow_pipeline import settings as step_settings
from psiflow_pipeline.config import validate
from psiflow_pipeline.models.committee import default_device, load_calculator
from psiflow_pipeline.sampling import WalkerTask, run_walker, run_walkers

REPO = Path(__file__).resolve().parents[1]


def systems() -> dict:
    box = read(REPO / "resources/structures/water_32.xyz")
    molecule = Atoms(box[:3])
    molecule.cell, molecule.pbc = box.cell, True
    return {"3 atoms": molecule, "96 atoms": box}


def forward_rate(model, atoms, steps) -> float:
    calc = load_calculator(model)
    rng = np.random.default_rng(0)
    calc.calculate(atoms, ["energy", "forces"], all_changes)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        moved = atoms.copy()
        moved.positions += rng.normal(0, 0.01, moved.positions.shape)
        calc.calculate(moved, ["energy", "forces"], all_changes)
    return steps / (time.perf_counter() - start)


def ase_rate(model, atoms, steps) -> float:
    atoms = atoms.copy()
    atoms.calc = load_calculator(model)
    thermalize_momenta(atoms, 300, rng=np.random.default_rng(0))
    dynamics = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs, fixcm=False)
    dynamics.run(5)  # warm-up
    start = time.perf_counter()
    dynamics.run(steps)
    return steps / (time.perf_counter() - start)


def walker_rate(models, atoms, steps, threads, propagate="mean", stride=10) -> float:
    """Steps per second of run_walker, start-up (model loading) excluded by differencing two lengths."""
    times = []
    for n in (steps, 2 * steps):
        walker = {"steps": n, "stride": stride, "max_temperature_factor": 100, "propagate": propagate}
        config = validate({"system": {"structures": ["-"]}, "walkers": [walker]}, "benchmark")
        settings = step_settings.walkers(config, 1)[0]
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            run_walker(WalkerTask(0, atoms, settings, models, 1, 0, 1e9, 0, threads, {}, scratch))
            times.append(time.perf_counter() - start)
    return steps / (times[1] - times[0])


def medians(rates: dict, repeats: int) -> dict:
    """Each of `rates` (name -> a function measuring a rate) measured
    `repeats` times, alternated, and its median: on a shared machine the
    rates of one pass drift together, and an outlier does not decide a ratio."""
    values = {name: [] for name in rates}
    for _ in range(repeats):
        for name, rate in rates.items():
            values[name].append(rate())
    return {name: float(np.median(v)) for name, v in values.items()}


def single_rates(members, committee, atoms, args) -> dict:
    """One walker's steps per second with one model (`single`), with the
    committee's mean (`mean`) and following one member (`member`), against
    the bare forward loop and ASE's Langevin; medians of `args.repeats`."""
    steps, threads, stride = args.steps, args.threads, args.stride
    rates = {
        "forward": lambda: forward_rate(members[0], atoms, steps),
        "ase": lambda: ase_rate(members[0], atoms, steps),
        "single": lambda: walker_rate(members[:1], atoms, steps, threads, "mean", stride),
        "mean": lambda: walker_rate(committee, atoms, steps, threads, "mean", stride),
        "member": lambda: walker_rate(committee, atoms, steps, threads, "member", stride),
    }
    return medians(rates, args.repeats)


def batch_rates(models, atoms, count, steps, threads, stride, repeats) -> dict:
    """Walker steps per second of `count` Langevin walkers of `atoms`: each in
    a task of its own (`alone`) and all in one batched task (`batched`), with
    the models loaded beforehand, as a worker keeps them; the batched task
    again with member 0 alone (`one model`: no committee on the saved frames,
    so what the integrator and the checks cost over the model); and forward
    calls per second of a bare loop of batched forward calls on the same
    structures (`forward`). Medians of `repeats`, alternated."""
    import torch_sim as ts

    walker = {"count": count, "steps": steps, "stride": stride, "max_temperature_factor": 100}
    walker.update(propagate="member", batch=count)
    config = validate({"system": {"structures": ["-"]}, "walkers": [walker]}, "benchmark")
    settings = step_settings.walkers(config, 1)
    calc = load_calculator(models[0], batched=True)
    state = ts.initialize_state([atoms] * count, device=calc.device, dtype=torch.float64)
    calc(state)  # warm-up

    def timed(run) -> float:
        start = time.perf_counter()
        run()
        if calc.device.type == "cuda":  # results stay on the GPU: wait for the last call
            torch.cuda.synchronize()
        return count * steps / (time.perf_counter() - start)

    def forward_loop():
        for _ in range(steps):
            state.positions = state.positions + 1e-4
            calc(state)

    with tempfile.TemporaryDirectory() as scratch:
        # walkers 0, M, 2M, ... all follow member 0, so that they share one task
        tasks = [
            WalkerTask(k * len(models), atoms, settings[k], models, 1, 0, 1e9, 0, threads, {}, scratch)
            for k in range(count)
        ]
        one_model = [dataclasses.replace(task, model_paths=models[:1]) for task in tasks]
        run_walkers(tasks[:1]), run_walkers(tasks[:2]), run_walkers(one_model[:2])  # loads every kind of model
        rates = {
            "alone": lambda: timed(lambda: [run_walkers([task]) for task in tasks]),
            "batched": lambda: timed(lambda: run_walkers(tasks)),
            "one model": lambda: timed(lambda: run_walkers(one_model)),
            "forward": lambda: timed(forward_loop),
        }
        return medians(rates, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results"))
    parser.add_argument("--iteration", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--committee", type=int, default=4, help="members of the committee whose cost is measured")
    parser.add_argument("--stride", type=int, default=10, help="MD steps between the walkers' saved frames")
    parser.add_argument("--batch", type=int, default=0, help="walkers of one batched task (0: not measured)")
    parser.add_argument("--repeats", type=int, default=3, help="every rate measured this often, alternated; medians")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.results) / f"iter_{args.iteration}/models"
    members = sorted(str(p) for p in folder.glob("member_*/model.nequip.zip"))
    if not members:
        sys.exit(f"no models in {folder}: run the pipeline first (make run)")
    committee = [members[m % len(members)] for m in range(args.committee)]
    print(f"eager NequIP package {members[0]}, on {default_device()}, {args.steps} steps, {args.threads} threads, "
          f"stride {args.stride}")  # fmt: skip
    print(f"{'system':9s} {'forward calls/s':>16s} {'ASE Langevin':>13s} {'walker (1 model)':>17s} "
          f"{'walker/forward':>15s} {'walker/ASE':>11s} {'mean of ' + str(args.committee):>11s} "
          f"{'one member':>11s} {'cost: mean':>11s} {'cost: member':>13s}")  # fmt: skip
    for name, atoms in systems().items():
        rate = single_rates(members, committee, atoms, args)
        forward, ase, single, mean, member = (rate[k] for k in ("forward", "ase", "single", "mean", "member"))
        print(f"{name:9s} {forward:16.1f} {ase:13.1f} {single:17.1f} {single / forward:15.2f} {single / ase:11.2f} "
              f"{mean:11.1f} {member:11.1f} {single / mean:11.2f} {single / member:13.2f}")  # fmt: skip
    print("cost: steps/s of one model over steps/s of the committee (1.00 = the cost of one model)")
    if args.batch:
        print(f"\n{args.batch} walkers, committee of {len(members)} (each walker follows member 0), walker steps/s:")
        print(f"{'system':9s} {'a task each':>12s} {'one batched task':>17s} {'batched/each':>13s} "
              f"{'batched, 1 model':>17s} {'batched forward':>16s} {'batched/forward':>16s} "
              f"{'1 model/forward':>16s}")  # fmt: skip
        boxes = {"24 atoms": read(REPO / "resources/structures/water_8.xyz"), "96 atoms": systems()["96 atoms"]}
        for name, atoms in boxes.items():
            rates = batch_rates(members, atoms, args.batch, args.steps, args.threads, args.stride, args.repeats)
            alone, batched, one_model, forward = rates["alone"], rates["batched"], rates["one model"], rates["forward"]
            print(f"{name:9s} {alone:12.1f} {batched:17.1f} {batched / alone:13.2f} {one_model:17.1f} {forward:16.1f} "
                  f"{batched / forward:16.2f} {one_model / forward:16.2f}")  # fmt: skip
    final = Path(args.results) / "summary/model"
    if (final / "member_0.nequip.pt2").exists():  # the run compiled its final committee (model.compile)
        for name, atoms in systems().items():
            eager = forward_rate(final / "member_0.nequip.zip", atoms, args.steps)
            compiled = forward_rate(final / "member_0.nequip.pt2", atoms, args.steps)
            print(f"{name}: forward calls/s, package {eager:.1f}, compiled {compiled:.1f} ({compiled / eager:.2f}x)")


if __name__ == "__main__":
    main()
