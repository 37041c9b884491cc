#!/bin/bash
# Size 10 of the stratified learning curve, started when the size-5 runs (run.sh) have finished.
while pgrep -f "strat_run/run.sh|mlearn_stratified_cpu.yaml" > /dev/null; do sleep 30; done
S="/work/main/.venv/bin/snakemake --snakefile /work/main/Snakefile --configfile /work/main/config/mlearn_stratified_cpu.yaml --cores 2 --set-threads train_target=1 --rerun-triggers mtime"
$S -- results/eval/mlearn/Si-Ge/{transfer,scratch}/n10/seed{0,1,2}.csv
