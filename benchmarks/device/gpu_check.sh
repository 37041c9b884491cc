#!/bin/bash
# The GPU check, run on a lent CUDA machine from the repository root (device tool: `run` with carry [".whl"]
# after benchmarks/device/fetch_wheels.sh here): the CUDA tests and the GPU MD benchmark with batched
# replicas, and SO3net's training step (architectures). Writes gpu.txt, test_cuda.log, bench.log,
# benchmarks_gpu_md.{json,md} and architectures_gpu.{json,md} to $OUT
# (default benchmarks/results/gpu). About 3-5 minutes on an H200.
set -o pipefail
OUT=${OUT:-benchmarks/results/gpu}
source "$(dirname "$0")/prepare.sh"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"
tests_rc=$?
python3 benchmarks/run_benchmarks.py --only md --device cuda --supercells 2 4 --replicas 1 4 16 64 \
  --md-steps 400 --repeats 3 --out "$OUT/benchmarks_gpu_md" 2>&1 | tee "$OUT/bench.log"
bench_rc=$?
# SO3net's training step with the factorized convolution against schnetpack's on the card (lmax 3 with
# schnetpack's takes ~0.3 s a step there)
python3 benchmarks/run_benchmarks.py --only architectures --device cuda --repeats 3 --arch-steps 5 \
  --out "$OUT/architectures_gpu" 2>&1 | tee -a "$OUT/bench.log"
arch_rc=$?
exit $(( tests_rc || bench_rc || arch_rc ))
