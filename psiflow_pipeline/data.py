"""The HDF5 frame store: ragged per-atom arrays with per-frame offsets.

A `Frames` object holds N frames of varying atom counts as columns:
per-atom columns are concatenated over frames (`offsets[k]:offsets[k+1]`
are the atoms of frame k), per-frame columns have one row per frame.
Absent numbers are NaN so that every frame has every column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

SCHEMA_VERSION = 1


class Status(StrEnum):
    """The `status` column: what became of a frame."""

    OK = "ok"
    FAILED = "failed"  # a single point that gave no label (its `reason` says why)
    RESET = "reset"  # a walker frame that failed a check; the walker restarts (its `reason` says why)


# The `identifier` column: stable names, from which train/valid membership follows.
def bootstrap_identifier(structure: int, copy: int) -> str:
    return f"i0-s{structure}-b{copy}"


def walker_identifier(iteration: int, walker: int, step: int) -> str:
    return f"i{iteration}-w{walker}-s{step}"


def imported_identifier(k: int) -> str:
    """Frame k of the user's initial data, when it carries no identifier of its own."""
    return f"i0-d{k}"


# name -> (dtype, trailing shape); float columns default to NaN.
ATOM_COLUMNS = {
    "numbers": (np.int64, ()),
    "positions": (np.float64, (3,)),
    "forces": (np.float64, (3,)),
    "momenta": (np.float64, (3,)),
}
FRAME_COLUMNS = {
    "cell": (np.float64, (3, 3)),
    "pbc": (np.bool_, (3,)),
    "energy": (np.float64, ()),
    "stress": (np.float64, (3, 3)),
    "identifier": (str, ()),
    "iteration": (np.int64, ()),
    "walker": (np.int64, ()),
    "step": (np.int64, ()),
    "deviation": (np.float64, ()),
    "energy_deviation": (np.float64, ()),
    "temperature": (np.float64, ()),
    "status": (str, ()),
    "reason": (str, ()),
    "bias": (str, ()),  # walker states: the PLUMED bias files, as JSON {name: text}
}
# per-frame columns carried as extxyz info (besides energy, stress, cell and pbc)
EXTXYZ_INFO = (
    "identifier",
    "iteration",
    "walker",
    "step",
    "deviation",
    "energy_deviation",
    "temperature",
    "status",
    "reason",
)
STRING_COLUMNS = {k for k, (dtype, _) in FRAME_COLUMNS.items() if dtype is str}


def _default(name: str, n: int, columns: dict) -> np.ndarray:
    dtype, shape = columns[name]
    if dtype is str:
        return np.full(n, "", dtype=object)
    if dtype is np.float64:
        return np.full((n, *shape), np.nan)
    if dtype is np.bool_:
        return np.zeros((n, *shape), dtype=bool)
    return np.full((n, *shape), -1, dtype=dtype)


class FrameStoreError(ValueError):
    """A frame file that is missing, of another schema or inconsistent."""


