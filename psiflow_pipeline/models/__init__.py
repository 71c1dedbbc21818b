"""NequIP committees: training configs, training and packaging, compilation,
the committee calculator and its uncertainty."""

import functools
import importlib.metadata


def scan_installed_packages_once() -> None:
    """Let this process scan the installed distributions' metadata once.

    nequip maps module names to distributions with
    `importlib.metadata.packages_distributions()` at import, and its packaged
    models carry that module: every model loaded from a `.nequip.zip` runs
    the scan again, about 0.2 s in this environment. The installed packages
    do not change while a job runs, so one scan serves them all. Call before
    importing nequip.
    """
    scan = importlib.metadata.packages_distributions
    if not hasattr(scan, "cache_info"):
        importlib.metadata.packages_distributions = functools.cache(scan)
