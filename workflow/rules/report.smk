# Learning curve and summary over all iterations.


rule summary:
    input:
        metrics=expand("results/iter_{i}/metrics.csv", i=range(LAST + 1)),
        models=committee(LAST),
    output:
        metrics="results/summary/metrics.csv",
        curve=report(
            "results/summary/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Learning",
        ),
        models=directory("results/summary/final_model"),
    log:
        "logs/summary/summary.log",
    benchmark:
        "benchmarks/summary/summary.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    message:
        "Summary over iterations 0..{LAST}"
    script:
        "../../scripts/summary.py"
