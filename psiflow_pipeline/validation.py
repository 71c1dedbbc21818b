"""Judging the delivered potential as a chemist does: a production MD with
the final committee (how long does it stay physical, how does its committee
deviation evolve) and its radial distribution functions against those of a
reference MD."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, chemical_symbols

# amu/Å³ -> g/cm³
DENSITY_UNIT = 1.66053906660
# stretches of a run over which a first peak's height is measured for its
# standard error: 1.25 ps each in a 5 ps validation, longer than water's
# structure takes to renew
PEAK_BLOCKS = 4


def pairs_of(numbers) -> list[tuple[str, str]]:
    """The element pairs of a system, e.g. [("H", "H"), ("H", "O"), ("O", "O")]."""
    symbols = sorted({chemical_symbols[z] for z in numbers})
    return list(itertools.combinations_with_replacement(symbols, 2))


@dataclass
class PairCounts:
    """What g(r) is made of, per frame: each element pair's distances binned
    (pair -> frames x bins) and its pair density (pair -> frames), so that the
    whole run and stretches of it come from one pass over the frames."""

    edges: np.ndarray
    histograms: dict
    densities: dict

    def __len__(self) -> int:
        return len(next(iter(self.densities.values()), []))

    def rdfs(self, frames=slice(None)) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """pair -> (bin centres in Å, g) averaged over `frames` (all by default)."""
        shells = 4 / 3 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        centres = (self.edges[1:] + self.edges[:-1]) / 2
        return {
            pair: (centres, counts[frames].sum(axis=0) / (shells * self.densities[pair][frames].sum()))
            for pair, counts in self.histograms.items()
        }


def pair_counts(images: list[Atoms], pairs: list[tuple[str, str]], r_max: float, bins: int) -> PairCounts:
    """The binned pair distances of periodic `images` up to `r_max`. Distances
    of minimum images, so `r_max` at most half the smallest cell width. Each
    frame's pairs within `r_max` come from one neighbour list (matscipy's, in
    C: a 5 ps validation saves 500 frames, which all-distance matrices per
    pair took 20 s to histogram)."""
    from matscipy.neighbours import neighbour_list

    edges = np.linspace(0.0, r_max, bins + 1)
    histograms = {pair: np.zeros((len(images), bins)) for pair in pairs}
    densities = {pair: np.zeros(len(images)) for pair in pairs}
    for frame, atoms in enumerate(images):
        symbols = np.array(atoms.get_chemical_symbols())
        first, second, distances = neighbour_list("ijd", atoms, r_max)
        first_symbols, second_symbols = symbols[first], symbols[second]
        for a, b in pairs:
            found = (first_symbols == a) & (second_symbols == b)
            counts = np.sum(symbols == a), np.sum(symbols == b)
            if a == b:  # the list holds i-j and j-i
                found &= first < second
                count = counts[0] * (counts[0] - 1) / 2
            else:
                count = counts[0] * counts[1]
            histograms[(a, b)][frame] = np.histogram(distances[found], edges)[0]
            densities[(a, b)][frame] = count / atoms.get_volume()
    return PairCounts(edges, histograms, densities)


def rdfs(
    images: list[Atoms], pairs: list[tuple[str, str]], r_max: float, bins: int
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """The radial distribution functions g(r) of element pairs, averaged over
    periodic `images`: pair -> (bin centres in Å, g)."""
    return pair_counts(images, pairs, r_max, bins).rdfs()


def first_peak(r: np.ndarray, g: np.ndarray, window: float = 0.5) -> tuple[float, float]:
    """Position (Å) and height of the first peak: the maximum of g (smoothed
    over 3 bins against noise) within `window` Å after g first exceeds 1."""
    smooth = np.convolve(g, np.ones(3) / 3, mode="same")
    above = np.flatnonzero(smooth > 1)
    if not len(above):
        return float("nan"), float("nan")
    inside = np.flatnonzero((r >= r[above[0]]) & (r <= r[above[0]] + window))
    k = inside[np.argmax(smooth[inside])]
    return float(r[k]), float(smooth[k])


def peak_height_errors(counts: PairCounts, blocks: int = PEAK_BLOCKS) -> dict[tuple[str, str], float]:
    """Per pair, the standard error of the first peak's height: the spread of
    its height over `blocks` consecutive stretches of the frames over √blocks
    (consecutive MD frames are correlated, so single frames would understate
    it). NaN with fewer frames than blocks."""
    if len(counts) < blocks:
        return dict.fromkeys(counts.histograms, float("nan"))
    parts = [counts.rdfs(part) for part in np.array_split(np.arange(len(counts)), blocks)]
    heights = {pair: [first_peak(*part[pair])[1] for part in parts] for pair in counts.histograms}
    return {pair: float(np.std(heights[pair], ddof=1) / np.sqrt(blocks)) for pair in counts.histograms}


def rdf_difference(r: np.ndarray, g: np.ndarray, reference: np.ndarray) -> float:
    """∫ |g - g_reference| dr (Å): one number per pair, 0 for identical structure."""
    return float(np.sum(np.abs(g - reference)) * (r[1] - r[0]))


def density(atoms: Atoms) -> float:
    """g/cm³."""
    return float(atomic_masses[atoms.numbers].sum() / atoms.get_volume() * DENSITY_UNIT)


@dataclass
class ProductionRun:
    """A production MD with the final committee: its time series, saved frames,
    and the first reset condition it met (none: `failure` is empty)."""

    times_ps: list = field(default_factory=list)
    temperatures: list = field(default_factory=list)
    deviations: list = field(default_factory=list)
    densities: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    failure: str = ""
    failed_at_ps: float = float("nan")

    @property
    def stable_ps(self) -> float:
        return self.failed_at_ps if self.failure else (self.times_ps[-1] if self.times_ps else 0.0)


# how often a production MD logs its progress: every this fraction of its steps
PROGRESS_EVERY = 0.05


def production_md(atoms: Atoms, committee, settings: dict, trust_hi: float, seed: int) -> ProductionRun:
    """Run `settings["steps"]` MD steps with the committee as a walker would (the
    same integrators and the same checks at every saved frame), stopping at the
    first reset condition, and log its progress. `settings` holds a walker's keys."""
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    from psiflow_pipeline.logs import Progress
    from psiflow_pipeline.sampling import check_frame, make_dynamics
    from psiflow_pipeline.seeds import rng_for

    rng = rng_for(seed, 1_000_000)  # apart from every walker's stream
    atoms = atoms.copy()
    atoms.calc = committee
    thermalize_momenta(atoms, settings["temperature"], rng=rng)
    Stationary(atoms)
    dynamics = make_dynamics(atoms, settings, rng)
    start_volume = atoms.get_volume() if atoms.pbc.all() else None
    run = ProductionRun()
    progress = Progress(settings["steps"], "MD steps")  # its count: the steps done at the last line logged
    done = 0
    while done < settings["steps"]:
        chunk = min(settings["stride"], settings["steps"] - done)
        assessed = {}
        try:
            dynamics.run(chunk)
            assessed = committee.assess(atoms)
            reason = check_frame(atoms, assessed, settings, trust_hi, start_volume)
        except Exception as error:  # the model or integrator blew up: the run ends here
            reason = f"MD step failed: {error}"[:300]
        done += chunk
        time_ps = done * settings["timestep"] / 1000
        run.times_ps.append(time_ps)
        run.temperatures.append(atoms.get_temperature())
        run.deviations.append(assessed.get("deviation", np.nan))
        run.densities.append(density(atoms) if atoms.pbc.all() else np.nan)
        last = reason or done == settings["steps"]  # the run's end is logged too: where the MD stopped
        if progress.done == 0 or last or done - progress.done >= PROGRESS_EVERY * settings["steps"]:
            state = f"{time_ps:.2f} ps: {run.temperatures[-1]:.0f} K, committee deviation {run.deviations[-1]:.3f} eV/Å"
            progress.finished(state, count=done - progress.done)
        if reason:
            run.failure, run.failed_at_ps = reason, time_ps
            break
        snapshot = atoms.copy()
        snapshot.calc = None
        run.frames.append(snapshot)
    return run


