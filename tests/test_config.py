"""Bad input is refused before any compute, naming the file and the key."""

import copy
from pathlib import Path

import pytest
import yaml
from conftest import REPO, XTB, snakemake, tiny_config, write_config

from psiflow_pipeline.config import ConfigError, load, validate
from psiflow_pipeline.preflight import check_structures


def test_defaults_are_filled_in():
    config = validate(tiny_config(), "tiny.yaml")
    assert config["walkers"][0]["friction"] == 0.01
    assert config["execution"]["train"]["accelerator"] == "auto"
    assert config["execution"]["label"]["executable"] == "cp2k.psmp"


def test_shipped_default_config_is_valid_and_sets_only_what_differs_from_the_defaults():
    config = load(REPO / "config" / "config.yaml")
    validated = validate(copy.deepcopy(config), "config/config.yaml")
    images = check_structures(
        {**validated["system"], "structures": [str(REPO / s) for s in validated["system"]["structures"]]}, "x"
    )
    assert len(images[0]) == 96 and images[0].cell.volume == pytest.approx(9.86**3)
    defaults = validate({"system": {"structures": ["x"]}, "walkers": [{}]}, "defaults")

    def restated(given, default, key=""):  # keys whose value equals the schema's default
        if isinstance(given, dict):
            return [k for name in given for k in restated(given[name], default.get(name), f"{key}.{name}")]
        if isinstance(given, list) and given and isinstance(given[0], dict):
            return [k for g, d in zip(given, default) for k in restated(g, d, f"{key}.0")]
        return [key] if given == default else []

    assert restated(config, defaults) == []


def test_config_readme_tables_are_generated_from_the_schema():
    from psiflow_pipeline.schema_docs import render

    readme = (REPO / "config" / "README.md").read_text()
    assert render(readme) == readme, "run: python -m psiflow_pipeline.schema_docs config/README.md"
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for section in ("reference", "model", "selection"):  # every key documented, the schedulable ones listed
        for key in schema["properties"][section]["properties"]:
            assert f"`{key}`" in readme, (section, key)


def test_every_schedulable_key_is_a_key_of_its_section():
    from psiflow_pipeline.config import schema

    properties = schema()["properties"]
    sections = {name: properties[name] for name in ("reference", "model", "selection")}
    sections["walkers"] = properties["walkers"]["items"]
    for name, section in sections.items():
        scheduled = set(section["properties"]["schedule"]["items"]["properties"]) - {"from_iteration"}
        assert scheduled and scheduled <= set(section["properties"]), name


def test_relative_paths_are_found_in_the_working_directory_then_among_the_workflows_files(tmp_path, monkeypatch):
    from psiflow_pipeline.config import locate

    shipped = {"resources/cp2k/xtb.inp": "/workflow/resources/cp2k/xtb.inp"}.get
    monkeypatch.chdir(tmp_path)
    assert locate("resources/cp2k/xtb.inp", shipped) == "/workflow/resources/cp2k/xtb.inp"
    (tmp_path / "resources/cp2k").mkdir(parents=True)
    (tmp_path / "resources/cp2k/xtb.inp").write_text("mine")
    assert locate("resources/cp2k/xtb.inp", shipped) == "resources/cp2k/xtb.inp"
    assert locate("/abs/x.xyz", shipped) == "/abs/x.xyz"
    assert locate("nowhere.xyz", shipped) == "nowhere.xyz"  # the checks then name it


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
        (
            lambda c: c["selection"].update(schedule=[{"from_iteration": 2, "trust_lo": 2000.0}]),
            "selection.trust_lo",
            "(from iteration 2 on)",
        ),
        (lambda c: c["model"].update(schedule=[{"from_iteration": 2, "r_max": 5.0}]), "model.schedule.0", "unknown"),
        (lambda c: c["walkers"][0].update(schedule=[{"steps": 5}]), "walkers.0.schedule.0", "'from_iteration'"),
        (lambda c: c["walkers"][0].update(plumed="bias.dat", batch=4), "walkers.0.batch", "PLUMED-biased walkers"),
        (
            lambda c: c["walkers"][0].update(ensemble="npt", schedule=[{"from_iteration": 2, "batch": 4}]),
            "walkers.0.batch",
            "only nve and nvt with the langevin thermostat are batched",
        ),
        (
            lambda c: (c["walkers"][0].update(ensemble="npt"), c["reference"].update(stress=False)),
            "walkers.0.ensemble",
            "never learns without stress labels: set reference.stress to auto or true",
        ),
        (
            lambda c: (
                c["walkers"][0].update(ensemble="opt", optimize_cell=True),
                c["model"].update(schedule=[{"from_iteration": 2, "stress_weight": 0}]),
            ),
            "walkers.0.ensemble",
            "with model.stress_weight 0 (from iteration 2 on)",
        ),
        (
            lambda c: (
                c["execution"]["train"].update(compile_from_iteration=1),
                c["model"].update(batch_size=4, schedule=[{"from_iteration": 3, "batch_size": 1}]),
            ),
            "model.batch_size",
            "1 (from iteration 3 on), but execution.train.compile_from_iteration (1) trains through torch.compile",
        ),
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
    with pytest.raises(ConfigError, match=r"overlap.xyz has atoms 0 and 1 0.100 Å apart \(overlapping\)"):
        check_structures({"structures": [str(path)], "periodic": False}, "my.yaml")
    # periodic: the two atoms overlap only through the cell's boundary
    path.write_text('2\nLattice="5 0 0 0 5 0 0 0 5"\nH 0.05 0 0\nH 4.9 0 0\n')
    assert not check_structures({"structures": [str(path)], "periodic": False}, "my.yaml")[0].pbc.any()
    with pytest.raises(ConfigError, match=r"atoms 0 and 1 0.150 Å apart \(overlapping\)"):
        check_structures({"structures": [str(path)], "periodic": True}, "my.yaml")


