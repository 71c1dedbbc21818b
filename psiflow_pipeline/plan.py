"""What Snakemake would (re)run, read from its own plan (`snakemake --summary`),
as job names: 'rule i' for the steps of iteration i ('train i/m' per member),
'compile m' per member, else the rule's name."""

from __future__ import annotations

import re

ITERATION_RULES = {"sample", "select", "label", "dataset", "train", "evaluate", "import_initial_data"}


def planned_jobs(summary: str) -> set[str]:
    """The jobs whose outputs `snakemake --summary` marks 'update pending'."""
    jobs = set()
    for line in summary.splitlines():
        fields = line.split("\t")
        if len(fields) < 6 or fields[-1] != "update pending":
            continue
        output, rule = fields[0], fields[2]
        iteration = re.search(r"iter_(\d+)/", output)
        member = re.search(r"member_(\d+)", output)
        if rule == "train":
            jobs.add(f"train {iteration.group(1)}/{member.group(1)}")
        elif rule == "compile":
            jobs.add(f"compile {member.group(1)}")
        elif rule in ITERATION_RULES:
            jobs.add(f"{rule} {iteration.group(1)}")
        else:
            jobs.add(rule)
    return jobs
