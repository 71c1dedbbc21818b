# Iteration i > 0: walkers continue from iteration i-1 with its committee.


rule sample:
    input:
        walkers=previous("walkers.h5"),
        models=previous_committee,
        structures=config["system"]["structures"],
        plumed=[w["plumed"] for w in config["walkers"] if w["plumed"]],
    output:
        candidates="results/iter_{i}/candidates.h5",
        walkers="results/iter_{i}/walkers.h5",
        colvar=directory("results/iter_{i}/colvar"),
    log:
        "logs/sample/iter_{i}.log",
    benchmark:
        "benchmarks/sample/iter_{i}.tsv"
    wildcard_constraints:
        i=r"[1-9]\d*",
    retries: config["execution"]["retries"]
    localrule: on_pilots("sample")
    conda:
        "../../envs/sampling.yaml"
    threads: config["execution"]["sample"]["cores"]
    resources:
        **job_resources("sample", config["execution"]["sample"]["cores"]),
    params:
        system=config["system"],
        walkers=config["walkers"],
        trust_hi=config["selection"]["trust_hi"],
        seed=config["seed"],
        run_dir=lambda w: f"logs/parsl/sample/iter_{w.i}",
    message:
        "Sample iteration {wildcards.i}: MD of every walker with the committee of iteration {wildcards.i}-1"
    script:
        "../../scripts/sample.py"
