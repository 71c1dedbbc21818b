# Iteration i > 0: walkers continue from iteration i-1 with its committee.


rule sample:
    input:
        walkers=previous_walkers,
        models=previous_committee,
        structures=config_files(config["system"]["structures"]),
        plumed=config_files(plumed_inputs()),
    output:
        candidates=paths.iteration_file("candidates.h5"),
        walkers=paths.iteration_file("walkers.h5"),
        colvar=directory(paths.colvar_dir()),
    log:
        log_of("sample"),
    benchmark:
        benchmark_of("sample")
    wildcard_constraints:
        i=r"[1-9]\d*",
    retries: config["execution"]["retries"]
    localrule: on_pilots("sample")
    conda:
        "../../envs/sampling.yaml"
    threads: config["execution"]["sample"]["cores"]
    resources:
        **resources_of("sample", config["execution"]["sample"]["cores"]),
    params:
        settings=lambda w: settings.sample(config, iteration_of(w)),
    message:
        "Sample iteration {wildcards.i}: MD of every walker with the committee of iteration {wildcards.i}-1"
    script:
        "../../scripts/sample.py"
