# Iteration 0: rattled and strained copies of the initial structures take the
# place of sampling and selection.


rule bootstrap:
    input:
        structures=config_files(config["system"]["structures"]),
    output:
        selected=paths.iteration_file("selected.h5", 0),
    log:
        log_of("bootstrap", "iter_0"),
    benchmark:
        benchmark_of("bootstrap", "iter_0")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=settings.bootstrap(config),
    message:
        "Bootstrap: {params.settings[n_rattled]} rattled copies per initial structure"
    script:
        "../../scripts/bootstrap.py"
