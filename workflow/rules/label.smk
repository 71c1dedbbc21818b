# One CP2K single point per selected frame, as Parsl tasks over the job's cores.


rule label:
    input:
        selected=paths.iteration_file("selected.h5"),
        template=config_files(config["reference"]["input"]),
    output:
        labeled=paths.iteration_file("labeled.h5"),
    log:
        log_of("label"),
    benchmark:
        benchmark_of("label")
    wildcard_constraints:
        i=CP2K_ITERATIONS,
    retries: config["execution"]["retries"]
    localrule: on_pilots("label")
    conda:
        "../../envs/cp2k.yaml"
    threads: config["execution"]["label"]["cores"]
    resources:
        **resources_of("label", config["execution"]["label"]["cores"]),
    params:
        settings=LABEL_SETTINGS,
    message:
        "Label iteration {wildcards.i}: CP2K single points of the selected frames"
    script:
        "../../scripts/label.py"


rule isolated_atoms:
    input:
        template=config_files(config["reference"]["input"]),
        structures=config_files(config["system"]["structures"]),
    output:
        energies=paths.ISOLATED_ATOMS,
    log:
        log_of("isolated_atoms", "isolated_atoms"),
    benchmark:
        benchmark_of("isolated_atoms", "isolated_atoms")
    retries: config["execution"]["retries"]
    conda:
        "../../envs/cp2k.yaml"
    threads: config["execution"]["label"]["mpi_ranks"] * config["execution"]["label"]["omp_threads"]
    resources:
        **resources_of(
            "label",
            config["execution"]["label"]["mpi_ranks"]
            * config["execution"]["label"]["omp_threads"],
        ),
    params:
        settings=settings.isolated_atoms(config),
    message:
        "Isolated atoms: one CP2K single point per element"
    script:
        "../../scripts/isolated_atoms.py"


if config["bootstrap"]["initial_data"]:

    rule import_initial_data:
        input:
            data=config_files(config["bootstrap"]["initial_data"]),
        output:
            labeled=paths.iteration_file("labeled.h5", 0),
        log:
            log_of("import_initial_data", "iter_0"),
        benchmark:
            benchmark_of("import_initial_data", "iter_0")
        localrule: True
        conda:
            "../../envs/analysis.yaml"
        params:
            settings=settings.initial_data(config),
        message:
            "Iteration 0 from the labeled data in {input.data}"
        script:
            "../../scripts/import_initial_data.py"
