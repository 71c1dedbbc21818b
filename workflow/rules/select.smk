# Iteration i > 0: frames on which the committee disagrees, within the trust region.


rule select:
    input:
        candidates=paths.iteration_file("candidates.h5"),
    output:
        selected=paths.iteration_file("selected.h5"),
    log:
        log_of("select"),
    benchmark:
        benchmark_of("select")
    wildcard_constraints:
        i=r"[1-9]\d*",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=lambda w: settings.selection(config, iteration_of(w)),
    message:
        "Select iteration {wildcards.i}: at most {params.settings[max_per_iteration]} frames"
    script:
        "../../scripts/select_frames.py"
