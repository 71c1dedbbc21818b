# Errors of the new committee on train/valid, and of the previous committee on
# the fresh labels of this iteration (the honest out-of-sample error).


rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        metrics="results/iter_{i}/metrics.csv",
        parity="results/iter_{i}/parity.npz",
    log:
        "logs/evaluate/iter_{i}.log",
    benchmark:
        "benchmarks/evaluate/iter_{i}.tsv"
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["evaluate"]["threads"]
    resources:
        **job_resources("evaluate", config["execution"]["evaluate"]["threads"]),
    params:
        valid_fraction=config["model"]["valid_fraction"],
    message:
        "Evaluate iteration {wildcards.i}"
    script:
        "../../scripts/evaluate.py"
