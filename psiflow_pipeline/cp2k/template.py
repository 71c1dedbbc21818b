"""CP2K input templates: the checks a template must pass, and the full input
of one single point written from it.

A template holds one `&FORCE_EVAL` (the method); psiflow adds the cell,
coordinates and force printing, and a `&GLOBAL` section.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms


class TemplateError(ValueError):
    """A CP2K template that psiflow cannot use."""


def check_template(path) -> str:
    """Return the template text, or raise naming the file and line of the problem."""
    path = Path(path)
    if path.is_dir():
        raise TemplateError(f"{path}: is a directory, not a CP2K input template")
    if not path.is_file():
        raise TemplateError(f"{path}: CP2K input template not found")
    text = path.read_text()
    depth, force_evals, has_method = [], 0, False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("!")[0].split("#")[0].strip()
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("&END"):
            if not depth:
                raise TemplateError(f"{path}:{number}: '{line}' closes a section that was never opened")
            opened = depth.pop()
            closing = upper[4:].strip().split()
            if closing and closing[0] != opened:
                raise TemplateError(f"{path}:{number}: '{line}' closes &{opened}")
        elif upper.startswith("&"):
            name = upper[1:].split()[0]
            if name in ("COORD", "TOPOLOGY") or (name == "CELL" and depth == ["FORCE_EVAL", "SUBSYS"]):
                raise TemplateError(
                    f"{path}:{number}: the template sets &{name}; psiflow fills in coordinates and cell itself"
                )
            if name == "GLOBAL" or name == "MOTION":
                raise TemplateError(f"{path}:{number}: the template must hold only &FORCE_EVAL, not &{name}")
            if name == "FORCE_EVAL":
                force_evals += 1
            depth.append(name)
        elif depth == ["FORCE_EVAL"] and upper.split()[0] == "METHOD":
            has_method = True
    if depth:
        raise TemplateError(f"{path}: section &{depth[-1]} is never closed")
    if force_evals != 1:
        raise TemplateError(f"{path}: expected exactly one &FORCE_EVAL section, found {force_evals}")
    if not has_method and "&DFT" not in text.upper():
        raise TemplateError(f"{path}: &FORCE_EVAL has neither METHOD nor &DFT")
    return text


# A molecule's box: this much vacuum on each side, each edge rounded up to a
# multiple of BOX_STEP, so that nearby geometries share one box and a
# persistent CP2K shell keeps its cell (and grid) from frame to frame.
BOX_PADDING = 5.0
BOX_STEP = 2.0


def cp2k_geometry(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """The cell and positions CP2K gets for `atoms` (Å).

    A periodic system as it is. A molecule (no periodic direction, no cell)
    sits at the centre of a box `BOX_PADDING` wider than itself on every side:
    a translation changes no energy or force, and both CP2K modes write the
    same box for the same geometry.
    """
    if atoms.pbc.any() or atoms.cell.rank == 3:
        return atoms.cell.array, atoms.positions
    low, high = atoms.positions.min(axis=0), atoms.positions.max(axis=0)
    edges = np.ceil((high - low + 2 * BOX_PADDING) / BOX_STEP) * BOX_STEP
    return np.diag(edges), atoms.positions - (low + high) / 2 + edges / 2


def _subsys(atoms: Atoms) -> str:
    cell, positions = cp2k_geometry(atoms)
    periodic = "".join(axis for axis, p in zip("XYZ", atoms.pbc) if p) or "NONE"
    lines = ["  &SUBSYS", "    &CELL"]
    lines += [f"      {name} {' '.join(f'{x:.16f}' for x in vec)}" for name, vec in zip("ABC", cell)]
    lines += [f"      PERIODIC {periodic}", "    &END CELL", "    &COORD"]
    lines += [f"      {s} {x:.16f} {y:.16f} {z:.16f}" for s, (x, y, z) in zip(atoms.get_chemical_symbols(), positions)]
    lines += ["    &END COORD", "  &END SUBSYS"]
    return "\n".join(lines)


FORCE_PRINT = "    &FORCES ON\n      NDIGITS 14\n    &END FORCES\n"
STRESS_PRINT = "    &STRESS_TENSOR ON\n    &END STRESS_TENSOR\n"
# semi-empirical methods treat a non-periodic cell themselves; DFT needs a Poisson solver
POISSON_NONE = "    &POISSON\n      PERIODIC NONE\n      PSOLVER MT\n    &END POISSON"


def opening(text: str, section: str) -> re.Match | None:
    """The line that opens `&section` in a CP2K input (the first one), or None."""
    return re.search(rf"^\s*&{section}\b.*$", text, flags=re.IGNORECASE | re.MULTILINE)


def semi_empirical(template: str) -> bool:
    """Whether the template's Quickstep method is xTB or DFTB (not DFT)."""
    return bool(re.search(r"METHOD\s+(XTB|DFTB)", template.upper()))


def wants_stress(atoms: Atoms, stress: bool) -> bool:
    return stress and bool(atoms.pbc.all())


