#!/bin/bash
# Size 25 of the stratified learning curve, added after sizes 5 and 10 had run. The config's sizes became
# [5, 10, 25]; the split JSONs are rewritten with the new size (the validation set and the size-5 and size-10
# subsets are prefixes of the same stratified order, so they must come out identical: checked below), and the
# size-5/10 models and evaluations are touched after them so that the mtime trigger keeps them.
set -euo pipefail
while pgrep -f "run10.sh" > /dev/null; do sleep 30; done
PY=/work/main/.venv/bin/python
$PY - <<'PYEOF'
import json
from mlp_transfer.splits import write_splits
for seed in (0, 1, 2):
    path = f"results/splits/mlearn/Ge/seed{seed}.json"
    old = json.load(open(path))
    new = write_splits("results/data/mlearn/Ge/train.extxyz", f"/tmp/strat_seed{seed}.json", [5, 10, 25], 20, seed,
                       stratify_by="group")
    assert new["validation"] == old["validation"], seed
    assert all(new["train"][k] == old["train"][k] for k in ("5", "10")), seed
    print(seed, "validation and sizes 5/10 unchanged; size 25:", new["train_groups"]["25"])
PYEOF
for seed in 0 1 2; do cp /tmp/strat_seed$seed.json results/splits/mlearn/Ge/seed$seed.json; done
sleep 1
find results/models/mlearn/Si-Ge -path "*/n5/*" -o -path "*/n10/*" | xargs touch
find results/benchmarks -type f | xargs touch
sleep 1
find results/eval/mlearn/Si-Ge -type f | xargs touch
S="/work/main/.venv/bin/snakemake --snakefile /work/main/Snakefile --configfile /work/main/config/mlearn_stratified_cpu.yaml --cores 2 --set-threads train_target=1 --rerun-triggers mtime"
$S -n -- results/eval/mlearn/Si-Ge/{transfer,scratch}/n{5,10,25}/seed{0,1,2}.csv | grep -A8 "^Job stats"
$S -- results/eval/mlearn/Si-Ge/{transfer,scratch}/n25/seed{0,1,2}.csv
