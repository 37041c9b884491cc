#!/bin/bash
# PaiNN stage two with a 200-step warm-up (config/mlearn_full_stage_two_warmup_cpu.yaml), both regimes side by side,
# one thread each; data, splits and the Si source model copied from the stage-two run without warm-up (same config
# blocks, so the same files) and touched so that Snakemake's mtime trigger keeps them.
S="/work/main/.venv/bin/snakemake --snakefile /work/main/Snakefile --configfile /work/main/config/mlearn_full_stage_two_warmup_cpu.yaml --cores 2 --set-threads hpsearch_train=1 train_source=1 --rerun-triggers mtime"
$S -- results/tables/hyperparameter_search.csv
