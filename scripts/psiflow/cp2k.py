"""CP2K as the reference level of theory: input from a template, run, parse.

A template holds one `&FORCE_EVAL` (the method); psiflow adds the cell,
coordinates and force printing, and a `&GLOBAL` section.
"""

from __future__ import annotations

import atexit
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, GPa, Hartree

ENERGY_PATTERN = re.compile(r"ENERGY\| Total FORCE_EVAL \( \w+ \) energy \[(?:a\.u\.|hartree)\]:\s+(\S+)")
FORCE_HEADER = "ATOMIC FORCES in [a.u.]"


class TemplateError(ValueError):
    """A CP2K template that psiflow cannot use."""


def check_template(path) -> str:
    """Return the template text, or raise naming the file and line of the problem."""
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"{path}: CP2K input template not found (config key reference.input)")
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


def _subsys(atoms: Atoms) -> str:
    cell, positions = atoms.cell.array, atoms.positions
    periodic = "".join(axis for axis, p in zip("XYZ", atoms.pbc) if p) or "NONE"
    if not atoms.pbc.any() and atoms.cell.rank < 3:
        # CP2K needs a box even for a molecule: 10 Å wider than the molecule, with
        # the molecule at its centre (a translation changes no energy or force)
        low, high = positions.min(axis=0), positions.max(axis=0)
        cell = np.diag(high - low + 10.0)
        positions = positions - (low + high) / 2 + cell.diagonal() / 2
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


def wants_stress(atoms: Atoms, stress: bool) -> bool:
    return stress and bool(atoms.pbc.all())


def write_input(template: str, atoms: Atoms, project: str = "psiflow", stress: bool = False) -> str:
    """The full CP2K input for one energy+forces (+stress) single point of `atoms`.

    The stress tensor is asked for only when `stress` is set and the cell is
    periodic in all directions.
    """
    upper = template.upper()
    if not atoms.pbc.any() and "&POISSON" not in upper and not re.search(r"METHOD\s+(XTB|DFTB)", upper):
        dft = re.search(r"^\s*&DFT\b.*$", template, flags=re.IGNORECASE | re.MULTILINE)
        if dft:
            template = template[: dft.end()] + "\n" + POISSON_NONE + template[dft.end() :]
    end = template.upper().rfind("&END FORCE_EVAL")
    subsys = _subsys(atoms)
    match = re.search(r"^\s*&SUBSYS\b.*$", template, flags=re.IGNORECASE | re.MULTILINE)
    if match:  # keep the template's &KIND sections; add cell and coordinates inside its &SUBSYS
        inner = subsys.split("\n")[1:-1]
        body = template[: match.end()] + "\n" + "\n".join(inner) + template[match.end() : end]
    else:
        body = template[:end] + subsys + "\n"
    global_section = f"&GLOBAL\n  PROJECT {project}\n  PRINT_LEVEL LOW\n  RUN_TYPE ENERGY_FORCE\n&END GLOBAL\n"
    printing = FORCE_PRINT
    if wants_stress(atoms, stress):
        opening = re.search(r"^\s*&FORCE_EVAL\b.*$", body, flags=re.IGNORECASE | re.MULTILINE)
        body = body[: opening.end()] + "\n  STRESS_TENSOR ANALYTICAL" + body[opening.end() :]
        printing += STRESS_PRINT
    return global_section + body + "  &PRINT\n" + printing + "  &END PRINT\n" + template[end:]


@dataclass
class SinglePoint:
    """The result of one CP2K single point; energy in eV, forces in eV/Å."""

    status: str  # "ok" or "failed"
    reason: str = ""
    energy: float = float("nan")
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None  # 3x3, eV/Å^3, ASE's sign convention
    seconds: float = 0.0


STRESS_HEADER = "STRESS| Analytical stress tensor [GPa]"


def parse_stress(text: str) -> np.ndarray | None:
    """CP2K's last analytical stress tensor in eV/Å^3; CP2K's sign is ASE's opposite."""
    start = text.rfind(STRESS_HEADER)
    if start < 0:
        return None
    rows = text[start:].splitlines()[2:5]
    values = np.array([[float(x) for x in row.split()[2:5]] for row in rows])
    return -values * GPa


