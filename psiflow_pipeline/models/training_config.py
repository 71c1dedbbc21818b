"""The `nequip-train` config (Hydra) of one committee member."""

from __future__ import annotations

from pathlib import Path

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
    compile_mode: str = "eager",
) -> dict:
    """A `nequip-train` config (Hydra) for one committee member.

    `energy_shifts` (eV per element, e.g. isolated-atom energies) replace the
    dataset's mean energy per atom as the per-type energy shifts, so that the
    network learns atomization-like energies. `warm_start_from` is a packaged
    model (absolute path) whose weights training starts from. `compile_mode`
    "compile" trains the model through torch.compile. `model["nequip"]`
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
            "loss": _loss(model),
            "val_metrics": _metrics(model),
            "train_metrics": "${training_module.val_metrics}",
            "optimizer": {"_target_": "torch.optim.Adam", "lr": model["learning_rate"]},
            "lr_scheduler": _lr_scheduler(model),
            "model": {
                "_target_": "nequip.model.NequIPGNNModel",
                "seed": seed,
                "compile_mode": compile_mode,
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
    if model.get("pair_potential") == "zbl":
        config["training_module"]["model"]["pair_potential"] = {
            "_target_": "nequip.nn.pair_potential.ZBL",
            "units": "metal",  # eV and Å
            "chemical_species": "${chemical_symbols}",
        }
    if warm_start_from is not None:
        config["training_module"]["model"] = {
            "_target_": "nequip.model.ModelFromPackage",
            "package_path": str(Path(warm_start_from).resolve()),
            "compile_mode": compile_mode,
        }
    return merge(config, model.get("nequip", {}))


def _loss(model: dict) -> dict:
    """Per-atom energy and force MSE, and with `model["stress"]` the stress MSE
    (frames without a stress label, NaN, are left out of that term)."""
    coeffs = {"total_energy": model["energy_weight"], "forces": model["force_weight"]}
    if not model.get("stress"):
        return {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True, "coeffs": coeffs}
    return {
        "_target_": "nequip.train.EnergyForceStressLoss",
        "per_atom_energy": True,
        "coeffs": coeffs | {"stress": model["stress_weight"]},
        "ignore_nan": {"stress": True},
    }


def _metrics(model: dict) -> dict:
    """The validation metrics whose weighted sum early stopping and the learning
    rate schedule watch: MAEs, each weighted by the square root of its loss
    weight, so that they rank models as the (squared-error) loss does."""
    coeffs = {"per_atom_energy_mae": model["energy_weight"] ** 0.5, "forces_mae": model["force_weight"] ** 0.5}
    if not model.get("stress"):
        return {"_target_": "nequip.train.EnergyForceMetrics", "coeffs": coeffs}
    return {
        "_target_": "nequip.train.EnergyForceStressMetrics",
        "coeffs": coeffs | {"stress_mae": model["stress_weight"] ** 0.5},
        "ignore_nan": {"stress": True},
    }


def _lr_scheduler(model: dict) -> dict:
    """Lightning's scheduler entry for `model["lr_schedule"]` (plateau where
    the settings leave it out), stepped once per epoch."""
    if model.get("lr_schedule") == "cosine":
        scheduler = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": model["max_epochs"]}
    else:
        scheduler = {
            "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
            "factor": model["lr_factor"],
            "patience": model["lr_patience"],
            "min_lr": 1e-6,
        }
    return {"scheduler": scheduler, "monitor": MONITORED_METRIC, "interval": "epoch", "frequency": 1}


def merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` merged in recursively (overrides win)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
