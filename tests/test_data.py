"""The HDF5 frame store and its extxyz export keep every array bit-identical."""

import numpy as np
import pytest
from ase import Atoms

from psiflow_pipeline.data import Frames, FrameStoreError, read_extxyz, read_h5, write_extxyz, write_h5


def random_frames(n_frames=5, seed=0) -> Frames:
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_frames):
        n = int(rng.integers(1, 9))
        atoms = Atoms(
            numbers=rng.choice([1, 8, 6], n),
            positions=rng.normal(0, 3, (n, 3)),
            cell=np.diag(rng.uniform(5, 10, 3)) + rng.normal(0, 0.1, (3, 3)),
            pbc=True,
        )
        atoms.set_momenta(rng.normal(0, 1, (n, 3)))
        images.append(atoms)
    frames = Frames.from_atoms(images, iteration=3, status="ok")
    frames.atom["forces"][:] = rng.normal(0, 1, frames.atom["forces"].shape)
    frames.frame["energy"][:] = rng.normal(-100, 10, n_frames)
    stress = rng.normal(0, 0.01, (n_frames, 3, 3))
    frames.frame["stress"][:] = stress + stress.transpose(0, 2, 1)
    frames.frame["deviation"][:] = rng.uniform(0, 1, n_frames)
    frames.frame["temperature"][:] = rng.uniform(250, 450, n_frames)
    frames.frame["walker"][:] = np.arange(n_frames)
    frames.frame["step"][:] = 10 * np.arange(n_frames)
    frames.frame["identifier"][:] = [f"i3-w{k}-s{10 * k}" for k in range(n_frames)]
    frames.frame["reason"][1] = "SCF not converged"
    return frames


def assert_identical(a: Frames, b: Frames, columns=None):
    assert np.array_equal(a.offsets, b.offsets)
    for group in ("atom", "frame"):
        for name, values in getattr(a, group).items():
            if columns and name not in columns:
                continue
            other = getattr(b, group)[name]
            if values.dtype == object:
                assert list(values) == list(other), name
            else:
                assert values.dtype == other.dtype, name
                # bit-identical, NaNs included
                assert values.tobytes() == other.tobytes(), name


def test_hdf5_round_trip_is_bit_identical(tmp_path):
    frames = random_frames()
    write_h5(frames, tmp_path / "f.h5")
    assert_identical(frames, read_h5(tmp_path / "f.h5"))


def test_extxyz_round_trip_is_bit_identical(tmp_path):
    frames = random_frames()
    write_extxyz(frames, tmp_path / "f.xyz")
    back = read_extxyz(tmp_path / "f.xyz")
    columns = {"numbers", "positions", "forces", "momenta", "cell", "pbc", "energy", "stress", "identifier"}
    columns |= {"iteration", "walker", "step", "deviation", "temperature", "status", "reason"}
    assert_identical(frames, back, columns)


def test_extxyz_is_readable_by_ase_with_labels(tmp_path):
    from ase.io import read

    frames = random_frames(2)
    write_extxyz(frames, tmp_path / "f.xyz")
    atoms = read(tmp_path / "f.xyz", index=0)
    assert atoms.get_potential_energy() == frames.frame["energy"][0]
    assert np.array_equal(atoms.get_forces(), frames.atom["forces"][frames.atoms_of(0)])


def test_take_and_concatenate_keep_frames_whole():
    frames = random_frames(6)
    picked = frames.take([4, 1])
    assert list(picked.frame["identifier"]) == [frames.frame["identifier"][4], frames.frame["identifier"][1]]
    assert np.array_equal(picked.atom["positions"][picked.atoms_of(0)], frames.atom["positions"][frames.atoms_of(4)])
    joined = Frames.concatenate([frames.take([0]), Frames.empty(), frames.take([1, 2])])
    assert_identical(joined, frames.take([0, 1, 2]))


def test_atoms_round_trip_keeps_labels():
    frames = random_frames(3)
    back = Frames.from_atoms(frames.to_atoms_list())
    assert_identical(frames, back, {"numbers", "positions", "forces", "momenta", "cell", "energy", "stress"})


def test_unlabeled_frames_have_nan_labels_and_empty_strings():
    frames = Frames.from_atoms([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    assert np.isnan(frames.frame["energy"][0]) and np.isnan(frames.atom["forces"]).all()
    assert frames.frame["status"][0] == ""


@pytest.mark.parametrize("damage", ["missing", "empty", "not_hdf5", "schema", "lengths"])
def test_damaged_files_are_refused_with_their_path(tmp_path, damage):
    import h5py

    path = tmp_path / "f.h5"
    write_h5(random_frames(2), path)
    if damage == "missing":
        path.unlink()
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not_hdf5":
        path.write_text("not hdf5")
    elif damage == "schema":
        with h5py.File(path, "a") as f:
            f.attrs["schema_version"] = 99
    elif damage == "lengths":
        with h5py.File(path, "a") as f:
            del f["frame/energy"]
            f["frame/energy"] = np.zeros(7)
    with pytest.raises(FrameStoreError, match=str(path)):
        read_h5(path)


def test_writing_is_atomic(tmp_path):
    path = tmp_path / "f.h5"
    write_h5(random_frames(2), path)
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_convert_command_round_trips(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    frames = random_frames()
    write_h5(frames, tmp_path / "a.h5")
    for source, target in (("a.h5", "b.xyz"), ("b.xyz", "c.h5")):  # the console script the set-up installs
        command = [str(Path(sys.executable).parent / "psiflow-convert"), str(tmp_path / source), str(tmp_path / target)]
        assert "5 frames" in subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert_identical(frames, read_h5(tmp_path / "c.h5"))


def test_scaled_density_keeps_every_molecule_rigid():
    import runpy

    from ase.io import read
    from conftest import REPO

    tool = runpy.run_path(str(REPO / "resources/structures/scale_density.py"))
    water = read(REPO / "resources/structures/water_32.xyz")
    dense = tool["scaled_to_density"](water, 1.5)
    assert tool["density"](dense) == pytest.approx(1.5, rel=1e-9)
    # O-H distances within each molecule unchanged (atoms O, H, H in order)
    for first in range(0, len(water), 3):
        for hydrogen in (first + 1, first + 2):
            assert dense.get_distance(first, hydrogen, mic=True) == pytest.approx(
                water.get_distance(first, hydrogen, mic=True), abs=1e-9
            )
    # the shipped dense boxes are what the tool makes
    for target in (1.25, 1.5):
        shipped = read(REPO / f"resources/structures/water_32_{target}.xyz")
        np.testing.assert_allclose(shipped.positions, tool["scaled_to_density"](water, target).positions, atol=1e-6)
