"""CP2K input, run and parsing, with the real cp2k.psmp."""

import numpy as np
import pytest
from ase.io import read
from ase.units import Bohr, Hartree
from conftest import (
    REPO,
    SCF_ENERGY_TOLERANCE,
    SCF_FORCE_TOLERANCE,
    SCF_STRESS_TOLERANCE,
    WATER_8,
    XTB,
    XTB_VACUUM,
    direct_cp2k,
)

from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.output import parse_output
from psiflow_pipeline.cp2k.process import single_point
from psiflow_pipeline.cp2k.template import TemplateError, check_template, write_input

REFERENCE = REPO / "resources" / "reference"


@pytest.fixture(scope="module")
def direct_run(tmp_path_factory):
    """A plain cp2k.psmp run on the 8-water box, outside psiflow's runner."""
    atoms = read(WATER_8)
    _, output = direct_cp2k(atoms, tmp_path_factory.mktemp("cp2k"))
    return atoms, output


def test_parser_reads_energy_and_forces_in_ev_and_angstrom(direct_run):
    atoms, output = direct_run
    result = parse_output(output, len(atoms))
    assert result.status == "ok"
    last_energy_line = [line for line in output.splitlines() if "ENERGY| Total FORCE_EVAL" in line][-1]
    assert result.energy == pytest.approx(float(last_energy_line.split()[-1]) * Hartree, abs=1e-9)
    assert result.forces.shape == (24, 3)
    first_force_row = output[output.rfind("ATOMIC FORCES in [a.u.]") :].splitlines()[3].split()
    assert result.forces[0] == pytest.approx(np.array(first_force_row[3:6], dtype=float) * Hartree / Bohr)
    # a periodic box feels no net force
    assert np.abs(result.forces.sum(axis=0)).max() < 1e-3


def test_forces_are_minus_the_energy_gradient(water_8):
    """Finite differences of CP2K energies reproduce the parsed force (units, sign)."""
    template = check_template(XTB)
    command = Cp2kCommand()
    h, atom, axis = 0.002, 1, 0
    water_8.positions[atom, axis] += 0.1  # off the relaxed geometry, for a sizeable force
    reference = single_point(water_8, template, command)
    energies = []
    for sign in (+1, -1):
        moved = water_8.copy()
        moved.positions[atom, axis] += sign * h
        energies.append(single_point(moved, template, command).energy)
    numeric = -(energies[0] - energies[1]) / (2 * h)
    assert reference.forces[atom, axis] == pytest.approx(numeric, abs=5e-3)
    assert abs(reference.forces[atom, axis]) > 0.05  # a force worth comparing


@pytest.mark.parametrize("temperature", [300, 350, 400])
def test_shipped_test_set_equals_a_direct_cp2k_run(temperature, tmp_path):
    """The reference MD's labels (a persistent CP2K shell) are those of a plain
    cp2k.psmp run of the same frame."""
    frames = read(REFERENCE / f"water_32_nvt_{temperature}K.xyz", index=":")
    assert len(frames) >= 24
    for atoms in (frames[0], frames[-1]):
        direct, _ = direct_cp2k(atoms, tmp_path, stress=True)
        assert np.abs(atoms.get_forces() - direct.forces).max() < SCF_FORCE_TOLERANCE
        assert atoms.get_potential_energy() == pytest.approx(direct.energy, abs=SCF_ENERGY_TOLERANCE)
        assert np.abs(atoms.get_stress(voigt=False) - direct.stress).max() < SCF_STRESS_TOLERANCE


def test_alanine_dipeptide_test_set_equals_a_direct_cp2k_run(tmp_path):
    """The molecule's held-out frames (metadynamics through ASE's PLUMED
    calculator) carry the reference's own, unbiased labels."""
    for name in ("alanine_dipeptide_metad_300K_1", "alanine_dipeptide_metad_300K_2"):
        frames = read(REFERENCE / f"{name}.xyz", index=":")
        assert len(frames) >= 50 and not frames[0].pbc.any()
        for atoms in (frames[0], frames[-1]):
            direct, _ = direct_cp2k(atoms, tmp_path, template=XTB_VACUUM)
            assert np.abs(atoms.get_forces() - direct.forces).max() < SCF_FORCE_TOLERANCE
            assert atoms.get_potential_energy() == pytest.approx(direct.energy, abs=SCF_ENERGY_TOLERANCE)


def test_single_point_matches_direct_run(direct_run):
    atoms, output = direct_run
    direct = parse_output(output, len(atoms))
    result = single_point(atoms, check_template(XTB), Cp2kCommand())
    assert result.status == "ok"
    assert np.abs(result.forces - direct.forces).max() < 1e-6
    assert result.energy == pytest.approx(direct.energy, abs=1e-6)


def test_scf_failure_is_recorded(tmp_path, water_8):
    text = XTB.read_text().replace("MAX_SCF 50", "MAX_SCF 1").replace("MAX_SCF 10", "MAX_SCF 1")
    result = single_point(water_8, text, Cp2kCommand())
    assert result.status == "failed"
    assert "SCF not converged" in result.reason


def test_cp2k_crash_is_recorded_with_its_message(water_8):
    text = XTB.read_text().replace("EPS_SCF 1.0E-6\n      MAX_SCF 50", "EPS_SCF 1.0E-6\n      NOT_A_KEYWORD 3")
    result = single_point(water_8, text, Cp2kCommand())
    assert result.status == "failed"
    assert result.reason.startswith("CP2K exited with")
    assert "NOT_A_KEYWORD" in result.reason


def test_missing_executable_is_recorded(water_8):
    result = single_point(water_8, check_template(XTB), Cp2kCommand(executable="no-such-cp2k"))
    assert result.status == "failed" and "cannot start CP2K" in result.reason


def test_walltime_is_recorded(water_8):
    result = single_point(water_8, check_template(XTB), Cp2kCommand(walltime_s=0.01))
    assert result.status == "failed" and "walltime" in result.reason


def test_input_carries_cell_coordinates_and_periodicity(water_8):
    text = write_input(check_template(XTB), water_8)
    assert "PERIODIC XYZ" in text and text.count("&COORD") == 1 and "RUN_TYPE ENERGY_FORCE" in text
    molecule = water_8[:3]
    molecule.pbc = False
    molecule.cell = None
    assert "PERIODIC NONE" in write_input(check_template(XTB), molecule)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("&END SCF", ""), "closes &SCF"),
        (lambda t: t + "&GLOBAL\n&END GLOBAL\n", "only &FORCE_EVAL"),
        (lambda t: t.replace("&END DFT", "&SUBSYS\n&COORD\nH 0 0 0\n&END COORD\n&END SUBSYS\n&END DFT"), "coordinates"),
        (lambda t: t.replace("&END FORCE_EVAL", ""), "never closed"),
    ],
)
def test_bad_templates_are_refused_naming_file_and_line(tmp_path, edit, message):
    path = tmp_path / "bad.inp"
    path.write_text(edit(XTB.read_text()))
    with pytest.raises(TemplateError, match=message) as error:
        check_template(path)
    assert str(path) in str(error.value)
