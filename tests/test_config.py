"""Bad input is refused before any compute, naming the file and the key."""

import copy

import pytest
from conftest import REPO, snakemake, tiny_config, write_config
from psiflow.config import ConfigError, check_structures, validate


def test_defaults_are_filled_in():
    config = validate(tiny_config(), "tiny.yaml")
    assert config["walkers"][0]["friction"] == 0.01
    assert config["execution"]["train"]["accelerator"] == "auto"
    assert config["reference"]["executable"] == "cp2k.psmp"


def test_shipped_default_config_is_valid():
    from psiflow.config import load

    config = validate(load(REPO / "config" / "config.yaml"), "config/config.yaml")
    images = check_structures(
        {**config["system"], "structures": [str(REPO / s) for s in config["system"]["structures"]]}, "x"
    )
    assert len(images[0]) == 96 and images[0].cell.volume == pytest.approx(9.86**3)


@pytest.mark.parametrize(
    "edit, key, words",
    [
        (lambda c: c.update(iterations="three"), "iterations", "not of type 'integer'"),
        (lambda c: c["model"].update(r_max="big"), "model.r_max", "not of type 'number'"),
        (lambda c: c["model"].update(rmax=4.0), "model", "unknown key"),
        (lambda c: c.update(colour="blue"), "(top level)", "unknown key"),
        (lambda c: c["walkers"][0].update(temperature=-10), "walkers.0.temperature", ""),
        (lambda c: c["selection"].update(trust_lo=0.5, trust_hi=0.1), "selection.trust_lo", "below"),
        (lambda c: c["walkers"][0].update(structure=3), "walkers.0.structure", "has 1 entries"),
    ],
)
def test_bad_config_names_file_and_key(edit, key, words):
    config = copy.deepcopy(tiny_config())
    edit(config)
    with pytest.raises(ConfigError) as error:
        validate(config, "my.yaml")
    message = str(error.value)
    assert message.startswith(f"my.yaml: key '{key}'")
    assert words in message


def test_missing_structure_file(tmp_path):
    with pytest.raises(ConfigError, match=r"system.structures.0.*does not exist"):
        check_structures({"structures": [str(tmp_path / "nope.xyz")], "periodic": True}, "my.yaml")


def test_periodic_structure_without_cell(tmp_path):
    path = tmp_path / "molecule.xyz"
    path.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    with pytest.raises(ConfigError, match=rf"my.yaml: key 'system.structures.0': {path} has no cell"):
        check_structures({"structures": [str(path)], "periodic": True}, "my.yaml")
    assert not check_structures({"structures": [str(path)], "periodic": False}, "my.yaml")[0].pbc.any()


def test_overlapping_atoms(tmp_path):
    path = tmp_path / "overlap.xyz"
    path.write_text("2\n\nH 0 0 0\nH 0.1 0 0\n")
    with pytest.raises(ConfigError, match="overlapping"):
        check_structures({"structures": [str(path)], "periodic": False}, "my.yaml")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda c, tmp: c["model"].update(r_max="big"), "key 'model.r_max'"),
        (lambda c, tmp: c["system"].update(structures=[str(tmp / "gone.xyz")]), "does not exist"),
        (lambda c, tmp: c["reference"].update(input=str(tmp / "gone.inp")), "reference.input"),
    ],
)
def test_snakemake_stops_before_any_job(tmp_path, edit, words):
    config = tiny_config()
    edit(config, tmp_path)
    write_config(tmp_path, config)
    process = snakemake(tmp_path, "--cores", "1", check=False)
    assert process.returncode != 0
    output = process.stdout + process.stderr
    assert "bad input, nothing was run" in output and words in output
    assert str(tmp_path / "config.yaml") in output or "reference.input" in words
    assert not (tmp_path / "results").exists()
