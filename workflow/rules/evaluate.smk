# Errors of the new committee on train/valid, and of the previous committee on
# the fresh labels of this iteration (the honest out-of-sample error).


rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        metrics=paths.iteration_file("metrics.csv"),
        parity=paths.iteration_file("parity.npz"),
    log:
        log_of("evaluate"),
    benchmark:
        benchmark_of("evaluate")
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["evaluate"]["threads"]
    resources:
        **resources_of("evaluate", config["execution"]["evaluate"]["threads"]),
    params:
        settings=EVALUATION_SETTINGS,
    message:
        "Evaluate iteration {wildcards.i}"
    script:
        "../../scripts/evaluate.py"
