#!/bin/bash
# The GPU check, run on a lent CUDA machine from the repository root (device tool: `run` with carry [".whl"]
# after benchmarks/device/fetch_wheels.sh here): the CUDA tests and the GPU MD benchmark with batched
# replicas. Writes gpu.txt, test_cuda.log, bench.log and benchmarks_gpu_md.{json,md} to $OUT
# (default benchmarks/results/gpu). About 3-5 minutes on an H200.
set -o pipefail
OUT=${OUT:-benchmarks/results/gpu}
source "$(dirname "$0")/prepare.sh"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"
tests_rc=$?
python3 benchmarks/run_benchmarks.py --only md --device cuda --supercells 2 4 --replicas 1 4 16 64 \
  --md-steps 400 --repeats 3 --out "$OUT/benchmarks_gpu_md" 2>&1 | tee "$OUT/bench.log"
bench_rc=$?
exit $(( tests_rc || bench_rc ))
