"""Phase-space sampling: bootstrap frames and MD walkers driven by the committee."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import thermalize_momenta
from psiflow.data import Frames
from psiflow.selection import rng_for


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


def walker_settings(walkers: list[dict], iteration: int = 0) -> list[dict]:
    """One settings dict per walker in `iteration`; list-valued temperatures and
    pressures go round-robin, and the group's schedule entries up to `iteration` apply."""
    settings = []
    for group in walkers:
        group = dict(group)
        for entry in sorted(group.pop("schedule", []), key=lambda e: e["from_iteration"]):
            if entry["from_iteration"] <= iteration:
                group.update({k: v for k, v in entry.items() if k != "from_iteration"})
        temperatures = np.atleast_1d(group["temperature"])
        pressures = np.atleast_1d(group["pressure_bar"])
        for k in range(group["count"]):
            walker = dict(group, temperature=float(temperatures[k % len(temperatures)]))
            walker["pressure_bar"] = float(pressures[k % len(pressures)])
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


def make_dynamics(atoms: Atoms, settings: dict, rng: np.random.Generator):
    """The ASE integrator (or optimizer) of a walker's ensemble."""
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT
    from ase.md.verlet import VelocityVerlet

    timestep = settings["timestep"] * units.fs
    temperature = settings["temperature"]
    tdamp = settings["tdamp"] * units.fs
    ensemble = settings["ensemble"]
    if ensemble == "opt":
        from ase.filters import FrechetCellFilter
        from ase.optimize import FIRE

        return FIRE(FrechetCellFilter(atoms) if settings["optimize_cell"] else atoms, logfile=None)
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=timestep)
    if ensemble == "nvt" and settings["thermostat"] == "langevin":
        friction = settings["friction"] / units.fs
        # fixcm=True (ASE's default) does not sample NVT exactly
        return Langevin(atoms, timestep=timestep, temperature_K=temperature, friction=friction, fixcm=False, rng=rng)
    if ensemble == "nvt":
        return NoseHooverChainNVT(atoms, timestep=timestep, temperature_K=temperature, tdamp=tdamp)
    barostat = IsotropicMTKNPT if settings["barostat"] == "isotropic" else MTKNPT
    return barostat(
        atoms,
        timestep=timestep,
        temperature_K=temperature,
        pressure_au=settings["pressure_bar"] * units.bar,
        tdamp=tdamp,
        pdamp=settings["pdamp"] * units.fs,
    )


