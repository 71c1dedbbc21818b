"""NequIP committees: training configs, `nequip-train`, packaging, and the
committee calculator whose force disagreement drives selection."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from ase.calculators.calculator import Calculator, all_changes
from psiflow.data import replace_atomically

MONITORED_METRIC = "val0_epoch/weighted_sum"


def training_config(
    train_file: str,
    val_file: str,
    chemical_symbols: list[str],
    model: dict,
    seed: int,
    accelerator: str = "cpu",
    energy_shifts: dict | None = None,
    warm_start_from: str | None = None,
) -> dict:
    """A `nequip-train` config (Hydra) for one committee member.

    `energy_shifts` (eV per element, e.g. isolated-atom energies) replace the
    dataset's mean energy per atom as the per-type energy shifts, so that the
    network learns atomization-like energies. `warm_start_from` is a packaged
    model (absolute path) whose weights training starts from. `model["nequip"]`
    is merged into the result key by key, for any other nequip option.
    """
    if energy_shifts is not None:
        missing = set(chemical_symbols) - set(energy_shifts)
        if missing:
            raise ValueError(f"no isolated-atom energy for {sorted(missing)}")
        shifts = {symbol: float(energy_shifts[symbol]) for symbol in chemical_symbols}
    else:
        shifts = "${training_data_stats:per_atom_energy_mean}"
    config = {
        "run": ["train"],
        "cutoff_radius": model["r_max"],
        "chemical_symbols": chemical_symbols,
        "model_type_names": "${chemical_symbols}",
        "data": {
            "_target_": "nequip.data.datamodule.ASEDataModule",
            "seed": seed,
            "train_file_path": train_file,
            "val_file_path": val_file,
            "transforms": [
                {
                    "_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                    "model_type_names": "${model_type_names}",
                    "chemical_species_to_atom_type_map": {s: s for s in chemical_symbols},
                },
                {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": "${cutoff_radius}"},
            ],
            "train_dataloader": {
                "_target_": "torch.utils.data.DataLoader",
                "batch_size": model["batch_size"],
                "shuffle": True,
            },
            "val_dataloader": {"_target_": "torch.utils.data.DataLoader", "batch_size": model["batch_size"]},
            "stats_manager": {
                "_target_": "nequip.data.CommonDataStatisticsManager",
                "type_names": "${model_type_names}",
            },
        },
        "trainer": {
            "_target_": "lightning.Trainer",
            "accelerator": accelerator,
            "devices": 1,
            "max_epochs": model["max_epochs"],
            "check_val_every_n_epoch": 1,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "logger": {
                "_target_": "lightning.pytorch.loggers.CSVLogger",
                "save_dir": "${hydra:runtime.output_dir}",
                "name": "metrics",
            },
            "callbacks": [
                {
                    "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "monitor": MONITORED_METRIC,
                    "dirpath": "${hydra:runtime.output_dir}",
                    "filename": "best",
                    "save_last": True,
                },
                {
                    "_target_": "lightning.pytorch.callbacks.EarlyStopping",
                    "monitor": MONITORED_METRIC,
                    "min_delta": 1e-4,
                    "patience": model["patience"],
                },
            ],
        },
        "training_module": {
            "_target_": "nequip.train.EMALightningModule",
            "ema_decay": 0.99,
            "loss": {
                "_target_": "nequip.train.EnergyForceLoss",
                "per_atom_energy": True,
                "coeffs": {"total_energy": model["energy_weight"], "forces": model["force_weight"]},
            },
            "val_metrics": {
                "_target_": "nequip.train.EnergyForceMetrics",
                "coeffs": {"per_atom_energy_mae": model["energy_weight"], "forces_mae": model["force_weight"]},
            },
            "train_metrics": "${training_module.val_metrics}",
            "optimizer": {"_target_": "torch.optim.Adam", "lr": model["learning_rate"]},
            "lr_scheduler": {
                "scheduler": {
                    "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                    "factor": model["lr_factor"],
                    "patience": model["lr_patience"],
                    "min_lr": 1e-6,
                },
                "monitor": MONITORED_METRIC,
                "interval": "epoch",
                "frequency": 1,
            },
            "model": {
                "_target_": "nequip.model.NequIPGNNModel",
                "seed": seed,
                "model_dtype": "float32",
                "type_names": "${model_type_names}",
                "r_max": "${cutoff_radius}",
                "num_bessels": 8,
                "polynomial_cutoff_p": 6,
                "num_layers": model["num_layers"],
                "l_max": model["l_max"],
                "parity": True,
                "num_features": model["num_features"],
                "radial_mlp_depth": 2,
                "radial_mlp_width": 2 * model["num_features"],
                "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
                "per_type_energy_scales": "${training_data_stats:per_type_forces_rms}",
                "per_type_energy_shifts": shifts,
                "per_type_energy_scales_trainable": False,
                "per_type_energy_shifts_trainable": False,
            },
        },
        "global_options": {"allow_tf32": False},
    }
    if warm_start_from is not None:
        config["training_module"]["model"] = {
            "_target_": "nequip.model.ModelFromPackage",
            "package_path": str(Path(warm_start_from).resolve()),
        }
    return merge(config, model.get("nequip", {}))


def merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` merged in recursively (overrides win)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _executable(name: str) -> str:
    """A console script of the running environment (rule scripts run with its python)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def train_member(config: dict, workdir, output, threads: int, log_path) -> None:
    """Run `nequip-train` in `workdir`, then package the best checkpoint as `output`.

    The package is self-contained, so `results/` can move without breaking it.
    """
    workdir = Path(workdir).resolve()
    if workdir.exists():  # a rerun starts clean; Lightning would otherwise version its files
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    run = [
        _executable("nequip-train"),
        "-cp",
        str(workdir),
        "-cn",
        "config",
        f"hydra.run.dir={workdir}",
    ]
    with open(log_path, "a") as log:
        subprocess.run(run, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    checkpoint = workdir / "best.ckpt"
    if not checkpoint.exists():
        checkpoint = workdir / "last.ckpt"

    def package(tmp):
        with open(log_path, "a") as log:
            subprocess.run(
                [_executable("nequip-package"), "build", str(checkpoint), str(tmp)],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )

    replace_atomically(Path(output).resolve(), package)


def train_on_dataset(
    dataset_path,
    workdir,
    output,
    model: dict,
    seed: int,
    accelerator: str,
    threads: int,
    log_path,
    energy_shifts: dict | None = None,
    warm_start_from: str | None = None,
    resample_seed=None,
):
    """Train one member on the train split of a dataset, validating on its valid split.

    With `resample_seed`, the member sees a resample with replacement of the
    training frames (a bootstrap committee).
    """
    from psiflow.data import read_h5, write_extxyz
    from psiflow.dataset import split

    workdir = Path(workdir).resolve()
    dataset = read_h5(dataset_path)
    train, valid = split(dataset, model["valid_fraction"])
    if len(valid) == 0:  # tiny datasets: validate on the training frames rather than on nothing
        valid = train
    if resample_seed is not None:
        rng = np.random.default_rng(resample_seed)
        train = train.take(rng.integers(0, len(train), len(train)))
    symbols = dataset.symbols()
    data_dir = workdir.parent / "data"  # beside the training folder, which a rerun wipes
    write_extxyz(train, data_dir / "train.xyz")
    write_extxyz(valid, data_dir / "valid.xyz")
    config = training_config(
        str(data_dir / "train.xyz"),
        str(data_dir / "valid.xyz"),
        symbols,
        model,
        seed,
        accelerator,
        energy_shifts,
        warm_start_from,
    )
    train_member(config, workdir, output, threads, log_path)
    return len(train), len(valid)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_calculator(path, device: str | None = None):
    """An ASE calculator for a packaged (.nequip.zip) or compiled (.nequip.pt2) model."""
    from nequip.integrations.ase import NequIPCalculator

    device = device or default_device()
    if str(path).endswith(".pt2"):
        return NequIPCalculator.from_compiled_model(str(path), device=device, chemical_species_to_atom_type_map=True)
    # `_from_saved_model` is how nequip loads packaged models eagerly
    return NequIPCalculator._from_saved_model(str(path), device=device, chemical_species_to_atom_type_map=True)


def compile_model(package, output, device: str, log_path) -> None:
    """AOTInductor-compile a packaged model for ASE (`nequip-compile`)."""

    def compile_to(tmp):
        with open(log_path, "a") as log:
            subprocess.run(
                [_executable("nequip-compile"), str(package), str(tmp)]
                + ["--mode", "aotinductor", "--device", device, "--target", "ase"],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )

    replace_atomically(Path(output).resolve(), compile_to)


def uncertainty(energies: np.ndarray, forces: np.ndarray) -> tuple[float, float]:
    """Committee disagreement of one frame, shared by sampling and evaluation.

    Returns (force deviation in eV/Å, energy deviation in eV): the largest,
    over atoms, root mean squared distance of the members' force vectors to
    their mean, and the standard deviation of the members' energies.
    `energies` has shape (members,), `forces` (members, atoms, 3).
    """
    spread = forces - forces.mean(axis=0)
    per_atom = np.sqrt((spread**2).sum(axis=-1).mean(axis=0))
    return (float(per_atom.max()) if per_atom.size else 0.0), float(np.std(energies))


class Committee(Calculator):
    """Mean energy and forces of several models, plus their disagreement."""

    implemented_properties = ["energy", "forces", "stress", "free_energy", "deviation", "energy_deviation"]

    def __init__(self, calculators, **kwargs):
        super().__init__(**kwargs)
        self.calculators = list(calculators)

    @classmethod
    def from_files(cls, paths, device: str | None = None) -> Committee:
        return cls([load_calculator(p, device) for p in paths])

    def predict(self, atoms) -> tuple[np.ndarray, np.ndarray]:
        """Per-member energies (members,) and forces (members, atoms, 3)."""
        energies, forces = [], []
        for calc in self.calculators:
            calc.calculate(atoms, ["energy", "forces"], all_changes)
            energies.append(calc.results["energy"])
            forces.append(calc.results["forces"])
        return np.array(energies, dtype=float), np.array(forces, dtype=float)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energies, forces = self.predict(self.atoms)
        energy = float(energies.mean())
        deviation, energy_deviation = uncertainty(energies, forces)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces.mean(axis=0),
            "deviation": deviation,
            "energy_deviation": energy_deviation,
        }
        stresses = [calc.results.get("stress") for calc in self.calculators]
        if self.atoms.pbc.all() and all(stress is not None for stress in stresses):
            self.results["stress"] = np.mean(stresses, axis=0)
