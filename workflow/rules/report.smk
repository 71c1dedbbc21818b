# Learning curve and summary over all iterations, and the final committee.


rule summary:
    input:
        metrics=[paths.iteration_file("metrics.csv", i) for i in range(LAST + 1)],
        datasets=[paths.iteration_file("dataset.h5", i) for i in range(LAST + 1)],
        candidates=[
            paths.iteration_file("candidates.h5", i) for i in range(1, LAST + 1)
        ],
        parity=paths.iteration_file("parity.npz", LAST),
        models=committee(LAST),
    output:
        metrics=report(
            paths.summary_file("metrics.csv"),
            caption="../report/metrics.rst",
            category="Learning",
        ),
        curve=report(
            paths.summary_file("learning_curve.png"),
            caption="../report/learning_curve.rst",
            category="Learning",
        ),
        parity=report(
            paths.summary_file("parity.png"),
            caption="../report/parity.rst",
            category="Learning",
        ),
        deviations=report(
            paths.summary_file("deviations.png"),
            caption="../report/deviations.rst",
            category="Sampling",
        ),
        walkers=report(
            paths.summary_file("walkers.csv"),
            caption="../report/walkers.rst",
            category="Sampling",
        ),
        provenance=report(
            paths.summary_file("provenance.yaml"),
            caption="../report/provenance.rst",
            category="Provenance",
        ),
        readme=paths.summary_file("model/README.md"),
        models=[paths.final_model(m) for m in range(config["model"]["committee"])],
    log:
        log_of("summary", "summary"),
    benchmark:
        benchmark_of("summary", "summary")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=settings.summary(config),
    message:
        f"Summary over iterations 0..{LAST}"
    script:
        "../../scripts/summary.py"


rule compile:
    input:
        package=paths.member_model(LAST, "{m}"),
        dataset=paths.iteration_file("dataset.h5", LAST),
    output:
        compiled=paths.final_model("{m}", "nequip.pt2"),
    log:
        log_of("compile", "member_{m}"),
    benchmark:
        benchmark_of("compile", "member_{m}")
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["train"]["threads"]
    resources:
        **resources_of("train", config["execution"]["train"]["threads"]),
    params:
        settings=settings.final_model(config),
    message:
        "Compile member {wildcards.m} of the final committee (nequip-compile, AOTInductor)"
    script:
        "../../scripts/compile.py"