def check_frame(atoms: Atoms, results: dict, settings: dict, trust_hi: float) -> str:
    """Why a walker's frame is unphysical, or "" when it is sane."""
    energy, forces = results.get("energy", np.nan), results.get("forces")
    if forces is None or not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        return "non-finite energy or forces"
    if not np.all(np.isfinite(atoms.positions)) or (atoms.pbc.any() and atoms.cell.volume <= 0):
        return "non-finite positions or collapsed cell"
    if len(atoms) > 1:
        distances = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        i, j = np.unravel_index(np.argmin(distances + np.diag(np.full(len(atoms), np.inf))), distances.shape)
        if distances[i, j] < settings["min_distance"]:
            return f"atoms {i} and {j} {distances[i, j]:.2f} Å apart, below min_distance {settings['min_distance']}"
    largest = float(np.linalg.norm(forces, axis=1).max())
    if largest > settings["max_force"]:
        return f"force {largest:.1f} eV/Å above max_force {settings['max_force']}"
    if results["deviation"] > trust_hi:
        return f"force deviation {results['deviation']:.3f} eV/Å above trust_hi {trust_hi}"
    if settings["ensemble"] != "opt":
        temperature = atoms.get_temperature()
        if temperature > settings["max_temperature_factor"] * settings["temperature"]:
            return f"temperature {temperature:.0f} K above {settings['max_temperature_factor']}x the target"
    return ""


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
    bias: dict,
    plumed_input: list[str] | None,
    workdir: str,
) -> tuple[Frames, Frames, dict, str]:
    """One walker's sampling for one iteration (a Parsl task).

    Returns the saved frames, the final state, the PLUMED bias files and the
    COLVAR text. A walker stops at the first saved frame that fails a check
    (`check_frame`); that frame keeps status "reset" and its reason, so it is
    never selected, and the final state is marked "reset" so that the next
    iteration restarts the walker from its initial structure, or from its last
    sane state with `reset_to: last_sane`.
    """
    import os

    import torch
    from psiflow.models import Committee

    torch.set_num_threads(threads)
    rng = rng_for(seed, iteration, walker)
    folder = Path(workdir) / f"walker_{walker}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    atoms = state.copy()
    committee = Committee.from_files(model_paths)
    atoms.calc = committee
    if plumed_input is not None:
        from ase.calculators.plumed import Plumed

        for name, text in bias.items():  # the hills of earlier iterations
            (folder / name).write_text(text)
        previous = os.getcwd()
        os.chdir(folder)  # PLUMED writes its files where it runs
        atoms.calc = Plumed(
            committee,
            plumed_input,
            timestep=settings["timestep"] * units.fs,
            atoms=atoms,
            kT=units.kB * settings["temperature"],
            log=str(folder / "plumed.log"),
            restart=bool(bias),
        )
        atoms.calc.istep = step
    if settings["ensemble"] != "opt" and not atoms.get_momenta().any():
        thermalize_momenta(atoms, settings["temperature"], rng=rng)
    dynamics = make_dynamics(atoms, settings, rng)
    saved, energies, deviations, energy_deviations, temperatures, steps = [], [], [], [], [], []
    status, reason, sane = "ok", "", state.copy()
    done = 0
    try:
        while done < settings["steps"]:
            chunk = min(settings["stride"], settings["steps"] - done)
            try:
                if settings["ensemble"] == "opt":
                    converged = dynamics.run(fmax=settings["fmax"], steps=chunk)
                    chunk = max(1, dynamics.nsteps - done) if converged else chunk
                else:
                    dynamics.run(chunk)
                atoms.get_forces()
                reason = check_frame(atoms, committee.results, settings, trust_hi)
            except Exception as error:  # a blow-up of the model or integrator is a walker failure
                reason = f"MD step failed: {error}"[:300]
            done += chunk
            results = committee.results if not reason.startswith("MD step failed") else {}
            saved.append(atoms.copy())
            energies.append(results.get("energy", np.nan))
            deviations.append(results.get("deviation", np.nan))
            energy_deviations.append(results.get("energy_deviation", np.nan))
            temperatures.append(atoms.get_temperature() if settings["ensemble"] != "opt" else np.nan)
            steps.append(step + done)
            if reason:
                status = "reset"
                break
            sane = atoms.copy()
            if settings["ensemble"] == "opt" and converged:
                reason = "converged"
                break
    finally:
        if plumed_input is not None:
            atoms.calc.plumed.finalize()  # flushes HILLS and COLVAR
            os.chdir(previous)
    frames = Frames.from_atoms(saved, iteration=iteration, walker=walker, status="ok")
    frames.frame["energy"][:] = energies
    frames.frame["deviation"][:] = deviations
    frames.frame["energy_deviation"][:] = energy_deviations
    frames.frame["temperature"][:] = temperatures
    frames.frame["step"][:] = steps
    frames.frame["identifier"][:] = [f"i{iteration}-w{walker}-s{s}" for s in steps]
    frames.frame["status"][-1] = status
    frames.frame["reason"][-1] = reason
    final = frames.take([len(frames) - 1])
    if status == "reset" and settings["reset_to"] == "last_sane":
        final = Frames.from_atoms([sane], iteration=iteration, walker=walker, status="ok", step=steps[-1])
        final.frame["reason"][:] = f"restarted from the last sane state after: {reason}"
        final.frame["identifier"][:] = frames.frame["identifier"][-1]
    final.frame["temperature"][:] = settings["temperature"]
    bias_files = {p.name: p.read_text() for p in folder.glob("HILLS*")}
    colvar = (folder / "COLVAR").read_text() if (folder / "COLVAR").exists() else ""
    final.frame["bias"][:] = json.dumps(bias_files)
    return frames, final, bias_files, colvar


def sample(
    walkers: Frames,
    images: list[Atoms],
    walker_groups: list[dict],
    trust_hi: float,
    seed: int,
    iteration: int,
    model_paths: list[str],
    execution,
    run_dir,
) -> tuple[Frames, Frames, dict, list[str]]:
    """Run every walker as a Parsl task.

    Returns the candidate frames, the new walker states, each biased walker's
    COLVAR text by walker index, and a log.
    """
    from psiflow.execution import run_tasks
    from psiflow.plumed import read_input

    settings = walker_settings(walker_groups, iteration)
    if len(settings) != len(walkers):
        raise ValueError(f"walkers.h5 holds {len(walkers)} walkers, the config asks for {len(settings)}")
    run_dir = Path(run_dir).resolve()
    tasks = []
    for k in range(len(walkers)):
        state = walkers.to_atoms(k)
        bias = json.loads(walkers.frame["bias"][k] or "{}")
        if walkers.frame["status"][k] != "ok":  # a reset walker starts over, bias included
            state, bias = images[settings[k]["structure"]].copy(), {}
        plumed = read_input(settings[k]["plumed"]) if settings[k]["plumed"] else None
        step = int(max(walkers.frame["step"][k], 0))
        tasks.append(
            (state, k, settings[k], [str(p) for p in model_paths], iteration, step, trust_hi, seed)
            + (execution.cores_per_task, bias, plumed, str(run_dir / "walkers"))
        )
    results, log = [None] * len(tasks), []
    for k, result in run_tasks(run_walker, tasks, execution, run_dir):
        if isinstance(result, Exception):
            raise RuntimeError(f"walker {k} failed: {result!r}") from result
        results[k] = result
        frames, final = result[:2]
        reason = frames.frame["reason"][-1]
        log.append(f"walker {k}: {len(frames)} frames, {final.frame['status'][0]} {reason}".rstrip())
    candidates = Frames.concatenate([r[0] for r in results])
    new_walkers = Frames.concatenate([r[1] for r in results])
    colvars = {k: r[3] for k, r in enumerate(results) if r[3]}
    return candidates, new_walkers, colvars, log
