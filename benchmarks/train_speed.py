"""Training speed: psiflow's train step (training and packaging in one
process) against a plain `nequip-train`, and against `nequip-train` followed
by `nequip-package build` in a process of its own; a warm start against
training from scratch, and against a plain `nequip-train` from the same
package; with `--compiled`, the warm start through torch.compile
(`execution.train.compile_from_iteration`), with a cold and then a warm
compile cache, against the eager one.

Uses the dataset and committee of a finished run (by default the default job,
`make run`): trains on iteration N's dataset, warm-starting from member 0 of
iteration N-1.

    .venv/bin/python benchmarks/train_speed.py [--results results] [--iteration 3] [--epochs 30] [--repeats 3]
        [--accelerator cpu|gpu|auto] [--compiled]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import overhead
import pandas as pd
import yaml

from psiflow_pipeline.config import load, validate
from psiflow_pipeline.data import read_h5, write_extxyz
from psiflow_pipeline.dataset import split
from psiflow_pipeline.models.training import train_on_dataset
from psiflow_pipeline.models.training_config import MONITORED_METRIC, training_config

REPO = Path(__file__).resolve().parents[1]


def run_quiet(command: list[str], **kwargs) -> None:
    """Run a command, showing its output only where it fails."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def measured(name: str, seconds: float, detail: str | None = None) -> None:
    """Each time as it is measured, so that a run stopped early still reports."""
    print(f"  {name}: {seconds:.1f} s" + (f" ({detail})" if detail else ""), flush=True)


def stages(log: Path, started: float) -> str:
    """Where a psiflow train step's time went, from its log's last run: the
    start-up (imports, data, model) to nequip's TRAIN RUN START, the training
    to TRAIN RUN END, and the packaging to the log's last line."""
    text = log.read_text()
    (begin, _), (end, _) = overhead.TRAIN.findall(text)[-2:]
    last = overhead.ANY.findall(text)[-1]
    return (
        f"start-up {overhead.seconds(begin) - started:.1f} s, "
        f"training {overhead.seconds(end) - overhead.seconds(begin):.1f} s, "
        f"packaging {overhead.seconds(last) - overhead.seconds(end):.1f} s"
    )


