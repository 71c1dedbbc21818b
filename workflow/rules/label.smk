# One CP2K single point per selected frame, as Parsl tasks over the job's cores.


rule label:
    input:
        selected="results/iter_{i}/selected.h5",
        template=config["reference"]["input"],
    output:
        labeled="results/iter_{i}/labeled.h5",
    log:
        "logs/label/iter_{i}.log",
    benchmark:
        "benchmarks/label/iter_{i}.tsv"
    wildcard_constraints:
        i=CP2K_ITERATIONS,
    retries: config["execution"]["retries"]
    localrule: on_pilots("label")
    conda:
        "../../envs/cp2k.yaml"
    threads: config["execution"]["label"]["cores"]
    resources:
        **job_resources("label", config["execution"]["label"]["cores"]),
    params:
        reference=config["reference"],
        run_dir=lambda w: f"logs/parsl/label/iter_{w.i}",
        # not an output: Snakemake must not delete it when a run is killed
        cache_dir=lambda w: f"results/iter_{w.i}/label_cache",
    message:
        "Label iteration {wildcards.i}: CP2K single points of the selected frames"
    script:
        "../../scripts/label.py"


rule isolated_atoms:
    input:
        template=config["reference"]["input"],
        structures=config["system"]["structures"],
    output:
        energies="results/isolated_atoms.csv",
    log:
        "logs/isolated_atoms/isolated_atoms.log",
    benchmark:
        "benchmarks/isolated_atoms/isolated_atoms.tsv"
    retries: config["execution"]["retries"]
    conda:
        "../../envs/cp2k.yaml"
    threads: config["reference"]["mpi_ranks"] * config["reference"]["omp_threads"]
    resources:
        **job_resources(
            "label",
            config["reference"]["mpi_ranks"] * config["reference"]["omp_threads"],
        ),
    params:
        reference=config["reference"],
        system=config["system"],
    message:
        "Isolated atoms: one CP2K single point per element"
    script:
        "../../scripts/isolated_atoms.py"


if config["bootstrap"]["initial_data"]:

    rule import_initial_data:
        input:
            data=config["bootstrap"]["initial_data"],
        output:
            labeled="results/iter_0/labeled.h5",
        log:
            "logs/import_initial_data/iter_0.log",
        benchmark:
            "benchmarks/import_initial_data/iter_0.tsv"
        localrule: True
        conda:
            "../../envs/analysis.yaml"
        message:
            "Iteration 0 from the labeled data in {input.data}"
        script:
            "../../scripts/import_initial_data.py"
