"""Convert frame files between psiflow's HDF5 store and extxyz, by extension.

    psiflow-convert results/iter_3/dataset.h5 dataset.xyz   # export
    psiflow-convert my_data.xyz my_data.h5                  # import

Every array survives both ways bit for bit (energies, forces, stress, cell,
identifiers, deviations, walker and iteration columns).
"""

import argparse
from pathlib import Path

from psiflow_pipeline.data import read_extxyz, read_h5, write_extxyz, write_h5

READERS = {".h5": read_h5, ".xyz": read_extxyz, ".extxyz": read_extxyz}
WRITERS = {".h5": write_h5, ".xyz": write_extxyz, ".extxyz": write_extxyz}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    for path, table in ((args.source, READERS), (args.target, WRITERS)):
        if path.suffix not in table:
            parser.error(f"{path}: unknown extension, use one of {', '.join(table)}")
    frames = READERS[args.source.suffix](args.source)
    WRITERS[args.target.suffix](frames, args.target)
    print(f"{len(frames)} frames: {args.source} -> {args.target}")


if __name__ == "__main__":
    main()
