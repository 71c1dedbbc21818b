"""Walkers advanced together: the walkers of one task move through one
batched forward pass per MD step (torch-sim's integrators on NequIP's
torch-sim model), and the committee is evaluated as one batch on the saved
frames. Same checks, records and resets as a walker of its own task
(`psiflow_pipeline.sampling`)."""

from __future__ import annotations

import numpy as np
from ase import units
from ase.md.velocitydistribution import thermalize_momenta

from psiflow_pipeline.models.uncertainty import uncertainty
from psiflow_pipeline.seeds import rng_for
from psiflow_pipeline.settings import propagator


class CommitteeMean:
    """torch-sim model of the committee's mean energy and forces
    (`propagate: mean`); keeps each member's output of the last call."""

    def __init__(self, members):
        self.members = members
        self.outputs = []
        self.device, self.dtype = members[0].device, members[0].dtype  # what the integrators ask for

    def __call__(self, state) -> dict:
        self.outputs = [member(state) for member in self.members]
        return {key: sum(out[key] for out in self.outputs) / len(self.outputs) for key in ("energy", "forces")}


def _committee(model, members, follows, state) -> list[dict]:
    """Every member's energy and forces at `state`, whose energy and forces
    are the dynamics' own: only the members the dynamics did not evaluate
    are run."""
    if follows is None:
        return model.outputs
    return [
        {"energy": state.energy, "forces": state.forces} if m == follows else member(state)
        for m, member in enumerate(members)
    ]


def _md_state(atoms_list, device):
    import torch
    import torch_sim as ts
    from torch_sim.integrators.md import MDState

    state = ts.initialize_state(atoms_list, device=device, dtype=torch.float64)
    momenta = torch.tensor(np.concatenate([atoms.get_momenta() for atoms in atoms_list]), dtype=torch.float64)
    zeros = torch.zeros(len(atoms_list), dtype=torch.float64)
    return MDState(
        positions=state.positions,
        momenta=momenta.to(device),
        energy=zeros.to(device),
        forces=torch.zeros_like(state.positions),
        masses=state.masses,
        cell=state.cell,
        pbc=state.pbc,
        system_idx=state.system_idx,
        atomic_numbers=state.atomic_numbers,
    )


def _keep(state, systems: list[int]):
    """The MD state of the given systems only, renumbered."""
    import torch

    system = torch.tensor(systems, device=state.system_idx.device)
    atom_mask = torch.isin(state.system_idx, system)
    renumber = torch.full((int(state.system_idx.max()) + 1,), -1, dtype=torch.long, device=system.device)
    renumber[system] = torch.arange(len(systems), device=system.device)
    return type(state)(
        positions=state.positions[atom_mask],
        momenta=state.momenta[atom_mask],
        energy=state.energy[system],
        forces=state.forces[atom_mask],
        masses=state.masses[atom_mask],
        cell=state.cell[system],
        pbc=state.pbc,
        system_idx=renumber[state.system_idx[atom_mask]],
        atomic_numbers=state.atomic_numbers[atom_mask],
    )


def run_walker_batch(tasks: list) -> list:
    """The walkers of `tasks` (WalkerTasks whose settings differ only in
    `PER_WALKER`) advanced together for one iteration; a `WalkerResult` each.

    A walker that fails a check leaves the batch; the others go on. A failure
    of the batched step itself (the model or integrator raising) ends every
    walker still in it, with that reason. Langevin noise comes from one
    generator seeded by the batch's first walker, so a walker's trajectory
    depends on which walkers share its task.
    """
    import torch
    import torch_sim as ts

    from psiflow_pipeline.models.committee import default_device, shared_calculator
    from psiflow_pipeline.sampling import WalkerRecord, check_frame

    first = tasks[0]
    settings = first.settings
    torch.set_num_threads(first.threads)
    device = default_device()
    members = [shared_calculator(path, batched=True) for path in first.model_paths]
    follows = propagator(first.walker, settings, len(first.model_paths))
    model = CommitteeMean(members) if follows is None else members[follows]

    atoms_list = []
    for task in tasks:
        atoms = task.state.copy()
        if not atoms.get_momenta().any():
            thermalize_momenta(atoms, task.settings["temperature"], rng=rng_for(task.seed, task.iteration, task.walker))
        atoms_list.append(atoms)
    records = [WalkerRecord(task) for task in tasks]
    start_volumes = [atoms.cell.volume if atoms.pbc.all() else None for atoms in atoms_list]

    dt = torch.tensor(settings["timestep"] * units.fs, dtype=torch.float64, device=device)
    kT = torch.tensor([units.kB * task.settings["temperature"] for task in tasks], dtype=torch.float64, device=device)
    if settings["ensemble"] == "nve":
        _, update = ts.nve(model=model, dt=dt, kT=kT)
    else:
        gamma = torch.tensor(settings["friction"] / units.fs, dtype=torch.float64, device=device)
        _, update = ts.nvt_langevin(model=model, dt=dt, kT=kT, gamma=gamma)
        torch.manual_seed(int(rng_for(first.seed, first.iteration, first.walker).integers(2**62)))

    active = list(range(len(tasks)))  # the batch's systems, as indices into `tasks`
    # each system's thermostat target; the integrator's own default stays that of
    # the systems the batch started with, also after walkers have left it
    target_kT = kT
    state = _md_state(atoms_list, device)
    try:
        output = model(state)
        state.energy, state.forces = output["energy"], output["forces"]
    except Exception as error:
        return _all_failed(records, atoms_list, active, f"MD step failed: {error}", 0)
    done = 0
    while done < settings["steps"]:
        chunk = min(settings["stride"], settings["steps"] - done)
        try:
            for _ in range(chunk):
                state = update(state, kT=target_kT)
            committee = _committee(model, members, follows, state)
        except Exception as error:  # a blow-up of the model or integrator ends the batch
            return _all_failed(records, atoms_list, active, f"MD step failed: {error}", done + chunk)
        done += chunk
        energies = torch.stack([c["energy"] for c in committee]).cpu().numpy()  # (members, systems)
        forces = torch.stack([c["forces"] for c in committee]).cpu().numpy()  # (members, atoms, 3)
        positions, momenta = state.positions.cpu().numpy(), state.momenta.cpu().numpy()
        dynamics_energy, dynamics_forces = state.energy.cpu().numpy(), state.forces.cpu().numpy()
        system_of = state.system_idx.cpu().numpy()
        still = []
        for slot, k in enumerate(active):
            mine = system_of == slot
            atoms = atoms_list[k]
            atoms.positions = positions[mine]
            atoms.set_momenta(momenta[mine])
            deviation, energy_deviation = uncertainty(energies[:, slot], forces[:, mine])
            results = {
                "energy": float(dynamics_energy[slot]),
                "forces": dynamics_forces[mine],
                "deviation": deviation,
                "energy_deviation": energy_deviation,
            }
            reason = check_frame(atoms, results, tasks[k].settings, tasks[k].trust_hi, start_volumes[k])
            if records[k].save(atoms, results, reason, done):
                still.append(slot)
        if not still:
            break
        if len(still) < len(active):
            state = _keep(state, still)
            active = [active[slot] for slot in still]
            target_kT = kT[active]
    return [record.result() for record in records]


def _all_failed(records, atoms_list, active, reason: str, done: int) -> list:
    for k in active:
        records[k].save(atoms_list[k], {}, reason[:300], done)
    return [record.result() for record in records]