def parse_output(text: str, n_atoms: int) -> SinglePoint:
    if "SCF run NOT converged" in text:
        return SinglePoint("failed", "SCF not converged")
    energies = ENERGY_PATTERN.findall(text)
    if not energies:
        return SinglePoint("failed", "no energy in CP2K output")
    start = text.rfind(FORCE_HEADER)
    if start < 0:
        return SinglePoint("failed", "no forces in CP2K output")
    forces = []
    for line in text[start:].splitlines()[3 : 3 + n_atoms]:
        fields = line.split()
        forces.append([float(x) for x in fields[3:6]])
    forces = np.array(forces)
    if forces.shape != (n_atoms, 3):
        return SinglePoint("failed", f"forces block has {len(forces)} rows, expected {n_atoms}")
    return SinglePoint(
        "ok", energy=float(energies[-1]) * Hartree, forces=forces * Hartree / Bohr, stress=parse_stress(text)
    )


@dataclass
class Cp2kCommand:
    """How to start CP2K: executable, MPI ranks and OpenMP threads per single point."""

    executable: str = "cp2k.psmp"
    mpi_ranks: int = 1
    omp_threads: int = 1
    launcher: str = "mpirun -np {ranks}"
    walltime_s: float = 3600.0

    def argv(self, *arguments: str) -> list[str]:
        argv = [self.executable, *arguments]
        if self.mpi_ranks > 1:
            argv = shlex.split(self.launcher.format(ranks=self.mpi_ranks)) + argv
        return argv

    def settings(self) -> dict:
        """Environment variables that CP2K needs on top of the caller's."""
        settings = {"OMP_NUM_THREADS": str(self.omp_threads)}
        # mpirun refuses root unless told; containers and CI often run as root
        for name in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"):
            settings[name] = os.environ.get(name, "1")
        return settings

    def hidden(self) -> list[str]:
        """Variables CP2K must not see: inside a SLURM job step, an MPI built
        without SLURM's PMI takes a single-rank CP2K for an srun-launched rank
        and aborts in MPI_Init. A single rank needs no launcher, so it gets
        no SLURM or PMI variables; with a launcher they stay (srun needs them)."""
        if self.mpi_ranks > 1:
            return []
        return sorted(name for name in os.environ if name.startswith(("SLURM_", "PMI")))

    def environment(self) -> dict:
        hidden = set(self.hidden())
        return {k: v for k, v in os.environ.items() if k not in hidden} | self.settings()

    def env_command(self) -> list[str]:
        """`env` arguments that give a shell command the same environment."""
        argv = ["env"]
        for name in self.hidden():
            argv += ["-u", name]
        return argv + [f"{k}={v}" for k, v in self.settings().items()]


def single_point(
    atoms: Atoms, template: str, command: Cp2kCommand, stress: bool = False, workdir: str | None = None
) -> SinglePoint:
    """Run CP2K on `atoms` in a scratch folder; failures come back as data."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cp2k_", dir=workdir) as scratch:
        Path(scratch, "cp2k.inp").write_text(write_input(template, atoms, stress=stress))
        try:
            process = subprocess.run(
                command.argv("-i", "cp2k.inp", "-o", "cp2k.out"),
                cwd=scratch,
                env=command.environment(),
                capture_output=True,
                text=True,
                timeout=command.walltime_s,
            )
        except subprocess.TimeoutExpired:
            return SinglePoint("failed", f"walltime of {command.walltime_s:g} s exceeded", seconds=command.walltime_s)
        except OSError as error:
            return SinglePoint("failed", f"cannot start CP2K: {error}")
        output_path = Path(scratch, "cp2k.out")
        output = output_path.read_text(errors="replace") if output_path.exists() else ""
        result = parse_output(output, len(atoms))
        if process.returncode != 0 and result.reason != "SCF not converged":
            detail = _abort_message(output) or (process.stderr.strip().splitlines() or ["no output"])[-1]
            result = SinglePoint("failed", f"CP2K exited with {process.returncode}: {detail}"[:300])
    result.seconds = time.perf_counter() - start
    return result


def _abort_message(output: str) -> str:
    """The message inside CP2K's ABORT banner (without its ASCII art), if any."""
    lines = output.splitlines()
    for k, line in enumerate(lines):
        if "[ABORT]" in line:
            words = []
            for part in lines[k + 1 : k + 8]:
                if set(part.strip()) <= {"*"}:
                    break
                words.append(re.sub(r"^[\\/_|O ]+", "", part.strip(" *")))
            return " ".join(w for w in words if w).strip()
    return ""


