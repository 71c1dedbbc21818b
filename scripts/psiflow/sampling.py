"""Phase-space sampling: bootstrap frames and MD walkers driven by the committee."""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from psiflow.data import Frames


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """Randomness that flows from the seed, the iteration and the walker index."""
    return np.random.default_rng([seed, *keys])


def rattled_frames(images: list[Atoms], n_rattled: int, sigma: float, strain: float, seed: int) -> Frames:
    """Iteration 0: rattled and strained copies of each initial structure."""
    rng = rng_for(seed, 0)
    copies, identifiers = [], []
    for s, atoms in enumerate(images):
        for k in range(n_rattled):
            copy = atoms.copy()
            if atoms.pbc.any():
                deformation = np.eye(3) + rng.uniform(-strain, strain, (3, 3))
                copy.set_cell(atoms.cell.array @ ((deformation + deformation.T) / 2), scale_atoms=True)
            copy.positions += rng.normal(0.0, sigma, copy.positions.shape)
            copies.append(copy)
            identifiers.append(f"i0-s{s}-b{k}")
    frames = Frames.from_atoms(copies, iteration=0, status="ok")
    frames.frame["identifier"][:] = identifiers
    return frames


def walker_settings(walkers: list[dict]) -> list[dict]:
    """One settings dict per walker; list-valued temperatures go round-robin."""
    settings = []
    for group in walkers:
        temperatures = np.atleast_1d(group["temperature"])
        for k in range(group["count"]):
            walker = dict(group, temperature=float(temperatures[k % len(temperatures)]))
            walker.pop("count")
            settings.append(walker)
    return settings


def initial_walkers(images: list[Atoms], walkers: list[dict]) -> Frames:
    """Walker states before the first iteration: each at its initial structure."""
    settings = walker_settings(walkers)
    states = [images[w["structure"]] for w in settings]
    frames = Frames.from_atoms(states, iteration=0, step=0, status="ok")
    frames.frame["walker"][:] = np.arange(len(settings))
    frames.frame["temperature"][:] = [w["temperature"] for w in settings]
    frames.frame["identifier"][:] = [f"i0-w{k}-s0" for k in range(len(settings))]
    return frames


def run_walker(
    state: Atoms,
    walker: int,
    settings: dict,
    model_paths: list[str],
    iteration: int,
    step: int,
    trust_hi: float,
    seed: int,
    threads: int,
) -> tuple[Frames, Frames]:
    """Langevin MD of one walker with the committee (a Parsl task).

    Returns the saved frames and the final state. The walker stops at the
    first saved frame that is unphysical (non-finite) or beyond `trust_hi`;
    that frame is kept with status "reset" so it is never selected, and the
    final state is marked "reset" so the next iteration restarts it.
    """
    import torch
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from psiflow.models import Committee

    torch.set_num_threads(threads)
    rng = rng_for(seed, iteration, walker)
    atoms = state.copy()
    atoms.calc = Committee.from_files(model_paths)
    temperature = settings["temperature"]
    if not np.all(np.isfinite(atoms.get_momenta())) or not atoms.get_momenta().any():
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(
        atoms,
        timestep=settings["timestep"] * units.fs,
        temperature_K=temperature,
        friction=settings["friction"] / units.fs,
        rng=rng,
    )
    saved, energies, deviations, energy_deviations, temperatures, steps = [], [], [], [], [], []
    status, reason = "ok", ""
    done = 0
    while done < settings["steps"]:
        chunk = min(settings["stride"], settings["steps"] - done)
        try:
            dynamics.run(chunk)
            energy = atoms.get_potential_energy()
            deviation = atoms.calc.results["deviation"]
            energy_deviation = atoms.calc.results["energy_deviation"]
            finite = np.isfinite(energy) and np.all(np.isfinite(atoms.get_forces()))
        except Exception as error:  # a model or integrator blow-up is a walker failure, not a crash
            energy, deviation, energy_deviation, finite = np.nan, np.nan, np.nan, False
            reason = f"MD step failed: {error}"
        done += chunk
        saved.append(atoms.copy())
        energies.append(energy)
        deviations.append(deviation)
        energy_deviations.append(energy_deviation)
        temperatures.append(atoms.get_temperature() if finite else np.nan)
        steps.append(step + done)
        if not finite:
            status, reason = "reset", reason or "non-finite energy or forces"
            break
        if deviation > trust_hi:
            status, reason = "reset", f"force deviation {deviation:.3f} eV/Å above trust_hi {trust_hi}"
            break
    frames = Frames.from_atoms(saved, iteration=iteration, walker=walker, status="ok")
    frames.frame["energy"][:] = energies
    frames.frame["deviation"][:] = deviations
    frames.frame["energy_deviation"][:] = energy_deviations
    frames.frame["temperature"][:] = temperatures
    frames.frame["step"][:] = steps
    frames.frame["identifier"][:] = [f"i{iteration}-w{walker}-s{s}" for s in steps]
    if status != "ok":
        frames.frame["status"][-1] = status
        frames.frame["reason"][-1] = reason
    final = frames.take([len(frames) - 1])
    final.frame["temperature"][:] = temperature
    return frames, final


def sample(
    walkers: Frames,
    images: list[Atoms],
    walker_groups: list[dict],
    trust_hi: float,
    seed: int,
    iteration: int,
    model_paths: list[str],
    cores: int,
    cores_per_task: int,
    run_dir,
) -> tuple[Frames, Frames, list[str]]:
    """Run every walker as a Parsl task; returns candidates, new walker states and a log."""
    from psiflow.execution import run_tasks

    settings = walker_settings(walker_groups)
    if len(settings) != len(walkers):
        raise ValueError(f"walkers.h5 holds {len(walkers)} walkers, the config asks for {len(settings)}")
    tasks = []
    for k in range(len(walkers)):
        state = walkers.to_atoms(k)
        if walkers.frame["status"][k] != "ok":  # restart a reset walker from its initial structure
            state = images[settings[k]["structure"]].copy()
        tasks.append(
            (
                state,
                k,
                settings[k],
                [str(p) for p in model_paths],
                iteration,
                int(max(walkers.frame["step"][k], 0)),
                trust_hi,
                seed,
                cores_per_task,
            )
        )
    results, log = [None] * len(tasks), []
    for k, result in run_tasks(run_walker, tasks, cores // cores_per_task, run_dir):
        if isinstance(result, Exception):
            raise RuntimeError(f"walker {k} failed: {result!r}") from result
        results[k] = result
        frames, final = result
        log.append(f"walker {k}: {len(frames)} frames, status {final.frame['status'][0]} {final.frame['reason'][0]}")
    candidates = Frames.concatenate([r[0] for r in results])
    new_walkers = Frames.concatenate([r[1] for r in results])
    return candidates, new_walkers, log


def select(candidates: Frames, trust_lo: float, trust_hi: float, max_frames: int) -> Frames:
    """Frames whose committee force deviation lies in [trust_lo, trust_hi], most uncertain first."""
    deviation = candidates.frame["deviation"]
    eligible = np.flatnonzero(
        (candidates.frame["status"] == "ok")
        & np.isfinite(deviation)
        & (deviation >= trust_lo)
        & (deviation <= trust_hi)
    )
    order = eligible[np.argsort(-deviation[eligible], kind="stable")]
    return candidates.take(np.sort(order[:max_frames]))
