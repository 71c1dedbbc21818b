# Learning curve and summary over all iterations, and the final committee.


rule summary:
    input:
        unpack(summary_input),
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
        calibration=report(
            paths.summary_file("calibration.png"),
            caption="../report/calibration.rst",
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
        text=report(
            paths.summary_file("summary.txt"),
            caption="../report/summary.rst",
            category="Learning",
        ),
        models=[paths.final_model(m) for m in range(config["model"]["committee"])],
    log:
        log_of("summary", "summary"),
    benchmark:
        benchmark_of("summary", "summary")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=lambda w: settings.summary(config, final_iteration()),
    message:
        "Summary of the run"
    script:
        "../../scripts/summary.py"


rule compile:
    input:
        package=lambda w: paths.member_model(final_iteration(), w.m),
        dataset=lambda w: paths.iteration_file("dataset.h5", final_iteration()),
        decisions=stop_decisions,
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
        settings=lambda w: settings.final_model(final_iteration()),
    message:
        "Compile member {wildcards.m} of the final committee (nequip-compile, AOTInductor)"
    script:
        "../../scripts/compile.py"


rule validate:
    input:
        models=final_committee_for_md,
        decisions=stop_decisions,
        structures=config_files(config["system"]["structures"]),
        reference=config_files(config["validation"]["reference"]),
    output:
        series=paths.validation_file("series.csv"),
        rdf=paths.validation_file("rdf.csv"),
        figure=report(
            paths.validation_file("validation.png"),
            caption="../report/validation.rst",
            category="Validation",
        ),
        verdict=paths.validation_file("verdict.yaml"),
    log:
        log_of("validate", "validate"),
    benchmark:
        benchmark_of("validate", "validate")
    retries: config["execution"]["retries"]
    conda:
        "../../envs/training.yaml"
    threads: config["execution"]["evaluate"]["threads"]
    resources:
        **resources_of("evaluate", config["execution"]["evaluate"]["threads"]),
    params:
        settings=lambda w: settings.validation(config, final_iteration()),
    message:
        "Validate the final committee: a production MD and its structure"
    script:
        "../../scripts/validate.py"