@dataclass
class Frames:
    offsets: np.ndarray
    atom: dict = field(default_factory=dict)
    frame: dict = field(default_factory=dict)

    def __post_init__(self):
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        n_frames, n_atoms = len(self.offsets) - 1, int(self.offsets[-1])
        for name in ATOM_COLUMNS:
            if name not in self.atom:
                self.atom[name] = _default(name, n_atoms, ATOM_COLUMNS)
        for name in FRAME_COLUMNS:
            if name not in self.frame:
                self.frame[name] = _default(name, n_frames, FRAME_COLUMNS)
        self.check()

    def check(self) -> None:
        n_frames, n_atoms = len(self.offsets) - 1, int(self.offsets[-1])
        if self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise FrameStoreError("offsets are not increasing from 0")
        for name, values in self.atom.items():
            if len(values) != n_atoms:
                raise FrameStoreError(f"atom column '{name}' has {len(values)} rows, expected {n_atoms}")
        for name, values in self.frame.items():
            if len(values) != n_frames:
                raise FrameStoreError(f"frame column '{name}' has {len(values)} rows, expected {n_frames}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def empty(cls) -> Frames:
        return cls(offsets=np.zeros(1, dtype=np.int64))

    def atoms_of(self, k: int) -> slice:
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def take(self, indices) -> Frames:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        counts = np.diff(self.offsets)[indices]
        atom_index = np.concatenate(
            [np.arange(self.offsets[k], self.offsets[k + 1]) for k in indices] or [np.zeros(0, dtype=np.int64)]
        )
        return Frames(
            offsets=np.concatenate([[0], np.cumsum(counts)]),
            atom={k: v[atom_index] for k, v in self.atom.items()},
            frame={k: v[indices] for k, v in self.frame.items()},
        )

    @classmethod
    def concatenate(cls, parts: list[Frames]) -> Frames:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        counts = np.concatenate([np.diff(p.offsets) for p in parts])
        return cls(
            offsets=np.concatenate([[0], np.cumsum(counts)]),
            atom={k: np.concatenate([p.atom[k] for p in parts]) for k in ATOM_COLUMNS},
            frame={k: np.concatenate([p.frame[k] for p in parts]) for k in FRAME_COLUMNS},
        )

    # -- ASE ------------------------------------------------------------------

    @classmethod
    def from_atoms(cls, images: list[Atoms], **frame_values) -> Frames:
        """Frames from ASE Atoms; energy/forces/stress come from the attached calculator."""
        counts = [len(a) for a in images]
        frames = cls(offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        for k, atoms in enumerate(images):
            sl = frames.atoms_of(k)
            frames.atom["numbers"][sl] = atoms.numbers
            frames.atom["positions"][sl] = atoms.positions
            if atoms.has("momenta"):
                frames.atom["momenta"][sl] = atoms.get_momenta()
            frames.frame["cell"][k] = atoms.cell.array
            frames.frame["pbc"][k] = atoms.pbc
            results = atoms.calc.results if atoms.calc is not None else {}
            if "energy" in results:
                frames.frame["energy"][k] = results["energy"]
            if "forces" in results:
                frames.atom["forces"][sl] = results["forces"]
            if "stress" in results:
                frames.frame["stress"][k] = _voigt_to_matrix(results["stress"])
        for name, value in frame_values.items():
            frames.frame[name][:] = value
        return frames

    def to_atoms(self, k: int) -> Atoms:
        sl = self.atoms_of(k)
        atoms = Atoms(
            numbers=self.atom["numbers"][sl],
            positions=self.atom["positions"][sl],
            cell=self.frame["cell"][k],
            pbc=self.frame["pbc"][k],
        )
        if np.all(np.isfinite(self.atom["momenta"][sl])):
            atoms.set_momenta(self.atom["momenta"][sl])
        results = {}
        if np.isfinite(self.frame["energy"][k]):
            results["energy"] = float(self.frame["energy"][k])
        if np.all(np.isfinite(self.atom["forces"][sl])) and len(atoms):
            results["forces"] = self.atom["forces"][sl].copy()
        if np.all(np.isfinite(self.frame["stress"][k])):
            results["stress"] = self.frame["stress"][k].copy()
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        for name in EXTXYZ_INFO:
            atoms.info[name] = self.frame[name][k].item() if name not in STRING_COLUMNS else self.frame[name][k]
        return atoms

    def to_atoms_list(self) -> list[Atoms]:
        return [self.to_atoms(k) for k in range(len(self))]

    def symbols(self) -> list[str]:
        """The chemical symbols of the elements in these frames, sorted."""
        return sorted({chemical_symbols[z] for z in np.unique(self.atom["numbers"])})


def _voigt_to_matrix(stress) -> np.ndarray:
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        return stress
    xx, yy, zz, yz, xz, xy = stress
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


# -- HDF5 ---------------------------------------------------------------------


def replace_atomically(path, write) -> None:
    """`write(tmp)` to a temporary file in the same folder, then rename it over `path`.

    The temporary name keeps `path`'s extension, which some writers require
    (`nequip-package` wants `.nequip.zip`, `np.savez` appends `.npz`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_h5(frames: Frames, path) -> None:
    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.create_dataset("offsets", data=frames.offsets)
            for name, values in frames.atom.items():
                f.create_dataset(f"atom/{name}", data=values)
            for name, values in frames.frame.items():
                if name in STRING_COLUMNS:
                    f.create_dataset(f"frame/{name}", data=values.astype(str).tolist(), dtype=h5py.string_dtype())
                else:
                    f.create_dataset(f"frame/{name}", data=values)

    replace_atomically(path, write)


def read_h5(path) -> Frames:
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise FrameStoreError(f"{path}: missing or empty frame file")
    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("schema_version")
            if version != SCHEMA_VERSION:
                raise FrameStoreError(f"{path}: schema_version {version}, expected {SCHEMA_VERSION}")
            atom = {name: f[f"atom/{name}"][()] for name in f["atom"]} if "atom" in f else {}
            frame = {}
            for name in f["frame"] if "frame" in f else []:
                if name in STRING_COLUMNS:
                    frame[name] = np.array(f[f"frame/{name}"].asstr()[()], dtype=object).reshape(-1)
                else:
                    frame[name] = f[f"frame/{name}"][()]
            offsets = f["offsets"][()]
    except OSError as error:
        raise FrameStoreError(f"{path}: not a readable HDF5 file ({error})") from error
    try:
        return Frames(offsets=offsets, atom=atom, frame=frame)
    except FrameStoreError as error:
        raise FrameStoreError(f"{path}: {error}") from error


# -- extxyz -------------------------------------------------------------------
# ASE's extxyz writer rounds positions to 8 decimals; we write repr() floats so
# that a round trip is bit-identical, and read back with ASE's parser.


def _fmt(x) -> str:
    return repr(float(x))


def write_extxyz(frames: Frames, path, only_labeled: bool = False, with_stress: bool = False) -> None:
    """Frames as extxyz; with `with_stress` every frame carries a stress (NaN
    where it has none), as NequIP wants when it trains on the stress of some."""

    def write(tmp):
        with open(tmp, "w") as out:
            for k in range(len(frames)):
                sl = frames.atoms_of(k)
                has_forces = bool(np.all(np.isfinite(frames.atom["forces"][sl])))
                has_momenta = bool(np.all(np.isfinite(frames.atom["momenta"][sl])))
                energy = frames.frame["energy"][k]
                if only_labeled and not (has_forces and np.isfinite(energy)):
                    continue
                props = "species:S:1:pos:R:3"
                props += ":forces:R:3" if has_forces else ""
                props += ":momenta:R:3" if has_momenta else ""
                fields = []
                cell = frames.frame["cell"][k]
                fields.append('Lattice="' + " ".join(_fmt(x) for x in cell.reshape(-1)) + '"')
                fields.append(f"Properties={props}")
                if np.isfinite(energy):
                    fields.append(f"energy={_fmt(energy)}")
                stress = frames.frame["stress"][k]
                if np.all(np.isfinite(stress)) or with_stress:
                    fields.append('stress="' + " ".join(_fmt(x) for x in stress.reshape(-1)) + '"')
                for name in EXTXYZ_INFO:
                    value = frames.frame[name][k]
                    if name in STRING_COLUMNS:
                        if value:
                            fields.append(f'{name}="{value}"')
                    elif isinstance(value, np.floating):
                        if np.isfinite(value):
                            fields.append(f"{name}={_fmt(value)}")
                    elif value != -1:
                        fields.append(f"{name}={int(value)}")
                pbc = " ".join("T" if p else "F" for p in frames.frame["pbc"][k])
                fields.append(f'pbc="{pbc}"')
                out.write(f"{sl.stop - sl.start}\n{' '.join(fields)}\n")
                symbols = Atoms(numbers=frames.atom["numbers"][sl]).get_chemical_symbols()
                for j, atom in enumerate(range(sl.start, sl.stop)):
                    row = [symbols[j], *map(_fmt, frames.atom["positions"][atom])]
                    if has_forces:
                        row += map(_fmt, frames.atom["forces"][atom])
                    if has_momenta:
                        row += map(_fmt, frames.atom["momenta"][atom])
                    out.write(" ".join(row) + "\n")

    replace_atomically(path, write)


def read_extxyz(path) -> Frames:
    from ase.io import read

    images = read(path, index=":", format="extxyz")
    frames = Frames.from_atoms(images)
    for k, atoms in enumerate(images):
        for name in EXTXYZ_INFO:
            if name in atoms.info:
                frames.frame[name][k] = atoms.info[name]
    return frames


def read_structures(paths, periodic: bool) -> list[Atoms]:
    """The initial structures (the last frame of each file), periodic or not
    as the config says; `psiflow_pipeline.preflight` has checked them."""
    from ase.io import read

    images = []
    for path in paths:
        atoms = read(path)
        atoms.pbc = periodic
        images.append(atoms)
    return images
