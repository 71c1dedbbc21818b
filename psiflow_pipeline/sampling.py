"""Phase-space sampling: MD walkers (or geometry optimisations) driven by the
committee, one Parsl task per walker (or per batch of walkers,
`psiflow_pipeline.batched`), checked at every saved frame."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import thermalize_momenta

from psiflow_pipeline.data import Frames, Status, walker_identifier
from psiflow_pipeline.geometry import closest_pair
from psiflow_pipeline.seeds import rng_for
from psiflow_pipeline.settings import propagator


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


def check_frame(atoms: Atoms, results: dict, settings: dict, trust_hi: float, start_volume: float | None = None) -> str:
    """Why a walker's frame is unphysical, or "" when it is sane. `start_volume`:
    the cell's volume when the iteration started, for walkers that change it."""
    energy, forces = results.get("energy", np.nan), results.get("forces")
    if forces is None or not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        return "non-finite energy or forces"
    if not np.all(np.isfinite(atoms.positions)) or (atoms.pbc.any() and atoms.cell.volume <= 0):
        return "non-finite positions or collapsed cell"
    if start_volume is not None:
        change = atoms.cell.volume / start_volume - 1
        if abs(change) > settings["max_volume_change"]:
            limit = settings["max_volume_change"]
            return f"volume changed by {change:+.1%} this iteration, beyond max_volume_change {limit}"
    close = closest_pair(atoms, settings["min_distance"])
    if close:
        i, j, distance = close
        return f"atoms {i} and {j} {distance:.2f} Å apart, below min_distance {settings['min_distance']}"
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


@dataclass
class WalkerTask:
    """Everything one walker needs for one iteration (one Parsl task).

    `settings` is the walker's entry of `psiflow_pipeline.settings.walkers`;
    `step` counts the walker's steps before this iteration; `bias` holds the
    PLUMED files (HILLS) of earlier iterations.
    """

    walker: int
    state: Atoms
    settings: dict
    model_paths: list[str]
    iteration: int
    step: int
    trust_hi: float
    seed: int
    threads: int = 1
    bias: dict = field(default_factory=dict)
    workdir: str = "."


@dataclass
class WalkerResult:
    frames: Frames  # the saved frames; the last one carries the walker's status and reason
    final: Frames  # the state the walker continues from next iteration
    bias: dict  # the PLUMED bias files at the end
    colvar: str  # the COLVAR text of this iteration
    seconds: float = 0.0  # the task's MD and checks (its models are loaded before the clock starts)


def run_walker(task: WalkerTask) -> WalkerResult:
    """One walker's sampling for one iteration.

    A walker stops at the first saved frame that fails a check
    (`check_frame`); that frame keeps status reset and its reason, so it is
    never selected, and the final state is marked reset so that the next
    iteration restarts the walker from its initial structure, or from its last
    sane state with `reset_to: last_sane`.
    """
    import os

    import torch

    from psiflow_pipeline.models.committee import Committee

    settings, step = task.settings, task.step
    torch.set_num_threads(task.threads)
    rng = rng_for(task.seed, task.iteration, task.walker)
    folder = Path(task.workdir) / f"walker_{task.walker}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    atoms = task.state.copy()
    committee = Committee.from_files(
        task.model_paths, propagator=propagator(task.walker, settings, len(task.model_paths)), shared=True
    )
    atoms.calc = committee
    biased = settings["plumed"] is not None
    if biased:
        from ase.calculators.plumed import Plumed

        for name, text in task.bias.items():  # the hills of earlier iterations
            (folder / name).write_text(text)
        previous = os.getcwd()
        os.chdir(folder)  # PLUMED writes its files where it runs
        atoms.calc = Plumed(
            committee,
            settings["plumed"],
            timestep=settings["timestep"] * units.fs,
            atoms=atoms,
            kT=units.kB * settings["temperature"],
            log=str(folder / "plumed.log"),
            restart=bool(task.bias),
        )
        atoms.calc.istep = step
    if settings["ensemble"] != "opt" and not atoms.get_momenta().any():
        thermalize_momenta(atoms, settings["temperature"], rng=rng)
    dynamics = make_dynamics(atoms, settings, rng)
    start_volume = atoms.cell.volume if atoms.pbc.all() else None
    record = WalkerRecord(task)
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
                results = committee.assess(atoms)
                reason = check_frame(atoms, results, settings, task.trust_hi, start_volume)
            except Exception as error:  # a blow-up of the model or integrator is a walker failure
                reason = f"MD step failed: {error}"[:300]
                results = {}
            done += chunk
            if not record.save(atoms, results, reason, done):
                break
            if settings["ensemble"] == "opt" and converged:
                record.reason = "converged"
                break
    finally:
        if biased:
            atoms.calc.plumed.finalize()  # flushes HILLS and COLVAR
            os.chdir(previous)
    bias_files = {p.name: p.read_text() for p in folder.glob("HILLS*")}
    colvar = (folder / "COLVAR").read_text() if (folder / "COLVAR").exists() else ""
    return record.result(bias_files, colvar)


