"""Static checks of the workflow: linters, rule directives and conda env files."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

BIN = Path(sys.executable).parent


def run(*command):
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True)


def test_snakemake_lint_is_clean():
    process = run(str(BIN / "snakemake"), "--lint", "-s", "workflow/Snakefile")
    assert process.returncode == 0 and "Congratulations" in process.stdout + process.stderr, process.stdout


def test_snakefmt_is_clean():
    process = run(str(BIN / "snakefmt"), "--check", "workflow")
    assert process.returncode == 0, process.stderr


def test_ruff_is_clean():
    assert run(str(BIN / "ruff"), "check", ".").returncode == 0
    assert run(str(BIN / "ruff"), "format", "--check", ".").returncode == 0


def rules():
    """(file, rule name, body) of every rule but `all`."""
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for match in re.finditer(r"^ *rule (\w+):\n((?: {4,}.*\n|\n)+)", path.read_text(), flags=re.M):
            yield path, match.group(1), match.group(2)


@pytest.mark.parametrize("path, name, body", list(rules()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_rule_has_log_benchmark_conda_message(path, name, body):
    for directive in ("log:", "benchmark:", "conda:", "message:", "script:"):
        assert f"    {directive}" in body, f"rule {name} in {path.name} lacks {directive}"
    env = re.search(r'conda:\n\s+"([^"]+)"', body).group(1)
    assert (path.parent / env).resolve().is_file()


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_files_are_pinned_valid_match_specs(env):
    from rattler import MatchSpec

    spec = yaml.safe_load(env.read_text())
    assert "conda-forge" in spec["channels"]
    for dependency in spec["dependencies"]:
        if isinstance(dependency, dict):
            for requirement in dependency["pip"]:
                assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", requirement), requirement
        else:
            parsed = MatchSpec(dependency)
            assert parsed.version is not None, f"{env.name}: {dependency} is not pinned"
