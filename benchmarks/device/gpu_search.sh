#!/bin/bash
# A config's hyper-parameter search on a lent CUDA machine, its runs side by side on the one GPU, next to the
# CUDA tests. Run from the repository root there (device tool: `run` with carry [".whl", ".probe"]):
#   bash benchmarks/device/gpu_search.sh .probe/config.json .probe/results [limit_s]
# after, here: benchmarks/device/prepare_search.sh config/X.yaml (the wheels that machine lacks, into .whl/; the
#   validated config and the workflow's data and split files, into .probe/, which is git-ignored).
# Writes gpu.txt, gpu_usage.csv (nvidia-smi samples), test_cuda.log, search.log and runs.tar.gz (the runs'
# model.pt, history.csv, summary.json, checkpoints of killed runs, logs and the search tables) to $OUT (default benchmarks/results/gpu_search).
# The search is killed at limit_s (default 500) so that what finished still comes back.
set -o pipefail
CONFIG=$1 RESULTS=$2 LIMIT=${3:-500}
OUT=${OUT:-benchmarks/results/gpu_search}
source "$(dirname "$0")/prepare.sh"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$OUT/gpu_usage.csv" 2>&1 &
monitor=$!
(timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$OUT/test_cuda.log" 2>&1;
 echo "pytest exit $?" >> "$OUT/test_cuda.log") &
tests=$!
timeout "$LIMIT" python3 benchmarks/device/run_search.py --validated "$CONFIG" --results "$RESULTS" --jobs 8 2>&1 \
  | tee "$OUT/search.log"
search_rc=$?
wait $tests
kill $monitor 2> /dev/null
tar czf "$OUT/runs.tar.gz" -C "$RESULTS" --exclude='*.extxyz' hpsearch tables logs 2> /dev/null
tail -3 "$OUT/test_cuda.log"
exit $search_rc
