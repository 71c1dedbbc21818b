"""NequIP committees: training configs, training and packaging, compilation,
the committee calculator and its uncertainty."""