class WalkerRecord:
    """A walker's saved frames of one iteration, with what was measured on
    them, and the state it continues from: the one bookkeeping of every way
    a walker is advanced."""

    def __init__(self, task: WalkerTask):
        self.task = task
        self.saved, self.steps = [], []
        self.columns = {"energy": [], "deviation": [], "energy_deviation": [], "temperature": []}
        self.status, self.reason, self.sane = Status.OK, "", task.state.copy()

    def save(self, atoms: Atoms, results: dict, reason: str, done: int) -> bool:
        """Keep the frame reached after `done` steps of this iteration, with
        the committee's `results` there and the check's `reason` ("" when
        sane). Returns whether the walker goes on."""
        self.saved.append(atoms.copy())
        self.steps.append(self.task.step + done)
        for key in ("energy", "deviation", "energy_deviation"):
            self.columns[key].append(results.get(key, np.nan))
        moving = self.task.settings["ensemble"] != "opt"
        self.columns["temperature"].append(atoms.get_temperature() if moving else np.nan)
        self.reason = reason
        if reason:
            self.status = Status.RESET
            return False
        self.sane = atoms.copy()
        return True

    def result(self, bias_files: dict | None = None, colvar: str = "") -> WalkerResult:
        """The frames (the last one carrying the walker's status and reason)
        and the state the walker continues from."""
        task, settings, steps = self.task, self.task.settings, self.steps
        frames = Frames.from_atoms(self.saved, iteration=task.iteration, walker=task.walker, status=Status.OK)
        for key, values in self.columns.items():
            frames.frame[key][:] = values
        frames.frame["step"][:] = steps
        frames.frame["identifier"][:] = [walker_identifier(task.iteration, task.walker, s) for s in steps]
        frames.frame["status"][-1] = self.status
        frames.frame["reason"][-1] = self.reason
        final = frames.take([len(frames) - 1])
        if self.status == Status.RESET and settings["reset_to"] == "last_sane":
            final = Frames.from_atoms(
                [self.sane], iteration=task.iteration, walker=task.walker, status=Status.OK, step=steps[-1]
            )
            final.frame["reason"][:] = f"restarted from the last sane state after: {self.reason}"
            final.frame["identifier"][:] = frames.frame["identifier"][-1]
        final.frame["temperature"][:] = settings["temperature"]
        bias_files = bias_files or {}
        final.frame["bias"][:] = json.dumps(bias_files)
        return WalkerResult(frames, final, bias_files, colvar)


def run_walkers(tasks: list[WalkerTask]) -> list[WalkerResult]:
    """The walkers of one Parsl task: one on its own, or several advanced
    together (`psiflow_pipeline.batched`). Each result's `seconds` is the
    walkers' MD: the models, loaded once per worker, are loaded first."""
    from psiflow_pipeline.models.committee import shared_calculator

    for path in tasks[0].model_paths:
        shared_calculator(path, batched=len(tasks) > 1)
    start = time.perf_counter()
    if len(tasks) == 1:
        results = [run_walker(tasks[0])]
    else:
        from psiflow_pipeline.batched import run_walker_batch

        results = run_walker_batch(tasks)
    seconds = time.perf_counter() - start
    for result in results:
        result.seconds = seconds
    return results


def starting_points(previous: Frames | None, images: list[Atoms], walkers: list[dict]) -> list[tuple[Atoms, int, dict]]:
    """Where each walker starts this iteration: (state, steps so far, bias).

    A walker continues from its state at the end of the previous iteration;
    in the first iteration, and after a reset, it starts at its structure
    with no bias.
    """
    if previous is not None and len(previous) != len(walkers):
        raise ValueError(f"the previous iteration has {len(previous)} walkers, the config asks for {len(walkers)}")
    points = []
    for k, walker in enumerate(walkers):
        if previous is None or previous.frame["status"][k] != Status.OK:
            points.append((images[walker["structure"]].copy(), 0, {}))
        else:
            step = int(max(previous.frame["step"][k], 0))
            points.append((previous.to_atoms(k), step, json.loads(previous.frame["bias"][k] or "{}")))
    return points


def sample(
    previous: Frames | None,
    images: list[Atoms],
    settings: dict,
    iteration: int,
    model_paths: list[str],
    execution,
    run_dir,
) -> tuple[Frames, Frames, dict]:
    """Run every walker of `iteration` as a Parsl task; `settings` as
    `psiflow_pipeline.settings.sample` gives them.

    Returns the candidate frames, the new walker states, and each biased
    walker's COLVAR text by walker index. Each finished walker is logged at once.
    """
    from psiflow_pipeline.execution import run_tasks
    from psiflow_pipeline.logs import Progress

    walkers = settings["walkers"]
    run_dir = Path(run_dir).resolve()
    tasks = [
        WalkerTask(
            walker=k,
            state=state,
            settings=walkers[k],
            model_paths=[str(p) for p in model_paths],
            iteration=iteration,
            step=step,
            trust_hi=settings["trust_hi"],
            seed=settings["seed"],
            threads=execution.cores_per_task,
            bias=bias,
            workdir=str(run_dir / "walkers"),
        )
        for k, (state, step, bias) in enumerate(starting_points(previous, images, walkers))
    ]
    groups = settings.get("batches") or [[k] for k in range(len(tasks))]
    results: list[WalkerResult | None] = [None] * len(tasks)
    progress = Progress(len(tasks), "walkers", logging.getLogger("psiflow"))
    arguments = [([tasks[k] for k in group],) for group in groups]
    for g, group_results in run_tasks(run_walkers, arguments, execution, run_dir):
        if isinstance(group_results, Exception):
            raise RuntimeError(f"walkers {groups[g]} failed: {group_results!r}") from group_results
        for k, result in zip(groups[g], group_results, strict=True):
            results[k] = result
            reason = result.frames.frame["reason"][-1]
            progress.finished(
                f"walker {k}: {len(result.frames)} frames, {result.final.frame['status'][0]} {reason}".rstrip()
                + f" ({result.seconds:.1f} s)"
            )
    candidates = Frames.concatenate([r.frames for r in results])
    new_walkers = Frames.concatenate([r.final for r in results])
    colvars = {k: r.colvar for k, r in enumerate(results) if r.colvar}
    return candidates, new_walkers, colvars
