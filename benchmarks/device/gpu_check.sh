#!/bin/bash
# The GPU check, run on a lent CUDA machine from the repository root (device tool: `run` with carry [".whl"]
# after benchmarks/device/fetch_wheels.sh here): the CUDA tests and the GPU MD benchmark with batched
# replicas. Writes gpu.txt, test_cuda.log, bench.log and benchmarks_gpu_md.{json,md} to $OUT
# (default benchmarks/results/gpu). About 3-5 minutes on an H200.
set -o pipefail
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"
tests_rc=$?
python3 benchmarks/run_benchmarks.py --only md --device cuda --supercells 2 4 --replicas 1 4 16 64 \
  --md-steps 400 --repeats 3 --out "$OUT/benchmarks_gpu_md" 2>&1 | tee "$OUT/bench.log"
bench_rc=$?
exit $(( tests_rc || bench_rc ))
