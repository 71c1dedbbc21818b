"""Orchestration overhead of a finished run: its wall time minus the science
inside its jobs (single points, walker MD, training epochs, validation MD).

Reads the Snakemake log of the run (its start is in the file name, its end is
the last timestamp), every job's log and Snakemake benchmark file, and takes
as science the intervals that the jobs log: each single point and each walker
task (end time and duration), nequip-train's TRAIN RUN START to TRAIN RUN
END, and the validation MD from its first to its last progress line. The
rest is overhead: Snakemake's planning and job starts, Python imports,
Parsl's start, model loading, packaging, selection, datasets, evaluation.

    .venv/bin/python benchmarks/overhead.py [--run .] [--snakemake-log .snakemake/log/<newest>]
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from psiflow_pipeline import paths

STAMP = r"\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]?"
TASK = re.compile(STAMP + r".*\(([0-9.]+) s\); \d+ of \d+ (?:single points|walkers) done")
TRAIN = re.compile(STAMP + r".*TRAIN RUN (START|END)")
MD_STEPS = re.compile(STAMP + r".* of \d+ MD steps done")
ANY = re.compile("^" + STAMP, flags=re.M)


def seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def science_of(text: str) -> list[tuple[float, float]]:
    """The science intervals a job's log records."""
    intervals = [(seconds(t) - float(s), seconds(t)) for t, s in TASK.findall(text)]
    marks = TRAIN.findall(text)
    intervals += [(seconds(a), seconds(b)) for (a, x), (b, y) in zip(marks, marks[1:]) if (x, y) == ("START", "END")]
    steps = MD_STEPS.findall(text)
    if len(steps) > 1:
        intervals.append((seconds(steps[0]), seconds(steps[-1])))
    return intervals


def gaps(intervals, start: float, end: float) -> list[tuple[float, float]]:
    """The stretches of [start, end] that no interval covers."""
    found, reached = [], start
    for a, b in sorted(intervals):
        if a > reached:
            found.append((reached, min(a, end)))
        reached = max(reached, b)
    if end > reached:
        found.append((reached, end))
    return [(a, b) for a, b in found if b > a]


def idle_length(intervals, start: float, end: float) -> float:
    return sum(b - a for a, b in gaps(intervals, start, end))


def union_length(intervals) -> float:
    intervals = list(intervals)
    if not intervals:
        return 0.0
    start, end = min(a for a, _ in intervals), max(b for _, b in intervals)
    return end - start - idle_length(intervals, start, end)


def idle_by_rules(table: pd.DataFrame, idle: list[tuple[float, float]]) -> pd.Series:
    """Seconds of `idle` by the set of rules whose jobs were running then
    ("none" when no job was): where the run waited on something other than science."""
    seconds = {}
    for a, b in idle:
        marks = sorted({a, b, *(t for t in (*table.start, *table.end) if a < t < b)})
        for x, y in zip(marks, marks[1:]):
            running = table[(table.start < y) & (table.end > x)]
            key = " + ".join(sorted(set(running.rule))) or "none"
            seconds[key] = seconds.get(key, 0.0) + y - x
    return pd.Series(seconds).sort_values(ascending=False)


def jobs(run: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted((run / paths.LOGS / "benchmarks").glob("*/*.tsv")):
        rule, name = tsv.parent.name, tsv.stem
        log = run / paths.log_file(rule, name)
        text = log.read_text(errors="replace") if log.exists() else ""
        stamps = [seconds(stamp) for stamp in ANY.findall(text)]
        wall = float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
        end = max(stamps) if stamps else float("nan")
        science = science_of(text)
        rows.append(
            dict(
                rule=rule,
                job=name,
                start=end - wall,
                end=end,
                wall=wall,
                science=union_length(science),
                intervals=science,
            )
        )
    return pd.DataFrame(rows)


def run_span(snakemake_log: Path) -> tuple[float, float]:
    start = datetime.strptime(snakemake_log.name.split(".snakemake")[0], "%Y-%m-%dT%H%M%S.%f").timestamp()
    stamps = re.findall(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]", snakemake_log.read_text(), flags=re.M)
    return start, datetime.strptime(stamps[-1], "%a %b %d %H:%M:%S %Y").timestamp() + 1  # whole seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("."))
    parser.add_argument("--snakemake-log", type=Path)
    args = parser.parse_args()
    log = args.snakemake_log or max((args.run / ".snakemake/log").glob("*.snakemake.log"))
    start, end = run_span(log)
    table = jobs(args.run)
    table = table[(table.start >= start - 60) & (table.end <= end + 60)]  # this run's jobs only
    wall = end - start
    science = [i for intervals in table.intervals for i in intervals]
    idle = gaps(science, start, end)
    no_job = idle_length(zip(table.start, table.end), start, end)
    no_science = sum(b - a for a, b in idle)
    per_rule = table.groupby("rule")[["wall", "science"]].sum().assign(jobs=table.groupby("rule").size())
    per_rule["other"] = per_rule.wall - per_rule.science
    print(f"run {log.name}: {len(table)} jobs")
    print(per_rule[["jobs", "wall", "science", "other"]].round(1).sort_values("wall", ascending=False).to_string())
    print(f"wall time of the run            {wall:8.1f} s")
    print(f"no job running (Snakemake)      {no_job:8.1f} s  {100 * no_job / wall:5.1f} %")
    print(f"no science running (overhead)   {no_science:8.1f} s  {100 * no_science / wall:5.1f} %")
    print("no science running, by the rules whose jobs ran then (s):")
    print(idle_by_rules(table, idle).round(1).to_string())


if __name__ == "__main__":
    main()