def rdf_range(atoms: Atoms) -> float:
    """Half the smallest width of the cell: the largest distance minimum images resolve."""
    volume = atoms.get_volume()
    cell = atoms.cell.array
    widths = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    return min(widths) / 2


def compare_structure(run: ProductionRun, reference: list[Atoms] | None, r_max: float, bins: int) -> dict:
    """Per element pair: the run's g(r), the reference's where given, the first
    peaks and the integrated absolute difference."""
    if not run.frames or not run.frames[0].pbc.all():
        return {}
    pairs = pairs_of(run.frames[0].numbers)
    run_counts = pair_counts(run.frames, pairs, r_max, bins)
    run_rdfs, run_errors = run_counts.rdfs(), peak_height_errors(run_counts)
    if reference:
        reference_counts = pair_counts(reference, pairs, r_max, bins)
        reference_rdfs, reference_errors = reference_counts.rdfs(), peak_height_errors(reference_counts)
    result = {}
    for pair in pairs:
        r, g = run_rdfs[pair]
        entry = {"r": r, "g": g, "peak": first_peak(r, g), "peak_error": run_errors[pair]}
        if reference:
            g_reference = reference_rdfs[pair][1]
            entry |= {
                "g_reference": g_reference,
                "reference_peak": first_peak(r, g_reference),
                "reference_peak_error": reference_errors[pair],
                "difference": rdf_difference(r, g, g_reference),
            }
        result["-".join(pair)] = entry
    return result


