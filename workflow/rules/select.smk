# Iteration i > 0: frames on which the committee disagrees, within the trust region.


rule select:
    input:
        candidates="results/iter_{i}/candidates.h5",
    output:
        selected="results/iter_{i}/selected.h5",
    log:
        "logs/select/iter_{i}.log",
    benchmark:
        "benchmarks/select/iter_{i}.tsv"
    wildcard_constraints:
        i=r"[1-9]\d*",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        selection=config["selection"],
        seed=config["seed"],
    message:
        "Select iteration {wildcards.i}: at most {params.selection[max_per_iteration]} frames"
    script:
        "../../scripts/select_frames.py"
