#!/bin/bash
# Everything benchmarks/device/gpu_search.sh needs, made here (this machine, with .venv) in one command:
#   benchmarks/device/prepare_search.sh config/X.yaml
# 1. the wheels a bare CUDA machine lacks, into .whl/ (fetch_wheels.sh; skipped when .whl/ has wheels);
# 2. the config validated, schema defaults filled in, as .probe/config.json (the GPU machine has no Snakemake);
# 3. the data and split files the search reads (and a study source model, for transfer candidates without their
#    own), made by the workflow in a scratch directory beside the repository, where the configs' ../shared paths
#    resolve, and copied to .probe/results/ (.probe/ and .whl/ are git-ignored; .probe/ is replaced once all
#    of it is made, and left as it was when a step fails).
# Environment: PROBE (default: .probe in the repository) names another folder; SKIP_WHEELS=1 leaves out step 1;
# PYTHON (default: the repository's .venv/bin/python, whose Snakemake runs step 3); CORES (default 2).
# Then, on the lent machine (device tool: `run` with carry [".whl", ".probe"]):
#   bash benchmarks/device/gpu_search.sh .probe/config.json .probe/results [limit_s]
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 CONFIG.yaml" >&2; exit 2; }
CONFIG=$(realpath "$1")  # paths as the caller gave them, before the cd below
REPO=$(realpath "$(dirname "$0")/../..")
PROBE=$(realpath -m "${PROBE:-$REPO/.probe}")
PYTHON=$(realpath --no-symlinks "${PYTHON:-$REPO/.venv/bin/python}")  # a venv's python is a link
cd "$REPO"
[ -n "${SKIP_WHEELS:-}" ] || ls .whl/*.whl > /dev/null 2>&1 || benchmarks/device/fetch_wheels.sh
WORK=$(mktemp -d "$(dirname "$REPO")/prepare-search.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" benchmarks/device/run_search.py --config "$CONFIG" --write-validated "$WORK/config.json"
# not `mapfile < <(...)`: a failure there would go unseen and leave no targets, i.e. the whole workflow
listing=$("$PYTHON" benchmarks/device/run_search.py --validated "$WORK/config.json" --results results --list-inputs)
[ -n "$listing" ] || { echo "error: $CONFIG: the search reads no input files" >&2; exit 1; }
mapfile -t TARGETS <<< "$listing"
"$(dirname "$PYTHON")/snakemake" --cores "${CORES:-2}" --configfile "$CONFIG" --directory "$WORK/run" -- "${TARGETS[@]}"
rm -rf "$PROBE"
mkdir -p "$PROBE"
cp "$WORK/config.json" "$PROBE/config.json"
for target in "${TARGETS[@]}"; do
  mkdir -p "$PROBE/$(dirname "$target")"
  cp "$WORK/run/$target" "$PROBE/$target"
done
echo "ready: $PROBE/config.json and ${#TARGETS[@]} input files below $PROBE/results"
