# With a `stop` criterion: after iteration i, whether iteration i+1 exists.


checkpoint decide:
    input:
        metrics=paths.iteration_file("metrics.csv"),
        candidates=paths.iteration_file("candidates.h5"),
    output:
        decision=paths.stop_decision(),
    log:
        log_of("decide"),
    benchmark:
        benchmark_of("decide")
    wildcard_constraints:
        i=r"[1-9]\d*",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=lambda w: settings.stop(config, iteration_of(w)),
    message:
        "Decide whether the loop stops after iteration {wildcards.i}"
    script:
        "../../scripts/decide.py"