def verdict(run: ProductionRun, settings: dict, structure: dict, reference: list[Atoms] | None = None) -> dict:
    """The numbers a chemist asks for, and one line that says them. In NPT, the
    reference frames' mean density is the one the run's is compared with."""
    walker = settings["walker"]
    duration = walker["steps"] * walker["timestep"] / 1000
    record = {
        "duration_ps": duration,
        "stable_ps": round(run.stable_ps, 4),
        "failure": run.failure or None,
        "deviation_mean": float(np.nanmean(run.deviations)) if run.deviations else float("nan"),
        "deviation_max": float(np.nanmax(run.deviations)) if run.deviations else float("nan"),
        "temperature_mean": float(np.mean(run.temperatures)) if run.temperatures else float("nan"),
    }
    if walker["ensemble"] == "npt":  # the second half: the first is the cell's equilibration
        record["density_mean_g_cm3"] = float(np.nanmean(run.densities[len(run.densities) // 2 :]))
        if reference:
            record["reference_density_g_cm3"] = float(np.mean([density(atoms) for atoms in reference]))
    pairs = {}
    for pair, entry in structure.items():
        pairs[pair] = {"peak_r": entry["peak"][0], "peak_g": entry["peak"][1], "peak_g_error": entry["peak_error"]}
        if "difference" in entry:
            pairs[pair] |= {
                "difference": entry["difference"],
                "reference_peak_r": entry["reference_peak"][0],
                "reference_peak_g": entry["reference_peak"][1],
                "reference_peak_g_error": entry["reference_peak_error"],
            }
    record["rdf"] = pairs
    conditions = f"{walker['ensemble'].upper()} at {walker['temperature']:g} K"
    if run.failure:
        line = f"unstable: {run.failure} after {run.stable_ps:g} ps of {duration:g} ps ({conditions})"
    else:
        line = f"stable for {duration:g} ps ({conditions})"
    if "reference_density_g_cm3" in record and not run.failure:
        mean, target = record["density_mean_g_cm3"], record["reference_density_g_cm3"]
        line += f"; density {mean:.3f} g/cm³, reference {target:.3f} ({100 * (mean / target - 1):+.1f} %)"
    compared = {pair: entry["difference"] for pair, entry in pairs.items() if "difference" in entry}
    if compared:
        worst = max(compared, key=compared.get)
        record["largest_rdf_difference"] = {"pair": worst, "value": compared[worst]}
        line += f"; largest RDF difference {worst} {compared[worst]:.3f} Å"
    record["verdict"] = line
    return record


def read_reference(paths) -> list[Atoms] | None:
    """The frames of the reference MD runs in `paths` (`validation.reference`),
    pooled; None without any."""
    from ase.io import read

    return [atoms for path in paths for atoms in read(path, index=":")] or None


def validate_committee(
    atoms: Atoms, model_paths: list, settings: dict, reference: list[Atoms] | None
) -> tuple[ProductionRun, dict, dict]:
    """The validation run that `settings` (`psiflow_pipeline.settings.validation`)
    describes, from `atoms`, with the committee of `model_paths` following what
    the walkers follow: the run, its structure against `reference`, the verdict."""
    from psiflow_pipeline.models.committee import Committee
    from psiflow_pipeline.settings import propagator

    committee = Committee.from_files(model_paths, propagator=propagator(0, settings["walker"], len(model_paths)))
    run = production_md(atoms, committee, settings["walker"], settings["trust_hi"], settings["seed"])
    r_max = settings["rdf_r_max"] or (rdf_range(atoms) if atoms.pbc.all() else 0.0)
    structures = compare_structure(run, reference, r_max, settings["rdf_bins"])
    return run, structures, verdict(run, settings, structures, reference)
