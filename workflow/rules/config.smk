# The config: loaded (the default job from beside the workflow), validated
# with its defaults filled, its files located, and checked once per invocation.

# Where this workflow's own files are: its checkout, or (deployed as a module
# from a repository) Snakemake's source cache of that repository.
SOURCE = workflow.current_basedir  # workflow/rules
LOCAL_ROOT = (
    os.path.dirname(os.path.dirname(SOURCE.get_path_or_uri(secret_free=False)))
    if SOURCE.is_local
    else None
)


def shipped(path):
    """A file of this workflow's own (e.g. resources/cp2k/xtb.inp), or None."""
    if LOCAL_ROOT is not None:
        candidate = os.path.join(LOCAL_ROOT, path)
        return candidate if os.path.exists(candidate) else None
    try:
        return str(workflow.source_path(f"../../{path}"))
    except Exception:  # not among the repository's files
        return None


# the default job, found beside this file from any working directory. A file
# given with --configfile stands alone over the schema's defaults, so that the
# default job's system-bound settings (its test set, its validation reference)
# never leak into another system's study.
if not workflow.overwrite_configfiles:

    configfile: shipped("config/config.yaml")


# what envs/*.post-deploy.sh installs the library from: this checkout, or
# the repository and version a module was deployed from
os.environ.update(
    PSIFLOW_PIPELINE_SOURCE=LOCAL_ROOT
    or f"git+https://{SOURCE.host}/{SOURCE.repo}@{SOURCE.ref}"
)
# errors name the file the user gave (--configfile), else the default job's
CONFIG_SOURCE = (
    ", ".join(map(str, workflow.overwrite_configfiles or workflow.configfiles))
    or "config"
)
try:
    validate(config, CONFIG_SOURCE)
    locate_files(config, shipped)
    if workflow.is_main_process:  # once per invocation, not again in every cluster job
        from psiflow_pipeline.preflight import check_inputs

        check_inputs(config, CONFIG_SOURCE)
except ConfigError as error:
    raise WorkflowError(f"psiflow: bad input, nothing was run.\n{error}")
