# The dataset of all labels so far, and one nequip-train job per committee member.


rule dataset:
    input:
        labeled="results/iter_{i}/labeled.h5",
        previous=previous_dataset,
    output:
        dataset="results/iter_{i}/dataset.h5",
    log:
        "logs/dataset/iter_{i}.log",
    benchmark:
        "benchmarks/dataset/iter_{i}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        valid_fraction=config["model"]["valid_fraction"],
    message:
        "Dataset iteration {wildcards.i}: all labels of iterations 0..{wildcards.i}"
    script:
        "../../scripts/dataset.py"


rule train:
    input:
        dataset="results/iter_{i}/dataset.h5",
        isolated=isolated_atoms,
        warm_start=warm_start_model,
    output:
        model="results/iter_{i}/models/member_{m}/model.nequip.zip",
    log:
        "logs/train/iter_{i}_member_{m}.log",
    benchmark:
        "benchmarks/train/iter_{i}_member_{m}.tsv"
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["train"]["threads"]
    resources:
        **job_resources("train", config["execution"]["train"]["threads"]),
    params:
        model=config["model"],
        seed=config["seed"],
        accelerator=config["execution"]["train"]["accelerator"],
        workdir=lambda w: f"results/iter_{w.i}/models/member_{w.m}/training",
    message:
        "Train iteration {wildcards.i}, committee member {wildcards.m}"
    script:
        "../../scripts/train.py"
