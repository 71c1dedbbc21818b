"""The library as an installed package, and the workflow deployed the way
Snakemake users deploy workflows (snakedeploy, a Snakemake module)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, snakemake_env

from psiflow_pipeline.config import load, validate

BIN = Path(sys.executable).parent


def repository_files() -> list[str]:
    """The files of this checkout that a clone would hold (tracked, or new and not ignored)."""
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, check=True
    )
    return [name for name in listing.stdout.splitlines() if (REPO / name).exists()]


def test_no_file_puts_the_library_on_the_path_by_hand():
    code = [name for name in repository_files() if re.search(r"(\.py|\.smk|Snakefile|\.sh|\.yaml|\.toml)$", name)]
    assert len(code) > 40
    offenders = [
        name
        for name in code
        if name != "tests/test_deploy.py" and re.search(r"sys\.path|PYTHONPATH", (REPO / name).read_text())
    ]
    assert offenders == []
    assert not (REPO / "scripts" / "psiflow_pipeline").exists()


def test_rule_scripts_import_the_installed_library(pipeline_run):
    installed = subprocess.run(
        [sys.executable, "-c", "import psiflow_pipeline; print(psiflow_pipeline.__path__[0])"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    from importlib.metadata import version

    for log in ("logs/bootstrap/iter_0.log", "logs/label/iter_1.log", "logs/train/iter_1_member_0.log"):
        first = (pipeline_run / log).read_text().splitlines()[0]
        assert first.endswith(f"psiflow-pipeline {version('psiflow-pipeline')} from {installed}"), (log, first)


def test_post_deploy_script_installs_the_library_into_a_rule_environment(tmp_path):
    """What `--sdm conda` runs after creating each env: here in a bare venv."""
    scripts = sorted((REPO / "envs").glob("*.post-deploy.sh"))
    assert [p.name.split(".")[0] for p in scripts] == sorted(p.stem for p in (REPO / "envs").glob("*.yaml"))
    assert len({p.read_text() for p in scripts}) == 1  # one script, one copy per env
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "env")], check=True)
    env = dict(snakemake_env(), PATH=f"{tmp_path / 'env/bin'}:/usr/bin:/bin", PSIFLOW_PIPELINE_SOURCE=str(REPO))
    subprocess.run(["bash", str(scripts[0])], env=env, check=True, capture_output=True, cwd=tmp_path)
    found = subprocess.run(
        [str(tmp_path / "env/bin/python"), "-c", "import psiflow_pipeline.paths as p; print(p.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(REPO / "psiflow_pipeline" / "paths.py")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """This repository deployed with snakedeploy into a user's folder, its
    module pointed at a local copy of the repository, as a user does."""
    root = tmp_path_factory.mktemp("deploy")
    source = root / "psiflow"
    for name in repository_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name, follow_symlinks=False)
    user = root / "study"
    subprocess.run(
        [str(BIN / "snakedeploy"), "deploy-workflow", str(source), str(user), "--branch", "main", "--name", "psiflow"],
        check=True,
        capture_output=True,
    )
    snakefile = user / "workflow" / "Snakefile"
    text = snakefile.read_text()
    assert 'configfile: "config/config.yaml"' in text and "use rule * from psiflow" in text
    module = f'snakefile:\n        "{source}/workflow/Snakefile"'
    snakefile.write_text(re.sub(r'snakefile:\s*\n\s*"[^"]+"', module, text))
    return source, user


def test_deployed_module_dry_runs_from_the_users_folder(deployed):
    source, user = deployed
    assert (user / "config" / "config.yaml").read_text() == (REPO / "config" / "config.yaml").read_text()
    process = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--profile", str(REPO / "profiles/local")],
        cwd=user,
        env=snakemake_env(),
        capture_output=True,
        text=True,
    )
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", output[output.index("Job stats") :], flags=re.M))
    default = validate(load(REPO / "config/config.yaml"), "config/config.yaml")
    iterations, members = default["iterations"] + 1, default["model"]["committee"]  # with iteration 0
    assert counts["bootstrap"] == "1" and int(counts["label"]) == iterations, counts
    assert int(counts["train"]) == iterations * members, counts
    assert not (user / "results").exists()


def test_deployed_module_finds_its_shipped_files_and_the_users_own(deployed):
    """Shipped resources come from the workflow's source; a file of that name in the user's folder wins."""
    source, user = deployed

    def snakemake(*args):
        command = [str(BIN / "snakemake"), "--profile", str(REPO / "profiles/local"), *args]
        return subprocess.run(command, cwd=user, env=snakemake_env(), capture_output=True, text=True)

    built = snakemake("--cores", "1", "results/iter_0/selected.h5")  # the bootstrap: no CP2K yet
    assert built.returncode == 0, built.stderr[-3000:]
    detailed = snakemake("--detailed-summary").stdout
    row = next(line for line in detailed.splitlines() if line.startswith("results/iter_0/selected.h5"))
    assert f"{source}/resources/structures/water_32.xyz" in row  # shipped with the workflow
    (user / "resources" / "cp2k").mkdir(parents=True)
    mine = (REPO / "resources/cp2k/xtb.inp").read_text().replace("MAX_SCF 50", "MAX_SCFF 50")
    (user / "resources/cp2k/xtb.inp").write_text(mine)
    refused = snakemake("-n")
    assert refused.returncode != 0
    assert "key 'reference.input': resources/cp2k/xtb.inp:" in refused.stdout + refused.stderr  # the user's own
