# Set-up and entry points. `make run` and `make test` set everything up first (idempotently: the virtual
# environment is rebuilt only when the requirement files change).
PYTHON ?= python3.11
VENV ?= .venv
CORES ?= all
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first and pinned: an unpinned torch (or a package pulling one) installs a multi-GB CUDA build.
# Cluster users who want CUDA wheels set e.g. TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu126".
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup run test test-slurm lint dryrun plan-paper bench-plan bench tables clean-results

setup: $(STAMP)

$(STAMP): envs/requirements.txt envs/requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt -r envs/requirements-test.txt
	# schnetpack 2.2 declares Python >= 3.12 but runs on 3.11; its dependencies are in requirements.txt.
	$(BIN)/python -m pip install --quiet --no-deps --ignore-requires-python schnetpack==2.2.0
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: setup
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES)

test: setup
	$(BIN)/pytest

# Only the cluster-path tests: a private single-node SLURM (root, slurm-wlm, munge) and the resume test.
test-slurm: setup
	$(BIN)/pytest tests/test_slurm.py tests/test_faults.py

# Job counts per rule, SLURM and GPU jobs of the paper-scale study (dry run, no data touched).
plan-paper: setup
	$(BIN)/mlp-transfer plan --configfile config/paper.yaml --profile workflow/profiles/slurm

bench-plan: setup
	$(BIN)/python benchmarks/plan_benchmark.py

# Throughput vs the baselines (spktrain, SpkCalculator, ASE MD) + planning; writes benchmarks/results/benchmarks.{json,md}.
bench: setup
	$(BIN)/python benchmarks/run_benchmarks.py

lint: setup
	$(BIN)/snakemake --lint

dryrun: setup
	$(BIN)/snakemake -n

tables: setup
	$(BIN)/mlp-transfer aggregate --results results --configfile config/config.yaml
	if [ -d results/md ]; then $(BIN)/mlp-transfer md-aggregate --results results; fi
	if [ -d results/properties ]; then $(BIN)/mlp-transfer properties-aggregate --results results; fi
	if [ -d results/eval_committee ]; then $(BIN)/mlp-transfer committee table \
		--inputs $$(find results/eval_committee -name '*.csv' | sort) \
		--out-csv results/tables/committee.csv --out-md results/tables/committee.md; fi
