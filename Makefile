# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup run test lint

setup:
	bash scripts/setup.sh

run: setup
	snakemake --profile profiles/local

test:
	bash scripts/setup.sh --slurm
	python -m pytest

lint: setup
	ruff check . && ruff format --check . && snakefmt --check workflow && snakemake --lint
