# Iteration 0: rattled and strained copies of the initial structures take the
# place of sampling and selection; the walkers start at the initial structures.


rule bootstrap:
    input:
        structures=config["system"]["structures"],
    output:
        selected="results/iter_0/selected.h5",
        walkers="results/iter_0/walkers.h5",
    log:
        "logs/bootstrap/iter_0.log",
    benchmark:
        "benchmarks/bootstrap/iter_0.tsv"
    localrule: True
    conda:
        "../../envs/sampling.yaml"
    params:
        system=config["system"],
        bootstrap=config["bootstrap"],
        walkers=config["walkers"],
        seed=config["seed"],
    message:
        "Bootstrap: {params.bootstrap[n_rattled]} rattled copies per initial structure"
    script:
        "../../scripts/bootstrap.py"
