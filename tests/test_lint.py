"""Static checks of the workflow: linters, rule directives and conda env files."""

import ast
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
    """(file, rule name, body) of every rule and checkpoint but `all`."""
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for match in re.finditer(r"^ *(?:rule|checkpoint) (\w+):\n((?: {4,}.*\n|\n)+)", path.read_text(), flags=re.M):
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


# Which package provides a module a rule script imports, by conda or pip name.
PROVIDERS = {
    "ase": "ase",
    "h5py": "h5py",
    "jsonschema": "jsonschema",
    "lightning": "lightning",
    "matplotlib": "matplotlib",
    "matscipy": "matscipy",
    "nequip": "nequip",
    "numpy": "numpy",
    "pandas": "pandas",
    "parsl": "parsl",
    "plumed": "py-plumed",
    "scipy": "scipy",
    "torch": "torch",
    "torch_sim": "torch-sim-atomistic",
    "yaml": "pyyaml",
}
# What a rule script runs besides Python: the CP2K executable, the PLUMED
# kernel, the C++ compiler of AOTInductor.
RUNS = {
    "label.py": ["cp2k"],
    "isolated_atoms.py": ["cp2k"],
    "sample.py": ["plumed", "py-plumed"],  # the kernel, and the interface ASE's Plumed calculator imports
    "compile.py": ["cxx-compiler"],
}


def imported_modules(script: Path, seen=None) -> set[str]:
    """Top-level modules imported by `script` and, transitively, by the psiflow
    modules it imports (imports inside functions included)."""
    import ast

    seen = set() if seen is None else seen
    modules = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "psiflow_pipeline":
                modules.add(name.split(".")[0])
                continue
            base = REPO / name.replace(".", "/")
            for path in (base.with_suffix(".py"), base / "__init__.py"):
                if path.is_file() and path not in seen:
                    seen.add(path)
                    modules |= imported_modules(path, seen)
    return modules


def env_packages(env: Path) -> set[str]:
    spec = yaml.safe_load(env.read_text())
    names = set()
    for dependency in spec["dependencies"]:
        if isinstance(dependency, dict):
            names |= {re.split(r"[=<>!]", r)[0] for r in dependency["pip"]}
        else:
            names.add(re.split(r"[ =<>!]", dependency)[0])
    return {name.lower().replace("_", "-") for name in names}


def rule_scripts():
    for path, name, body in rules():
        env = re.search(r'conda:\n\s+"([^"]+)"', body).group(1)
        script = re.search(r'script:\n\s+"([^"]+)"', body).group(1)
        yield name, (path.parent / script).resolve(), (path.parent / env).resolve()


@pytest.mark.parametrize("name, script, env", list(rule_scripts()), ids=lambda x: x if isinstance(x, str) else "")
def test_env_provides_everything_the_rule_script_imports_and_runs(name, script, env):
    packages = env_packages(env)
    needed = {}
    for module in imported_modules(script) - set(sys.stdlib_module_names) - {"snakemake"}:
        assert module in PROVIDERS, f"{script.name} imports {module}: add its package to PROVIDERS"
        needed[PROVIDERS[module]] = f"import {module}"
    for package in RUNS.get(script.name, []):
        needed[package] = "runs it"
    missing = {package: why for package, why in needed.items() if package not in packages}
    assert not missing, f"rule {name}: {env.name} lacks {missing}"


@pytest.mark.parametrize("name, script, env", list(rule_scripts()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_rule_script_ends_with_end_process(name, script, env):
    last = ast.parse(script.read_text()).body[-1]
    assert ast.unparse(last) == "end_process()", f"rule {name}: {script.name} must end with end_process()"


def test_import_analysis_follows_the_library():
    # sample.py reaches torch, nequip and parsl only through the library
    modules = imported_modules(REPO / "scripts" / "sample.py")
    assert {"torch", "nequip", "parsl", "ase"} <= modules
    assert "plumed" not in imported_modules(REPO / "scripts" / "label.py")  # the kernel check is pre-flight only