def written(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


H2S = "3\n\nS 0 0 0\nH 1.34 0 0\nH -0.03 1.34 0\n"
NAN_STRUCTURE = '3\nLattice="8 0 0 0 8 0 0 0 8" pbc="T T T"\nO 0 0 0\nH 0.96 nan 0\nH -0.24 0.93 0\n'
NAN_FORCES = (
    '3\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc="T T T"\n'
    "O 0 0 0 0 0 0\nH 0.96 0 0 0 0 0\nH -0.24 0.93 0 0 inf 0\n"
)
PLUMED_TYPO = "UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2\nrestraint: RESTRAINTT ARG=d AT=1.0 KAPPA=10\n"
UNBALANCED = "&FORCE_EVAL\n  METHOD Quickstep\n  &DFT\n  &END XC\n&END FORCE_EVAL\n"
TEST_SET_WITH_CARBON = '1\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc="F F F"\nC 0 0 0 0 0 0\n'

# Every kind of bad input, through the real entry point: (edit, what the message must say).
BAD_INPUTS = {
    "mistyped value": (lambda c, tmp: c["model"].update(r_max="big"), "key 'model.r_max'"),
    "unknown key": (lambda c, tmp: c["selection"].update(trust_low=0.1), "key 'selection': unknown key"),
    "negative temperature": (
        lambda c, tmp: c["walkers"][0].update(temperature=-300),
        "key 'walkers.0.temperature': -300 is less than or equal to the minimum of 0",
    ),
    "thresholds in the wrong order": (
        lambda c, tmp: c["selection"].update(trust_lo=2.0, trust_hi=1.0),
        "key 'selection.trust_lo' (2.0) must be below",
    ),
    "missing structure file": (
        lambda c, tmp: c["system"].update(structures=[str(tmp / "gone.xyz")]),
        "key 'system.structures.0': structure file",
    ),
    "unreadable structure file": (
        lambda c, tmp: c["system"].update(structures=[written(tmp, "junk.xyz", "not\nan xyz file\n")]),
        "key 'system.structures.0': cannot read",
    ),
    "empty structure": (
        lambda c, tmp: c["system"].update(structures=[written(tmp, "empty.xyz", "0\n\n")]),
        "holds no atoms",
    ),
    "overlapping atoms": (
        lambda c, tmp: c["system"].update(
            structures=[written(tmp, "overlap.xyz", "2\n\nH 0 0 0\nH 0.1 0 0\n")], periodic=False
        ),
        "overlapping",
    ),
    "periodic walker without a cell": (
        lambda c, tmp: c["system"].update(structures=[written(tmp, "molecule.xyz", H2S)], periodic=True),
        "has no cell, but system.periodic is true",
    ),
    "element without a &KIND in the template": (
        lambda c, tmp: (
            c["system"].update(structures=[written(tmp, "h2s.xyz", H2S)], periodic=False),
            c["walkers"][0].update(ensemble="nvt"),
            c["reference"].update(input=str(REPO / "resources/cp2k/pbe_d3.inp")),
        ),
        "has no &KIND for S of system.structures",
    ),
    "test set element the model never sees": (
        lambda c, tmp: c["evaluation"].update(test_set=written(tmp, "test.xyz", TEST_SET_WITH_CARBON)),
        "key 'evaluation.test_set': holds C",
    ),
    "non-finite number in a structure": (
        lambda c, tmp: c["system"].update(structures=[written(tmp, "nan.xyz", NAN_STRUCTURE)]),
        "nan.xyz (frame 0), atom 1: position is not a finite number",
    ),
    "non-finite force in labeled data": (
        lambda c, tmp: c["evaluation"].update(test_set=written(tmp, "inf.xyz", 2 * NAN_FORCES)),
        "key 'evaluation.test_set.0': frame 0 of",
    ),
    "a run of the validation's reference MD without a cell": (
        lambda c, tmp: c["validation"].update(
            reference=[str(REPO / "resources/structures/water_8.xyz"), written(tmp, "molecule.xyz", H2S)]
        ),
        "key 'validation.reference.1': ",
    ),
    "a directory where a structure file belongs": (
        lambda c, tmp: c["system"].update(structures=[str(tmp)]),
        "is a directory, not a structure file",
    ),
    "a directory where the template belongs": (
        lambda c, tmp: c["reference"].update(input=str(tmp)),
        "is a directory, not a CP2K input template",
    ),
    "CP2K template with a keyword CP2K does not know": (
        lambda c, tmp: c["reference"].update(
            input=written(tmp, "typo.inp", XTB.read_text().replace("MAX_SCF 50", "MAX_SCFF 50"))
        ),
        "CP2K refuses the input: found an unknown keyword MAX_SCFF in section SCF",
    ),
    "CP2K template with a value CP2K cannot read": (
        lambda c, tmp: c["reference"].update(
            input=written(tmp, "value.inp", XTB.read_text().replace("EPS_SCF 1.0E-6", "EPS_SCF small"))
        ),
        "value.inp:",
    ),
    "NPT walkers whose committee never sees a stress": (
        lambda c, tmp: (c["walkers"][0].update(ensemble="npt"), c["reference"].update(stress=False)),
        "key 'walkers.0.ensemble': npt walkers change the cell by the committee's stress",
    ),
    "missing CP2K template": (
        lambda c, tmp: c["reference"].update(input=str(tmp / "gone.inp")),
        "gone.inp: CP2K input template not found",
    ),
    "CP2K template that does not parse": (
        lambda c, tmp: c["reference"].update(input=written(tmp, "bad.inp", UNBALANCED)),
        "bad.inp:4: '&END XC' closes &DFT",
    ),
    "PLUMED input the kernel rejects": (
        lambda c, tmp: c["walkers"][0].update(plumed=written(tmp, "typo.dat", PLUMED_TYPO)),
        "key 'walkers.0.plumed'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_snakemake_refuses_bad_input_before_any_job(tmp_path, case):
    edit, words = BAD_INPUTS[case]
    config = tiny_config(evaluation={})
    edit(config, tmp_path)
    write_config(tmp_path, config)
    process = snakemake(tmp_path, "--cores", "1", check=False)
    assert process.returncode != 0
    output = process.stdout + process.stderr
    assert "bad input, nothing was run" in output and words in output, output[-2000:]
    assert f"{tmp_path / 'config.yaml'}: key '" in output  # the config file and the key
    assert not (tmp_path / "results").exists() and not list(tmp_path.glob("logs/*"))


def test_a_given_config_stands_alone_over_the_defaults(tmp_path):
    """The default job's system-bound settings (a water test set, a validation
    reference) do not leak into a study of another system given with --configfile."""
    default = validate(load(REPO / "config/config.yaml"), "config/config.yaml")
    assert default["evaluation"]["test_set"] and default["validation"]["reference"]
    write_config(tmp_path, {"system": {"structures": [str(REPO / "resources/structures/si_64.xyz")]}})
    process = snakemake(tmp_path, "-n", "--cores", "1", check=False)
    assert process.returncode == 0, process.stderr[-2000:]
    assert "test_set" not in process.stdout + process.stderr
