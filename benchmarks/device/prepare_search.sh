#!/bin/bash
# Everything benchmarks/device/gpu_search.sh needs, made here (this machine, with .venv) in one command:
#   benchmarks/device/prepare_search.sh config/X.yaml
# 1. the wheels a bare CUDA machine lacks, into .whl/ (fetch_wheels.sh; skipped when .whl/ has wheels);
# 2. the config validated, schema defaults filled in, as .probe/config.json (the GPU machine has no Snakemake);
# 3. the data and split files the search reads (and a study source model, for transfer candidates without their
#    own), made by the workflow in a scratch directory beside the repository, where the configs' ../shared paths
#    resolve, and copied to .probe/results/ (.probe/ and .whl/ are git-ignored; .probe/ is replaced on every call).
# Environment: PROBE (default .probe) names another folder; SKIP_WHEELS=1 leaves out step 1; CORES (default 2).
# Then, on the lent machine (device tool: `run` with carry [".whl", ".probe"]):
#   bash benchmarks/device/gpu_search.sh .probe/config.json .probe/results [limit_s]
set -euo pipefail
CONFIG=$1
cd "$(dirname "$0")/../.."
REPO=$PWD
PROBE=${PROBE:-.probe}
[ -n "${SKIP_WHEELS:-}" ] || ls .whl/*.whl > /dev/null 2>&1 || benchmarks/device/fetch_wheels.sh
rm -rf "$PROBE"
mkdir -p "$PROBE"
.venv/bin/python benchmarks/device/run_search.py --config "$CONFIG" --write-validated "$PROBE/config.json"
WORK=$(mktemp -d "$(dirname "$REPO")/prepare-search.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mapfile -t TARGETS < <(.venv/bin/python benchmarks/device/run_search.py --validated "$PROBE/config.json" \
  --results results --list-inputs)
.venv/bin/snakemake --cores "${CORES:-2}" --configfile "$(realpath "$CONFIG")" --directory "$WORK" -- "${TARGETS[@]}"
for target in "${TARGETS[@]}"; do
  mkdir -p "$PROBE/$(dirname "$target")"
  cp "$WORK/$target" "$PROBE/$target"
done
echo "ready: $PROBE/config.json and ${#TARGETS[@]} input files below $PROBE/results"