def validation_curve(training_dir: Path) -> list[float]:
    table = pd.read_csv(training_dir / "metrics/version_0/metrics.csv")
    return table[table[MONITORED_METRIC].notna()]["val0_epoch/forces_mae"].tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results"))
    parser.add_argument("--iteration", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="plain and psiflow runs, alternated; medians shown")
    parser.add_argument("--accelerator", default="cpu", help="Lightning's accelerator for every variant")
    parser.add_argument("--compiled", action="store_true", help="also the warm start through torch.compile")
    args = parser.parse_args()
    results = Path(args.results)
    dataset = results / f"iter_{args.iteration}/dataset.h5"
    previous = results / f"iter_{args.iteration - 1}/models/member_0/model.nequip.zip"
    if not dataset.exists() or not previous.exists():
        sys.exit(f"{dataset} or {previous} missing: run the pipeline first (make run)")
    model = validate(load(REPO / "config/config.yaml"), "config/config.yaml")["model"]
    # a fixed number of epochs for every variant
    model.update(max_epochs=args.epochs, patience=10**6, nequip={})
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    os.environ.update(OMP_NUM_THREADS=str(args.threads))
    times = {"plain nequip-train": [], "psiflow train (from scratch)": [], "psiflow train (warm start)": []}
    packaging = []  # `nequip-package build` of the plain run's checkpoint, a process of its own
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # plain nequip-train on the same files and config
        frames = read_h5(dataset)
        train, valid = split(frames, model["valid_fraction"])
        write_extxyz(train, scratch / "train.xyz")
        write_extxyz(valid, scratch / "valid.xyz")

        def nequip_config(warm_start_from=None):
            return training_config(
                str(scratch / "train.xyz"), str(scratch / "valid.xyz"), ["H", "O"], model, 42, args.accelerator,
                warm_start_from=warm_start_from,
            )  # fmt: skip

        config = nequip_config()
        plain = scratch / "plain"

        # `python -m` runs what the console scripts run, also in an environment without them
        def run_plain(folder=plain, config=config):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            run_quiet(
                [sys.executable, "-m", "nequip.scripts.train", "-cp", str(folder), "-cn", "config",
                 f"hydra.run.dir={folder}"],
                cwd=folder, env=env,
            )  # fmt: skip

        def run_psiflow(folder, warm, compiled=False):
            started = time.time()
            try:
                train_on_dataset(
                    dataset, folder / "training", folder / "model.nequip.zip", model, seed=42,
                    accelerator=args.accelerator, threads=args.threads, log_path=scratch / "train.log",
                    warm_start_from=warm, compiled=compiled,
                )  # fmt: skip
            except subprocess.CalledProcessError:
                sys.exit(f"psiflow train failed:\n{(scratch / 'train.log').read_text()[-3000:]}")
            return stages(scratch / "train.log", started)

        # alternated, so that the machine's drifts fall on both
        for _ in range(args.repeats):
            for name, run in (
                ("plain nequip-train", run_plain),
                ("psiflow train (from scratch)", lambda: run_psiflow(scratch / "from_scratch", None)),
            ):
                start = time.perf_counter()
                detail = run()
                times[name].append(time.perf_counter() - start)
                measured(name, times[name][-1], detail)
            start = time.perf_counter()
            run_quiet(
                [sys.executable, "-m", "nequip.scripts.package", "build", str(plain / "best.ckpt"),
                 str(scratch / "plain.nequip.zip")],
                env=env,
            )  # fmt: skip
            packaging.append(time.perf_counter() - start)
            measured("nequip-package build, own process", packaging[-1])
        scratch_curve = validation_curve(plain)
        start = time.perf_counter()
        detail = run_psiflow(scratch / "warm_start", previous)
        times["psiflow train (warm start)"].append(time.perf_counter() - start)
        measured("psiflow train (warm start)", times["psiflow train (warm start)"][-1], detail)
        # the warm start's own baseline: plain nequip-train from the same package
        start = time.perf_counter()
        run_plain(scratch / "plain_warm_start", nequip_config(str(previous)))
        times["plain nequip-train (warm start)"] = [time.perf_counter() - start]
        measured("plain nequip-train (warm start)", times["plain nequip-train (warm start)"][-1])
        warm_curve = validation_curve(scratch / "warm_start/training")
        compiled_curve = None
        if args.compiled:
            # a cache of its own, empty for the first run: a study's first compiling job
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(scratch / "compile_cache")
            for name in ("psiflow train (warm start), compiled, cold cache", "the same, warm cache"):
                start = time.perf_counter()
                detail = run_psiflow(scratch / "compiled", previous, compiled=True)
                times[name] = [time.perf_counter() - start]
                measured(name, times[name][-1], detail)
            compiled_curve = validation_curve(scratch / "compiled/training")
    times = {name: float(np.median(values)) for name, values in times.items()}
    per_epoch = times["plain nequip-train"] / args.epochs
    target = scratch_curve[-1]
    reached = next((k + 1 for k, error in enumerate(warm_curve) if error <= target), None)
    print(f"{len(frames)} frames, {args.epochs} epochs, {args.threads} threads, accelerator {args.accelerator}, "
          f"medians of {args.repeats} runs")  # fmt: skip
    print(f"{'variant':50s} {'seconds':>8s} {'vs plain':>9s} {'vs eager warm start':>20s}")
    for name, seconds in times.items():
        print(f"{name:50s} {seconds:8.1f} {seconds / times['plain nequip-train']:8.2f}x "
              f"{seconds / times['psiflow train (warm start)']:19.2f}x")  # fmt: skip
    print(
        "psiflow's train step against plain nequip-train on the same start: from scratch "
        f"{times['psiflow train (from scratch)'] / times['plain nequip-train']:.2f}x, warm start "
        f"{times['psiflow train (warm start)'] / times['plain nequip-train (warm start)']:.2f}x"
    )
    package = float(np.median(packaging))
    print(f"{'nequip-package build, own process':50s} {package:8.1f}")
    print(f"{'train, then package: two processes':50s} {times['plain nequip-train'] + package:8.1f} "
          f"{(times['plain nequip-train'] + package) / times['plain nequip-train']:8.2f}x")  # fmt: skip
    print(f"validation force MAE after {args.epochs} epochs from scratch: {target:.4f} eV/Å")
    if compiled_curve is not None:
        difference = max(abs(a - b) for a, b in zip(compiled_curve, warm_curve))
        print(f"compiled warm start: validation force MAE {compiled_curve[-1]:.4f} eV/Å after {args.epochs} epochs "
              f"(eager {warm_curve[-1]:.4f}); largest difference over the epochs {difference:.1e}")  # fmt: skip
    print(f"warm start: {warm_curve[0]:.4f} eV/Å after 1 epoch (scratch: {scratch_curve[0]:.4f})")
    if reached is None:
        print(f"warm start did not reach it in {args.epochs} epochs (final {warm_curve[-1]:.4f})")
    else:
        print(
            f"warm start reached it after {reached} epochs: about {reached * per_epoch:.0f} s of training "
            f"vs {args.epochs * per_epoch:.0f} s, {args.epochs / reached:.1f}x faster"
        )


if __name__ == "__main__":
    main()
