# The dataset of all labels so far, and one nequip-train job per committee member.


rule dataset:
    input:
        labeled=paths.iteration_file("labeled.h5"),
        previous=previous_dataset,
    output:
        dataset=paths.iteration_file("dataset.h5"),
    log:
        log_of("dataset"),
    benchmark:
        benchmark_of("dataset")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    message:
        "Dataset iteration {wildcards.i}: all labels of iterations 0..{wildcards.i}"
    script:
        "../../scripts/dataset.py"


rule train:
    input:
        dataset=paths.iteration_file("dataset.h5"),
        isolated=isolated_atoms,
        warm_start=warm_start_model,
    output:
        model=paths.member_model(),
    log:
        log_of("train", "iter_{i}_member_{m}"),
    benchmark:
        benchmark_of("train", "iter_{i}_member_{m}")
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["train"]["threads"]
    resources:
        **resources_of("train", config["execution"]["train"]["threads"]),
    params:
        settings=lambda w: settings.training(config, iteration_of(w)),
    message:
        "Train iteration {wildcards.i}, committee member {wildcards.m}"
    script:
        "../../scripts/train.py"
