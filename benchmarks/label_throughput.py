"""Labeling throughput: single points per minute on the 32-water GFN1-xTB box.

Compares psiflow's label step (Parsl, one task per single point) in
persistent-shell mode and fresh-process mode against a plain shell loop over
cp2k.psmp with all cores given to each run (OpenMP), on the same geometries:
rattled copies of the box, or with --frames-from the frames a label job of a
finished run labeled, in the order it labeled them.

    .venv/bin/python benchmarks/label_throughput.py [--frames 12] [--cores 2]
    .venv/bin/python benchmarks/label_throughput.py --frames-from results/iter_4/selected.h5
"""

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ase.io import read

from psiflow_pipeline.bootstrap import rattled_frames
from psiflow_pipeline.cp2k.command import Cp2kCommand
from psiflow_pipeline.cp2k.template import check_template, write_input
from psiflow_pipeline.data import read_h5
from psiflow_pipeline.execution import Execution
from psiflow_pipeline.labeling import label

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--frames-from", type=Path, help="an h5 file of frames, e.g. results/iter_4/selected.h5")
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    template = check_template(REPO / "resources/cp2k/xtb.inp")
    if args.frames_from:
        frames = read_h5(args.frames_from)
    else:  # nearby geometries, as the frames of one walker are
        frames = rattled_frames([read(REPO / "resources/structures/water_32.xyz")], args.frames, 0.03, 0.0, seed=11)
    worker_use = WorkerUse()
    logging.getLogger("psiflow").addHandler(worker_use)
    logging.getLogger("psiflow").setLevel(logging.INFO)
    rates = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for mode in ("persistent", "fresh"):
            start = time.perf_counter()
            labeled = label(
                frames,
                template,
                Cp2kCommand(),
                Execution(cores=args.cores),
                scratch / f"parsl_{mode}",
                scratch / f"cache_{mode}",
                persistent=mode == "persistent",
            )
            seconds = time.perf_counter() - start
            assert (labeled.frame["status"] == "ok").all()
            rates[f"psiflow {mode} ({args.cores} workers, {worker_use.percent} % use)"] = 60 * len(frames) / seconds
        loop = scratch / "loop"
        loop.mkdir()
        for k in range(len(frames)):
            (loop / f"frame_{k}.inp").write_text(write_input(template, frames.to_atoms(k), project=f"frame_{k}"))
        start = time.perf_counter()
        subprocess.run(
            "for f in frame_*.inp; do cp2k.psmp -i $f -o $f.out || exit 1; done",
            shell=True,
            cwd=loop,
            check=True,
            env=dict(os.environ, OMP_NUM_THREADS=str(args.cores)),
        )
        rates[f"shell loop, cp2k.psmp with {args.cores} OpenMP threads"] = (
            60 * len(frames) / (time.perf_counter() - start)
        )
    baseline = rates[f"shell loop, cp2k.psmp with {args.cores} OpenMP threads"]
    print(f"{len(frames)} single points ({args.frames_from or 'rattled'}), GFN1-xTB, {args.cores} cores")
    print(f"{'mode':55s} {'points/min':>10s} {'vs loop':>8s}")
    for name, rate in rates.items():
        print(f"{name:55s} {rate:10.1f} {rate / baseline:8.2f}x")


class WorkerUse(logging.Handler):
    """The worker use that the label step logs at its end."""

    percent = "?"

    def emit(self, record):
        found = re.search(r"worker use (\d+) %", record.getMessage())
        if found:
            self.percent = found.group(1)


if __name__ == "__main__":
    main()
