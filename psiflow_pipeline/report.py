"""What the summary shows: learning curves, parity plots, deviation
histograms, the calibration of the deviation, the walker table and provenance."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from psiflow_pipeline.data import read_h5

PACKAGES = [
    "psiflow-pipeline",
    "snakemake",
    "parsl",
    "ase",
    "nequip",
    "torch-sim-atomistic",
    "torch",
    "h5py",
    "numpy",
    "pandas",
    "matplotlib",
]

MODEL_README = """# The final committee

`member_{{m}}.nequip.zip` are self-contained NequIP packages (eager PyTorch, any
device); `member_{{m}}.nequip.pt2`, where present, are the same models compiled
with AOTInductor for the device they were compiled on ({members} members).

```python
from nequip.integrations.ase import NequIPCalculator

# the models' atom types are the chemical symbols
species = dict(chemical_species_to_atom_type_map=True)
atoms.calc = NequIPCalculator.from_compiled_model("member_0.nequip.pt2", device="cpu", **species)
# or, without compilation:
atoms.calc = NequIPCalculator._from_saved_model("member_0.nequip.zip", device="cpu", **species)
```

For the committee mean and its force deviation, as psiflow samples with it
(the `psiflow-pipeline` package, installed by psiflow's set-up):

```python
from psiflow_pipeline.models.committee import Committee

atoms.calc = Committee.from_files(["member_0.nequip.zip", "member_1.nequip.zip"])
atoms.get_forces(); atoms.calc.results["deviation"]  # eV/Å
```

For LAMMPS, compile a package with `nequip-compile --mode aotinductor --target pair_nequip`
(see the NequIP documentation).
"""


def collect_metrics(metric_files, dataset_files) -> tuple[pd.DataFrame, dict[int, int]]:
    """All iterations' metrics in one table, with the dataset size (labels) of each iteration."""
    metrics = pd.concat([pd.read_csv(p) for p in metric_files], ignore_index=True)
    labels = {}
    for path in dataset_files:
        with h5py.File(path, "r") as f:  # the size only: no need to read the frames
            labels[_iteration_of(path)] = len(f["offsets"]) - 1
    metrics.insert(3, "labels", metrics.iteration.map(labels))
    return metrics, labels


def _iteration_of(path) -> int:
    return int(Path(path).parent.name.removeprefix("iter_"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(metrics: pd.DataFrame, labels: dict[int, int], path) -> None:
    """Force, energy and (where the labels carry it) stress errors against the
    iteration and against the number of labels."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    rows = [("force_rmse", "force RMSE (eV/Å)"), ("energy_rmse_per_atom", "energy RMSE (eV/atom)")]
    if "stress_rmse_gpa" in metrics and metrics.stress_rmse_gpa.notna().any():
        rows.append(("stress_rmse_gpa", "stress RMSE (GPa)"))
    figure, axes = plt.subplots(len(rows), 2, figsize=(9, 3.25 * len(rows)), sharey="row", squeeze=False)
    curves = (("valid", "validation set"), ("new", "fresh labels (previous committee)"), ("test", "test set"))
    for row, (column, unit) in enumerate(rows):
        for subset, label in curves:
            part = metrics[metrics.subset == subset]
            if len(part):
                axes[row, 0].plot(part.iteration, part[column], marker="o", label=label)
                axes[row, 1].plot([labels[i] for i in part.iteration], part[column], marker="o", label=label)
        axes[row, 0].set_ylabel(unit)
    for axis in axes[1:].ravel():
        axis.set_yscale("log")
    axes[-1, 0].set_xlabel("iteration")
    axes[-1, 1].set_xlabel("labels in the dataset")
    for axis in axes[:, 0]:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parity(data: dict, path, iteration: int) -> None:
    """Predicted against reference forces and energies of the last iteration."""
    plt = _pyplot()
    figure, (forces, energies) = plt.subplots(1, 2, figsize=(9, 4.2))
    for subset in ("train", "valid", "new", "test"):
        if f"{subset}_forces_reference" in data:
            forces.scatter(
                data[f"{subset}_forces_reference"].ravel(),
                data[f"{subset}_forces_predicted"].ravel(),
                s=2,
                label=subset,
            )
            energies.scatter(data[f"{subset}_energy_reference"], data[f"{subset}_energy_predicted"], s=8, label=subset)
    for axis, unit in ((forces, "force component (eV/Å)"), (energies, "energy (eV/atom)")):
        low, high = axis.get_xlim()
        axis.plot([low, high], [low, high], color="black", linewidth=0.8)
        axis.set_xlabel(f"reference {unit}")
        axis.set_ylabel(f"committee {unit}")
        axis.legend(fontsize=8, markerscale=3)
    figure.suptitle(f"committee of iteration {iteration} ('new': the committee of iteration {iteration - 1})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def deviation_histograms(candidate_files: list, trust_lo: float, trust_hi: float, path) -> None:
    """The committee force deviation of every sampled frame, per iteration, with the thresholds."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for file in candidate_files:
        deviation = read_h5(file).frame["deviation"]
        deviation = deviation[np.isfinite(deviation) & (deviation > 0)]
        if len(deviation):
            bins = np.logspace(np.log10(deviation.min()), np.log10(deviation.max()) + 1e-9, 30)
            axis.hist(deviation, bins=bins, histtype="step", label=Path(file).parent.name.replace("_", " "))
    for value, name in ((trust_lo, "trust_lo"), (trust_hi, "trust_hi")):
        axis.axvline(value, color="black", linestyle="--", linewidth=0.8)
        axis.text(value, axis.get_ylim()[1] * 0.95, f" {name}", fontsize=8, va="top")
    axis.set_xscale("log")
    axis.set_xlabel("committee force deviation (eV/Å)")
    axis.set_ylabel("sampled frames")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def calibration_figure(parity_files: list, path) -> None:
    """Per iteration, the committee deviation recorded while sampling each fresh
    label against the true error of that committee on it (both the largest over
    atoms), with the identity and the fitted line error = s * deviation."""
    from matplotlib.ticker import NullFormatter

    from psiflow_pipeline.evaluation import calibration

    plt = _pyplot()
    columns = min(len(parity_files), 4) or 1
    rows = -(-len(parity_files) // columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.ravel()[len(parity_files) :]:
        axis.set_visible(False)
    for axis, file in zip(axes.ravel(), parity_files):
        with np.load(file) as data:
            deviation, error = data["new_deviation_sampled"], data["new_force_error_largest"]
        fit = calibration(deviation, error)
        axis.scatter(deviation, error, s=8)
        shown = np.concatenate([deviation, error])
        shown = shown[np.isfinite(shown) & (shown > 0)]
        if len(shown):  # both axes over the same range, so that the identity is the diagonal
            x = np.array([shown.min() / 1.3, shown.max() * 1.3])
            axis.plot(x, x, color="black", linewidth=0.8, linestyle="--", label="error = deviation")
            if np.isfinite(fit["calibration_scale"]):
                axis.plot(x, fit["calibration_scale"] * x, color="C1", label=f"s = {fit['calibration_scale']:.2f}")
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlim(*x)
            axis.set_ylim(*x)
            for ticks in (axis.xaxis, axis.yaxis):
                ticks.set_minor_formatter(NullFormatter())
            axis.legend(fontsize=7)
        axis.set_title(
            f"{Path(file).parent.name.replace('_', ' ')}: rank corr. {fit['calibration_rank_correlation']:.2f}",
            fontsize=9,
        )
        axis.set_xlabel("deviation at sampling (eV/Å)", fontsize=8)
        axis.set_ylabel("true force error (eV/Å)", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def walker_table(candidate_files: list) -> pd.DataFrame:
    """Per iteration and walker: frames sampled, how the walker ended and why."""
    rows = []
    for file in candidate_files:
        frames = read_h5(file)
        for walker in np.unique(frames.frame["walker"]):
            mine = np.flatnonzero(frames.frame["walker"] == walker)
            last = mine[np.argmax(frames.frame["step"][mine])]
            rows.append(
                {
                    "iteration": int(frames.frame["iteration"][last]),
                    "walker": int(walker),
                    "frames": len(mine),
                    "last_step": int(frames.frame["step"][last]),
                    "status": frames.frame["status"][last],
                    "reason": frames.frame["reason"][last],
                    "deviation_max": float(np.nanmax(frames.frame["deviation"][mine])),
                }
            )
    return pd.DataFrame(
        rows, columns=["iteration", "walker", "frames", "last_step", "status", "reason", "deviation_max"]
    )


def summary_text(metrics: pd.DataFrame, labels: dict[int, int], verdict: dict | None) -> str:
    """The run in a few lines: labels, the final committee's errors, the validation's verdict."""
    last = int(metrics.iteration.max())
    lines = [f"iterations 0..{last}, {labels[last]} labels in the final dataset"]
    names = {"valid": "validation split", "new": "fresh labels (previous committee)", "test": "test set"}
    for subset, name in names.items():
        row = metrics[(metrics.iteration == last) & (metrics.subset == subset)]
        if not len(row):
            continue
        row = row.iloc[0]
        text = f"{name}: force RMSE {row.force_rmse:.3f} eV/Å, energy RMSE {row.energy_rmse_per_atom:.4f} eV/atom"
        elements = [c.removeprefix("force_rmse_") for c in metrics.columns if c.startswith("force_rmse_")]
        parts = [f"{e} {row[f'force_rmse_{e}']:.3f}" for e in elements if pd.notna(row[f"force_rmse_{e}"])]
        if parts:
            text += f" (forces {', '.join(parts)})"
        if pd.notna(row.get("stress_rmse_gpa")):
            text += f", stress RMSE {row.stress_rmse_gpa:.3f} GPa"
        lines.append(text)
    fresh = metrics[(metrics.iteration == last) & (metrics.subset == "new")]
    if len(fresh) and pd.notna(fresh.iloc[0].get("calibration_scale")):
        lines.append(
            f"calibration on the fresh labels: rank correlation {fresh.iloc[0].calibration_rank_correlation:.2f}"
            f" between committee deviation and true force error, error = {fresh.iloc[0].calibration_scale:.2f}"
            " x deviation"
        )
    if verdict is not None:
        lines.append(f"validation: {verdict['verdict']}")
    return "\n".join(lines) + "\n"


def provenance(config: dict, last: int, repository) -> dict:
    """Versions, the settings of every job (iterations 0..`last`), the
    configuration and the commit that produced a run."""
    from psiflow_pipeline.settings import every_iteration

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed in this environment"
    executable = config["execution"]["label"]["executable"]
    cp2k = "not found"
    if shutil.which(executable):
        output = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
        cp2k = next((line.strip() for line in output.splitlines() if "CP2K version" in line), output.strip()[:80])
    commit = "unknown (not a git checkout)"
    if repository:
        try:
            commit = subprocess.run(
                ["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(repository), "status", "--porcelain"], capture_output=True, text=True
            )
            if dirty.stdout.strip():
                commit += " (with uncommitted changes)"
        except (subprocess.CalledProcessError, FileNotFoundError):
            pass
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "workflow": str(repository),
        "git_commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "cp2k": cp2k,
        "settings": every_iteration(config, last),
        "config": config,
    }


def validation_figure(series: pd.DataFrame, structures: dict, title: str, path) -> None:
    """The production run: committee deviation and temperature over time, and
    each pair's radial distribution function against the reference's."""
    plt = _pyplot()
    panels = 1 + len(structures)
    columns = min(panels, 4)
    rows = -(-panels // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.2 * rows), squeeze=False)
    axes = axes.ravel()
    axes[0].plot(series.time_ps, series.deviation, color="C0")
    axes[0].set_xlabel("time (ps)")
    axes[0].set_ylabel("committee force deviation (eV/Å)", color="C0")
    twin = axes[0].twinx()
    twin.plot(series.time_ps, series.temperature_K, color="C1", linewidth=0.8)
    twin.set_ylabel("temperature (K)", color="C1")
    for axis, (pair, entry) in zip(axes[1:], structures.items()):
        axis.plot(entry["r"], entry["g"], label="final committee")
        if "g_reference" in entry:
            axis.plot(entry["r"], entry["g_reference"], linestyle="--", label="reference MD")
        axis.set_title(f"g(r) {pair}", fontsize=9)
        axis.set_xlabel("r (Å)")
        axis.legend(fontsize=7)
    for axis in axes[panels:]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
