# Helpers shared by the rules: paths per iteration and the previous iteration.

LAST = config["iterations"]
# iteration 0 comes from the user's labeled data instead of CP2K when given
CP2K_ITERATIONS = r"[1-9]\d*" if config["bootstrap"]["initial_data"] else r"\d+"
# AOTInductor compiles C++; without a compiler the packaged (eager) models are the product
COMPILE = config["model"]["compile"] and shutil.which("c++") is not None


wildcard_constraints:
    i=r"\d+",
    m=r"\d+",


def committee(i):
    """The deployable models of iteration i."""
    return [
        f"results/iter_{i}/models/member_{m}/model.nequip.zip"
        for m in range(config["model"]["committee"])
    ]


def previous_committee(wildcards):
    return committee(int(wildcards.i) - 1)


def previous(name):
    """Input function: results/iter_{i-1}/<name>."""

    def of(wildcards):
        return f"results/iter_{int(wildcards.i) - 1}/{name}"

    return of


def previous_dataset(wildcards):
    i = int(wildcards.i)
    return [] if i == 0 else [f"results/iter_{i - 1}/dataset.h5"]


def evaluate_input(wildcards):
    i = int(wildcards.i)
    inputs = {
        "dataset": f"results/iter_{i}/dataset.h5",
        "labeled": f"results/iter_{i}/labeled.h5",
        "models": committee(i),
        "isolated": isolated_atoms(wildcards),
        "test_set": (
            [config["evaluation"]["test_set"]]
            if config["evaluation"]["test_set"]
            else []
        ),
    }
    if i > 0:
        inputs["previous_models"] = committee(i - 1)
    return inputs


def isolated_atoms(wildcards):
    """The isolated-atom energies, when the config asks for them."""
    return (
        ["results/isolated_atoms.csv"] if config["reference"]["isolated_atoms"] else []
    )


def warm_start_model(wildcards):
    """Member m of iteration i-1, which member m of iteration i starts from."""
    i = int(wildcards.i)
    if config["model"]["warm_start"] and i > 0:
        return [f"results/iter_{i - 1}/models/member_{wildcards.m}/model.nequip.zip"]
    return []


def final_model_files():
    """The final committee as shipped in results/summary/model/."""
    members = range(config["model"]["committee"])
    files = [f"results/summary/model/member_{m}.nequip.zip" for m in members]
    if COMPILE:
        files += [f"results/summary/model/member_{m}.nequip.pt2" for m in members]
    return files


def job_resources(group, cpus):
    return psiflow.execution.job_resources(config["execution"], group, cpus)


def on_pilots(group):
    """Whether the tasks of execution.<group> run on pilot jobs: the job
    then only coordinates them and runs in the Snakemake process."""
    return config["execution"][group]["provider"] == "slurm"
