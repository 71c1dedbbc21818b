# Errors of the new committee on train/valid, and of the previous committee on
# the fresh labels of this iteration (the honest out-of-sample error).


def evaluate_input(wildcards):
    i = int(wildcards.i)
    inputs = {
        "dataset": f"results/iter_{i}/dataset.h5",
        "labeled": f"results/iter_{i}/labeled.h5",
        "models": committee(i),
    }
    if i > 0:
        inputs["previous_models"] = committee(i - 1)
    return inputs


rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        metrics="results/iter_{i}/metrics.csv",
    log:
        "logs/evaluate/iter_{i}.log",
    benchmark:
        "benchmarks/evaluate/iter_{i}.tsv"
    params:
        valid_fraction=config["model"]["valid_fraction"],
    threads: config["execution"]["evaluate"]["threads"]
    conda:
        "../../envs/training.yaml"
    message:
        "Evaluate iteration {wildcards.i}"
    script:
        "../../scripts/evaluate.py"
