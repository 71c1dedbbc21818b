"""The delivered potential in a long production run: NVT with the default
job's final committee (compiled where it is) following what the walkers
follow, the walkers' checks at every saved frame, and the radial
distribution functions against the reference MD.

    make run && .venv/bin/python benchmarks/stability.py            # 20 ps at 350 K
    .venv/bin/python benchmarks/stability.py --ps 5 --temperature 300

Prints how long the run stayed physical, the committee deviation, and per
element pair the first peak of g(r) against the reference's and the
integrated absolute difference.
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

from psiflow_pipeline import paths, settings
from psiflow_pipeline.config import load, locate_files, validate
from psiflow_pipeline.data import read_structures
from psiflow_pipeline.validation import read_reference, validate_committee

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=REPO, help="working directory of a finished run")
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--ps", type=float, default=20.0)
    parser.add_argument("--temperature", type=float, default=350.0)
    parser.add_argument(
        "--reference", type=Path, nargs="+", help="reference MD frames (default: the config's validation.reference)"
    )
    args = parser.parse_args()
    config = validate(load(args.config), str(args.config))
    locate_files(config, lambda path: str(REPO / path) if (REPO / path).exists() else None)
    config["validation"].update(duration_ps=args.ps, temperature=args.temperature)
    if args.reference:
        config["validation"]["reference"] = [str(path) for path in args.reference]
    # the run's final iteration: `iterations`, or earlier where a stop criterion was met
    last = int(pd.read_csv(args.run / paths.summary_file("metrics.csv")).iteration.max())
    run_settings = settings.validation(config, last)
    members = range(config["model"]["committee"])
    compiled = [args.run / paths.final_model(m, "nequip.pt2") for m in members]
    models = compiled if all(p.exists() for p in compiled) else [args.run / paths.final_model(m) for m in members]
    atoms = read_structures(config["system"]["structures"], config["system"]["periodic"])[0]
    start = time.perf_counter()
    reference = read_reference(config["validation"]["reference"])
    run, _, record = validate_committee(atoms, models, run_settings, reference)
    seconds = time.perf_counter() - start
    steps = len(run.times_ps) * run_settings["walker"]["stride"]
    print(
        f"models: {', '.join(p.name for p in models)}; {steps} steps in {seconds:.0f} s ({steps / seconds:.0f} steps/s)"
    )
    print(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))


if __name__ == "__main__":
    main()
