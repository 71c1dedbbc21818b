# Helpers shared by the rules: the iterations, file patterns, and the settings
# that become each job's params (psiflow_pipeline.settings).

# with a stop criterion, a checkpoint after each iteration decides whether the next one exists
STOP = stop_criteria_set(config["stop"])
# iteration 0 comes from the user's labeled data instead of CP2K when given
CP2K_ITERATIONS = r"[1-9]\d*" if config["bootstrap"]["initial_data"] else r"\d+"
# AOTInductor compiles C++; without a compiler the packaged (eager) models are the product
COMPILE = config["model"]["compile"] and can_compile()
# settings that are the same in every iteration, worked out once
LABEL_SETTINGS = settings.label(config)
EVALUATION_SETTINGS = settings.evaluation(config)


wildcard_constraints:
    i=r"\d+",
    m=r"\d+",


def config_files(files):
    """Files the config names, as inputs whose modification time never reruns
    a job: their content is part of the job's params (psiflow_pipeline.settings),
    so a copy or a touch elsewhere changes nothing, and an edit reruns exactly
    the jobs that read them."""
    return [ancient(f) for f in files] if isinstance(files, list) else ancient(files)


def log_of(rule, name="iter_{i}"):
    return paths.log_file(rule, name)


def benchmark_of(rule, name="iter_{i}"):
    return paths.benchmark_file(rule, name)


def iteration_of(wildcards):
    return int(wildcards.i)


def committee(i):
    """The deployable models of iteration i."""
    return [paths.member_model(i, m) for m in range(config["model"]["committee"])]


def previous_committee(wildcards):
    return committee(iteration_of(wildcards) - 1)


def previous_walkers(wildcards):
    """The walker states the sample step of iteration i continues from (none in iteration 1)."""
    i = iteration_of(wildcards)
    return [paths.iteration_file("walkers.h5", i - 1)] if i > 1 else []


def previous_dataset(wildcards):
    i = iteration_of(wildcards)
    return [paths.iteration_file("dataset.h5", i - 1)] if i > 0 else []


def evaluate_input(wildcards):
    i = iteration_of(wildcards)
    inputs = {
        "dataset": paths.iteration_file("dataset.h5", i),
        "labeled": paths.iteration_file("labeled.h5", i),
        "models": committee(i),
        "isolated": isolated_atoms(wildcards),
        "test_set": config_files(config["evaluation"]["test_set"]),
    }
    if i > 0:
        inputs["previous_models"] = committee(i - 1)
    return inputs


def isolated_atoms(wildcards):
    """The isolated-atom energies, when the config asks for them."""
    return [paths.ISOLATED_ATOMS] if config["reference"]["isolated_atoms"] else []


def warm_start_model(wildcards):
    """Member m of iteration i-1, which member m of iteration i starts from."""
    i = iteration_of(wildcards)
    if i > 0 and settings.training(config, i)["warm_start"]:
        return [paths.member_model(i - 1, wildcards.m)]
    return []


def final_iteration():
    """The iteration whose committee is delivered: `iterations`, or the first
    one after which the stop criteria were met. Only for input (and params)
    functions: it waits for the checkpoints it reads."""
    if STOP:
        for i in range(1, config["iterations"]):
            decision = checkpoints.decide.get(i=i).output.decision
            if yaml.safe_load(Path(decision).read_text())["stop"]:
                return i
    return config["iterations"]


def stop_decisions(wildcards):
    """The decisions final_iteration() reads: inputs of the rules that use it."""
    if not STOP:
        return []
    return [
        paths.stop_decision(i)
        for i in range(1, min(final_iteration() + 1, config["iterations"]))
    ]


def summary_input(wildcards):
    """Every iteration's metrics and data up to the final one, whose committee is shipped."""
    last = final_iteration()
    return {
        "metrics": [paths.iteration_file("metrics.csv", i) for i in range(last + 1)],
        "datasets": [paths.iteration_file("dataset.h5", i) for i in range(last + 1)],
        "candidates": [
            paths.iteration_file("candidates.h5", i) for i in range(1, last + 1)
        ],
        "parity": paths.iteration_file("parity.npz", last),
        "fresh_parity": [
            paths.iteration_file("parity.npz", i) for i in range(1, last + 1)
        ],
        "models": committee(last),
        "verdict": validation_verdict(),
        "decisions": stop_decisions(wildcards),
    }


def final_model_files():
    """The final committee as shipped in results/summary/model/."""
    members = range(config["model"]["committee"])
    files = [paths.final_model(m) for m in members]
    if COMPILE:
        files += [paths.final_model(m, "nequip.pt2") for m in members]
    return files


def final_committee_for_md(wildcards):
    """The final committee as MD runs it: compiled where it is compiled."""
    if COMPILE:
        return [
            paths.final_model(m, "nequip.pt2")
            for m in range(config["model"]["committee"])
        ]
    return committee(final_iteration())


def validation_verdict():
    return (
        [paths.validation_file("verdict.yaml")]
        if config["validation"]["enabled"]
        else []
    )


def resources_of(group, cpus):
    return job_resources(config["execution"], group, cpus)


def on_pilots(group):
    """Whether the tasks of execution.<group> run on pilot jobs: the job
    then only coordinates them and runs in the Snakemake process."""
    return config["execution"][group]["provider"] == "slurm"


def plumed_inputs():
    return sorted({w["plumed"] for w in config["walkers"] if w["plumed"]})
