# Learning curve and summary over all iterations.


rule summary:
    input:
        metrics=expand("results/iter_{i}/metrics.csv", i=range(LAST + 1)),
        datasets=expand("results/iter_{i}/dataset.h5", i=range(LAST + 1)),
        candidates=expand("results/iter_{i}/candidates.h5", i=range(1, LAST + 1)),
        parity=f"results/iter_{LAST}/parity.npz",
        models=committee(LAST),
    output:
        metrics=report(
            "results/summary/metrics.csv",
            caption="../report/metrics.rst",
            category="Learning",
        ),
        curve=report(
            "results/summary/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Learning",
        ),
        parity=report(
            "results/summary/parity.png",
            caption="../report/parity.rst",
            category="Learning",
        ),
        deviations=report(
            "results/summary/deviations.png",
            caption="../report/deviations.rst",
            category="Sampling",
        ),
        walkers=report(
            "results/summary/walkers.csv",
            caption="../report/walkers.rst",
            category="Sampling",
        ),
        provenance=report(
            "results/summary/provenance.yaml",
            caption="../report/provenance.rst",
            category="Provenance",
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
    params:
        config=config,
        repository=Path(workflow.basedir).parent,
        trust_lo=config["selection"]["trust_lo"],
        trust_hi=config["selection"]["trust_hi"],
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
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["train"]["threads"]
    resources:
        **job_resources("train", config["execution"]["train"]["threads"]),
    params:
        accelerator=config["execution"]["train"]["accelerator"],
    message:
        "Compile member {wildcards.m} of the final committee (nequip-compile, AOTInductor)"
    script:
        "../../scripts/compile.py"
