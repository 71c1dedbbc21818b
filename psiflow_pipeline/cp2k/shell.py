"""Persistent CP2K: one `cp2k.psmp -s` shell per worker, fed frame after frame."""

from __future__ import annotations

import atexit
import shlex
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.output import SinglePoint, abort_message
from psiflow_pipeline.cp2k.template import cp2k_geometry, label_guess_input, wants_stress, write_input
from psiflow_pipeline.data import Status


class ShellSession:
    """A `cp2k.psmp -s` (cp2k_shell) process holding one force environment.

    Successive geometries with the same atoms skip CP2K's start; with
    `trajectory` (consecutive MD steps) CP2K also extrapolates the SCF guess
    from the previous ones, otherwise the guess follows `LABEL_GUESS`. ASE's
    `Cp2kShell` speaks the protocol; we drive it ourselves (not ASE's CP2K
    calculator) so that energy and forces come in atomic units and convert
    exactly as in fresh-process mode, and so that the output can be checked
    for SCF convergence, which the shell protocol does not report.
    """

    def __init__(
        self,
        template: str,
        command: Cp2kCommand,
        atoms: Atoms,
        directory,
        stress: bool = False,
        trajectory: bool = False,
    ):
        from ase.calculators.cp2k import Cp2kShell

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.output = self.directory / "cp2k.out"
        self.numbers, self.pbc = atoms.numbers.copy(), atoms.pbc.copy()
        self.command = command
        self.exiting = False  # EXIT sent, see `request_exit`
        # FLUSH_SHOULD_FLUSH makes CP2K write the SCF report before the shell answers
        self.stress = wants_stress(atoms, stress)
        # the shell runs inside `directory`, so CP2K's own files (wavefunction) land there
        text = write_input(template, atoms, stress=stress)
        if not trajectory:
            text = label_guess_input(text)
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
        self.cell = cp2k_geometry(atoms)[0]  # as written in the input

    def _ask(self, line: str) -> None:
        self.shell.send(line)
        self.shell.expect("* READY")

    def fits(self, atoms: Atoms) -> bool:
        return np.array_equal(atoms.numbers, self.numbers) and np.array_equal(atoms.pbc, self.pbc)

    def evaluate(self, atoms: Atoms) -> SinglePoint:
        offset = self.output.stat().st_size if self.output.exists() else 0
        cell, positions = cp2k_geometry(atoms)  # a molecule's box, as fresh mode writes it
        if not np.array_equal(self.cell, cell):
            self.shell.send(f"SET_CELL {self.env_id}")
            for row in cell / Bohr:
                self.shell.send(" ".join(f"{x:.18e}" for x in row))
            self.shell.expect("* READY")
            self.cell = cell.copy()
        self.shell.send(f"SET_POS {self.env_id}")
        self.shell.send(str(3 * len(atoms)))
        for row in positions / Bohr:
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
            return SinglePoint(Status.FAILED, "SCF not converged")
        return SinglePoint(Status.OK, energy=energy * Hartree, forces=forces * Hartree / Bohr, stress=stress)

    def failure_reason(self, error: Exception) -> str:
        detail = abort_message(self.output.read_text(errors="replace")) if self.output.exists() else ""
        return f"CP2K shell failed: {detail or repr(error)}"[:300]

    # Ending a shell is split in two, where ASE's `Cp2kShell.close` sends EXIT
    # and waits in one call: CP2K's own shutdown takes about 0.13 s (GFN1-xTB,
    # 32 waters), so a job that ends its shells one after the other would pay
    # that once per worker.
    def request_exit(self) -> None:
        """Ask CP2K to end, without waiting for it (`await_exit`)."""
        child = self.shell._child
        if child is not None and child.poll() is None and self.shell.isready:
            self.shell.send("EXIT")
            self.shell.isready = False
            self.exiting = True

    def await_exit(self) -> None:
        """Wait until CP2K has ended, ending a shell that was not waiting at
        its prompt (a single point cut short), and remove its files."""
        child = self.shell._child
        if child is not None:
            if not self.exiting and child.poll() is None:
                child.terminate()
            child.communicate()
        self.shell._child, self.shell.isready = None, False
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        self.request_exit()
        self.await_exit()


# One shell per worker, kept between tasks so that a frame costs no CP2K start:
# the worker (a Parsl worker process, or a thread of a label job's thread pool)
# is the unit that owns cores. Keyed by thread, so that workers in threads of
# one process each keep their own shell.
_SESSIONS: dict[int, dict] = {}


@atexit.register
def close_sessions() -> None:
    """End this process's CP2K shells, those of every thread (also at exit),
    all asked to exit before any is waited for: their shutdowns overlap."""
    sessions = [session for per_thread in list(_SESSIONS.values()) for session in per_thread.values()]
    _SESSIONS.clear()
    for session in sessions:
        session.request_exit()
    for session in sessions:
        session.await_exit()


def persistent_single_point(
    atoms: Atoms, template: str, command: Cp2kCommand, stress: bool = False, workdir=None, trajectory: bool = False
) -> SinglePoint:
    """Like `single_point`, through a CP2K shell that lives as long as this
    process; `trajectory`: the calls follow one MD trajectory (`ShellSession`)."""
    start = time.perf_counter()
    sessions = _SESSIONS.setdefault(threading.get_ident(), {})
    key = (template, stress, trajectory, command.executable, command.mpi_ranks, command.omp_threads, command.launcher)
    session = sessions.get(key)
    if session is None or not session.fits(atoms):
        for old in sessions.values():
            old.close()
        sessions.clear()
        session = None
    timed_out = threading.Event()
    timer = None
    try:
        if shutil.which(command.executable) is None:
            raise RuntimeError(f"cannot start CP2K shell: executable '{command.executable}' not found")
        if session is None:
            directory = tempfile.mkdtemp(prefix="cp2k_shell_", dir=workdir)
            session = ShellSession(template, command, atoms, directory, stress, trajectory)
            sessions[key] = session
        # a hung SCF would block the protocol forever: kill the shell at the walltime
        timer = threading.Timer(command.walltime_s, lambda: (timed_out.set(), session.shell._child.kill()))
        timer.start()
        result = session.evaluate(atoms)
    except Exception as error:  # the shell died: record why, start a new one next time
        sessions.pop(key, None)
        if timed_out.is_set():
            reason = f"walltime of {command.walltime_s:g} s exceeded"
        elif session is None:
            reason = str(error) if isinstance(error, RuntimeError) else f"cannot start CP2K shell: {error!r}"
            reason = reason[:300]
        else:
            reason = session.failure_reason(error)
        if session is not None:
            session.close()
        result = SinglePoint(Status.FAILED, reason)
    finally:
        if timer is not None:
            timer.cancel()
    result.seconds = time.perf_counter() - start
    return result