class ShellSession:
    """A `cp2k.psmp -s` (cp2k_shell) process holding one force environment.

    Successive geometries with the same atoms reuse the previous wavefunction
    as SCF guess. ASE's `Cp2kShell` speaks the protocol; we drive it ourselves
    (not ASE's CP2K calculator) so that energy and forces come in atomic units
    and convert exactly as in fresh-process mode, and so that the output can be
    checked for SCF convergence, which the shell protocol does not report.
    """

    def __init__(self, template: str, command: Cp2kCommand, atoms: Atoms, directory, stress: bool = False):
        from ase.calculators.cp2k import Cp2kShell

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.output = self.directory / "cp2k.out"
        self.numbers, self.pbc = atoms.numbers.copy(), atoms.pbc.copy()
        self.command = command
        # FLUSH_SHOULD_FLUSH makes CP2K write the SCF report before the shell answers
        self.stress = wants_stress(atoms, stress)
        # the shell runs inside `directory`, so CP2K's own files (wavefunction) land there
        text = write_input(template, atoms, stress=stress)
        text = text.replace("&GLOBAL\n", "&GLOBAL\n  FLUSH_SHOULD_FLUSH T\n", 1)
        (self.directory / "cp2k.inp").write_text(text)
        start = f"cd {shlex.quote(str(self.directory))} && {shlex.join(command.env_command() + command.argv('-s'))}"
        self.shell = Cp2kShell(start, False)
        try:
            self._ask("UNITS_AU")
            self.shell.send(f"LOAD {self.directory / 'cp2k.inp'} {self.output}")
            self.env_id = int(self.shell.recv())
            self.shell.expect("* READY")
        except Exception as error:  # e.g. CP2K rejects the input
            reason = self.failure_reason(error)
            self.close()
            raise RuntimeError(reason) from error
        self.cell = None

    def _ask(self, line: str) -> None:
        self.shell.send(line)
        self.shell.expect("* READY")

    def fits(self, atoms: Atoms) -> bool:
        return np.array_equal(atoms.numbers, self.numbers) and np.array_equal(atoms.pbc, self.pbc)

    def evaluate(self, atoms: Atoms) -> SinglePoint:
        offset = self.output.stat().st_size if self.output.exists() else 0
        if self.cell is None or not np.array_equal(self.cell, atoms.cell.array):
            self.shell.send(f"SET_CELL {self.env_id}")
            for row in atoms.cell.array / Bohr:
                self.shell.send(" ".join(f"{x:.18e}" for x in row))
            self.shell.expect("* READY")
            self.cell = atoms.cell.array.copy()
        self.shell.send(f"SET_POS {self.env_id}")
        self.shell.send(str(3 * len(atoms)))
        for row in atoms.positions / Bohr:
            self.shell.send(" ".join(f"{x:.18e}" for x in row))
        self.shell.send("*END")
        float(self.shell.recv())  # largest displacement, unused
        self.shell.expect("* READY")
        self._ask(f"EVAL_EF {self.env_id}")
        self.shell.send(f"GET_E {self.env_id}")
        energy = float(self.shell.recv())
        self.shell.expect("* READY")
        self.shell.send(f"GET_F {self.env_id}")
        n_values = int(self.shell.recv())
        forces = np.array([[float(x) for x in self.shell.recv().split()] for _ in range(n_values // 3)])
        self.shell.expect("* END")
        self.shell.expect("* READY")
        stress = None
        if self.stress:
            self.shell.send(f"GET_STRESS {self.env_id}")
            stress = -np.array([float(x) for x in self.shell.recv().split()]).reshape(3, 3) * Hartree / Bohr**3
            self.shell.expect("* READY")
        report = self.output.read_text(errors="replace")[offset:]
        if "SCF run NOT converged" in report:
            return SinglePoint("failed", "SCF not converged")
        return SinglePoint("ok", energy=energy * Hartree, forces=forces * Hartree / Bohr, stress=stress)

    def failure_reason(self, error: Exception) -> str:
        detail = _abort_message(self.output.read_text(errors="replace")) if self.output.exists() else ""
        return f"CP2K shell failed: {detail or repr(error)}"[:300]

    def close(self) -> None:
        child = self.shell._child
        if child is not None and child.poll() is not None:  # already dead: nothing to ask it
            self.shell._child, self.shell.isready = None, False
        self.shell.close()
        shutil.rmtree(self.directory, ignore_errors=True)


# One shell per Parsl worker, kept between tasks: the worker is the unit that
# owns cores, and the next frame it gets is usually close to the previous one.
_SESSIONS: dict = {}


@atexit.register
def _close_sessions() -> None:
    for session in _SESSIONS.values():
        session.close()
    _SESSIONS.clear()


def persistent_single_point(
    atoms: Atoms, template: str, command: Cp2kCommand, stress: bool = False, workdir=None
) -> SinglePoint:
    """Like `single_point`, through a CP2K shell that lives as long as this process."""
    import threading

    start = time.perf_counter()
    key = (template, stress, command.executable, command.mpi_ranks, command.omp_threads, command.launcher)
    session = _SESSIONS.get(key)
    if session is None or not session.fits(atoms):
        for old in _SESSIONS.values():
            old.close()
        _SESSIONS.clear()
        session = None
    timed_out = threading.Event()
    timer = None
    try:
        if shutil.which(command.executable) is None:
            raise RuntimeError(f"cannot start CP2K shell: executable '{command.executable}' not found")
        if session is None:
            directory = tempfile.mkdtemp(prefix="cp2k_shell_", dir=workdir)
            session = ShellSession(template, command, atoms, directory, stress)
            _SESSIONS[key] = session
        # a hung SCF would block the protocol forever: kill the shell at the walltime
        timer = threading.Timer(command.walltime_s, lambda: (timed_out.set(), session.shell._child.kill()))
        timer.start()
        result = session.evaluate(atoms)
    except Exception as error:  # the shell died: record why, start a new one next time
        _SESSIONS.pop(key, None)
        if timed_out.is_set():
            reason = f"walltime of {command.walltime_s:g} s exceeded"
        elif session is None:
            reason = str(error) if isinstance(error, RuntimeError) else f"cannot start CP2K shell: {error!r}"
            reason = reason[:300]
        else:
            reason = session.failure_reason(error)
        if session is not None:
            session.close()
        result = SinglePoint("failed", reason)
    finally:
        if timer is not None:
            timer.cancel()
    result.seconds = time.perf_counter() - start
    return result


# -- isolated atoms -------------------------------------------------------------

AUFBAU = ["1s", "2s", "2p", "3s", "3p", "4s", "3d", "4p", "5s", "4d", "5p", "6s", "4f", "5d", "6p", "7s", "5f", "6d"]


def ground_state_multiplicity(number: int) -> int:
    """2S+1 of a free atom by the aufbau principle and Hund's rule.

    Only the last, partly filled subshell has unpaired electrons; the few
    exceptions to aufbau (Cr, Cu, ...) are not modelled.
    """
    left = number
    for subshell in AUFBAU:
        capacity = 2 * (2 * "spdf".index(subshell[1]) + 1)
        if left <= capacity:
            unpaired = left if left <= capacity // 2 else capacity - left
            return unpaired + 1
        left -= capacity
    raise ValueError(f"atomic number {number} beyond the aufbau table")


def isolated_atom_template(template: str, number: int) -> str:
    """The template set up for one free atom: its ground-state spin, unrestricted."""
    multiplicity = ground_state_multiplicity(number)
    text = re.sub(r"^\s*(MULTIPLICITY|UKS|LSD|UNRESTRICTED_KOHN_SHAM)\b.*\n", "", template, flags=re.I | re.M)
    dft = re.search(r"^\s*&DFT\b.*$", text, flags=re.IGNORECASE | re.MULTILINE)
    if dft is None:
        raise TemplateError("the template has no &DFT section to set the spin of an isolated atom")
    settings = f"\n    MULTIPLICITY {multiplicity}\n    UKS {'T' if multiplicity > 1 else 'F'}"
    return text[: dft.end()] + settings + text[dft.end() :]
