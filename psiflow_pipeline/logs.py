"""What every rule script shares: logging into the rule's log file, the
progress lines of long jobs, and ending a job's process without Python's
teardown."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import sys
import time

import psiflow_pipeline

DISTRIBUTION = "psiflow-pipeline"


@contextlib.contextmanager
def rule_log(path):
    """Send logging, warnings and stray prints of a rule script to its log file.

    Every record is flushed as it is written, so a long job's log can be
    followed while it runs. The first line names the library and where it
    was imported from.
    """
    with open(path, "a") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
        logging.root.handlers[0].addFilter(_without_parsl_detail)
        logging.captureWarnings(True)
        log = logging.getLogger("psiflow")
        log.info(
            "%s %s from %s",
            DISTRIBUTION,
            importlib.metadata.version(DISTRIBUTION),
            psiflow_pipeline.__path__[0],
        )
        try:
            yield log
        except Exception:
            log.exception("rule failed")
            raise
        finally:
            sys.stdout.flush()


def _without_parsl_detail(record: logging.LogRecord) -> bool:
    """Parsl's records below WARNING stay in Parsl's own log (in its run
    directory): `parsl.load` sets its logger to DEBUG, and a level set on
    that logger beforehand would not hold."""
    return record.levelno >= logging.WARNING or not record.name.startswith("parsl")


def end_process() -> None:
    """Exit with success at once, skipping Python's teardown, which writes
    nothing: 2-3 s in a process that imported torch and nequip (module and
    library finalizers), about 0.5 s in the others. Every rule script calls
    it last, once its outputs are written and closed; a failing script
    exits through its traceback instead."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Progress:
    """Counts finished tasks of a job and logs each with an estimate of the time left."""

    def __init__(self, total: int, what: str, log: logging.Logger | None = None, done: int = 0):
        self.total, self.what, self.done = total, what, done
        self.log = log or logging.getLogger("psiflow")
        self.start, self.started_with = time.perf_counter(), done

    def finished(self, message: str, count: int = 1) -> str:
        """Log `message` for `count` more finished tasks, with the count and the time left."""
        self.done += count
        line = f"{message}; {self.done} of {self.total} {self.what} done"
        new = self.done - self.started_with
        left = self.total - self.done
        if left and new:
            seconds = (time.perf_counter() - self.start) / new * left
            line += f", about {_duration(seconds)} left"
        self.log.info(line)
        return line


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