def write_input(template: str, atoms: Atoms, project: str = "psiflow", stress: bool = False) -> str:
    """The full CP2K input for one energy+forces (+stress) single point of `atoms`.

    The stress tensor is asked for only when `stress` is set and the cell is
    periodic in all directions.
    """
    upper = template.upper()
    if not atoms.pbc.any() and "&POISSON" not in upper and not semi_empirical(template):
        dft = opening(template, "DFT")
        if dft:
            template = template[: dft.end()] + "\n" + POISSON_NONE + template[dft.end() :]
    end = template.upper().rfind("&END FORCE_EVAL")
    subsys = _subsys(atoms)
    match = opening(template, "SUBSYS")
    if match:  # keep the template's &KIND sections; add cell and coordinates inside its &SUBSYS
        inner = subsys.split("\n")[1:-1]
        body = template[: match.end()] + "\n" + "\n".join(inner) + template[match.end() : end]
    else:
        body = template[:end] + subsys + "\n"
    global_section = f"&GLOBAL\n  PROJECT {project}\n  PRINT_LEVEL LOW\n  RUN_TYPE ENERGY_FORCE\n&END GLOBAL\n"
    printing = FORCE_PRINT
    if wants_stress(atoms, stress):
        force_eval = opening(body, "FORCE_EVAL")
        body = body[: force_eval.end()] + "\n  STRESS_TENSOR ANALYTICAL" + body[force_eval.end() :]
        printing += STRESS_PRINT
    return global_section + body + "  &PRINT\n" + printing + "  &END PRINT\n" + template[end:]


# CP2K's default guess for the next geometry (ASPC extrapolation) assumes
# consecutive, equally spaced steps of one MD trajectory. A label job's frames
# are not: they come from several walkers, tens to thousands of steps apart,
# and on the default job's frames ASPC cost up to 6x the SCF steps of the
# atomic guess. Unless the template chooses an EXTRAPOLATION itself: DFT starts
# from the previous frame's wavefunction (PBE-D3, nearby frames: 12-13 OT steps
# against 36-51 from the atomic guess); xTB and DFTB, which converge from the
# atomic guess in about 10 steps, start every frame from it (on the default
# job's frames 1.5x the throughput of the previous wavefunction, which a far
# frame makes a poor guess). docs/benchmarks.md, "Labeling throughput".
LABEL_GUESS = {"dft": "EXTRAPOLATION USE_PREV_WF", "semi-empirical": "EXTRAPOLATION USE_GUESS"}


def label_guess_input(text: str) -> str:
    """`text` with the LABEL_GUESS of its method in its &QS section, unless it sets an extrapolation."""
    if re.search(r"^\s*EXTRAPOLATION\b", text, flags=re.I | re.M):
        return text
    guess = LABEL_GUESS["semi-empirical" if semi_empirical(text) else "dft"]
    qs = opening(text, "QS")
    if qs:
        return f"{text[: qs.end()]}\n      {guess}{text[qs.end() :]}"
    dft = opening(text, "DFT")
    if dft:
        return f"{text[: dft.end()]}\n    &QS\n      {guess}\n    &END QS{text[dft.end() :]}"
    return text  # no Quickstep: no wavefunction to guess


def template_elements(template: str) -> set[str]:
    """The elements of a template's &KIND sections (ELEMENT, else the label's letters)."""
    elements = set()
    for label, body in re.findall(r"^\s*&KIND\s+(\S+)(.*?)^\s*&END", template, flags=re.M | re.S | re.I):
        element = re.search(r"^\s*ELEMENT\s+(\w+)", body, flags=re.M | re.I)
        name = element.group(1) if element else re.match(r"[A-Za-z]+", label).group(0)
        elements.add(name.capitalize())
    return elements


def check_with_cp2k(path, template: str, atoms: Atoms, command, stress: bool = False) -> None:
    """Let CP2K parse the input it would get (`cp2k --check`), and raise naming
    the template's line when it refuses a section, keyword or value."""
    from psiflow_pipeline.cp2k.output import abort_message

    text = write_input(template, atoms, stress=stress)
    with tempfile.TemporaryDirectory(prefix="cp2k_check_") as scratch:
        Path(scratch, "check.inp").write_text(text)
        process = subprocess.run(
            [command.executable, "--check", "-i", "check.inp"],
            cwd=scratch,
            env=command.environment(),
            capture_output=True,
            text=True,
        )
    if process.returncode == 0:
        return
    message = abort_message(process.stdout + process.stderr) or (process.stdout + process.stderr).strip()[-300:]
    raise TemplateError(f"{path}{_template_line(template, text, message)}: CP2K refuses the input: {message}")


def _template_line(template: str, written: str, message: str) -> str:
    """':N' for the template line CP2K's message points at, or ''."""
    lines = template.splitlines()

    def first(predicate) -> str:
        number = next((n for n, line in enumerate(lines, start=1) if predicate(line.split("!")[0].strip())), None)
        return f":{number}" if number else ""

    named = re.search(r"unknown keyword (\S+)|unknown subsection (\S+)", message)
    if named and named.group(1):
        return first(lambda line: line.split()[:1] == [named.group(1)])
    if named:
        return first(lambda line: line.upper().split()[:1] == [f"&{named.group(2).upper()}"])
    at = re.search(r"Line:\s*(\d+)", message)
    if at:  # a line of the written input: find the same text in the template
        target = written.splitlines()[int(at.group(1)) - 1].strip()
        return first(lambda line: line == target) if target else ""
    return ""
