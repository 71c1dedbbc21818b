"""`nequip-train`, then `nequip-package build` of its best checkpoint, in one
Python process: importing nequip (Lightning, Hydra, e3nn) takes seconds,
which the two console scripts would each pay for every member.

    python -m psiflow_pipeline.models.train_and_package WORKDIR PACKAGE
"""

from __future__ import annotations

import sys
from pathlib import Path


def best_checkpoint(workdir: Path) -> Path:
    """The checkpoint with the best validation metric, or the last one where none was kept."""
    checkpoint = workdir / "best.ckpt"
    return checkpoint if checkpoint.exists() else workdir / "last.ckpt"


def main(workdir: str, package_path: str) -> None:
    from psiflow_pipeline.models import scan_installed_packages_once

    scan_installed_packages_once()  # a warm start loads a package
    from nequip.scripts import package, train

    workdir = Path(workdir).resolve()
    # nequip-train's own command line: its Hydra entry point reads sys.argv
    sys.argv = ["nequip-train", "-cp", str(workdir), "-cn", "config", f"hydra.run.dir={workdir}"]
    train.main()
    package.main(["build", str(best_checkpoint(workdir)), package_path])


if __name__ == "__main__":
    from psiflow_pipeline.logs import end_process

    main(*sys.argv[1:])
    end_process()  # the package is written: skip the teardown of torch, Lightning and nequip
