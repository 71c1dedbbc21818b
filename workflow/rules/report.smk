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
        readme="results/summary/model/README.md",
        models=expand(
            "results/summary/model/member_{m}.nequip.zip",
            m=range(config["model"]["committee"]),
        ),
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


rule compile:
    input:
        package=f"results/iter_{LAST}/models/member_{{m}}/model.nequip.zip",
    output:
        compiled="results/summary/model/member_{m}.nequip.pt2",
    log:
        "logs/compile/member_{m}.log",
    benchmark:
        "benchmarks/compile/member_{m}.tsv"
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["train"]["threads"]
    params:
        accelerator=config["execution"]["train"]["accelerator"],
    message:
        "Compile member {wildcards.m} of the final committee (nequip-compile, AOTInductor)"
    script:
        "../../scripts/compile.py"
