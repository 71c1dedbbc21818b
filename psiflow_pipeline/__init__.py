"""psiflow's pipeline library: the frame store, CP2K labeling, NequIP
committees, walkers, selection and the execution context that the rule
scripts of the Snakemake workflow share."""
