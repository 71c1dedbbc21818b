"""What every rule script shares: logging into the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys


@contextlib.contextmanager
def rule_log(path):
    """Send logging, warnings and stray prints of a rule script to its log file."""
    with open(path, "a") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
        logging.captureWarnings(True)
        try:
            yield logging.getLogger("psiflow")
        except Exception:
            logging.getLogger("psiflow").exception("rule failed")
            raise
        finally:
            sys.stdout.flush()
