#!/bin/bash
# Download (or build, for sdist-only packages) the Python 3.12 x86-64 wheels that a bare CUDA machine with
# PyTorch, pandas, h5py, matplotlib, pytorch-lightning and pytest (but no internet) lacks for
# benchmarks/device/gpu_check.sh, into .whl/ (git-ignored). The list is what `run_benchmarks.py --only md`
# and tests/test_cuda.py import, minus what such an image already holds; versions as in envs/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
PY=${PYTHON:-python3}
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    ase==3.29.0 matscipy==1.3.1 schnetpack==2.2.0 torch-ema==0.3 vesin==0.6.2 fasteners==0.20 omegaconf==2.3.1
# pure-Python packages published as sdists only
$PY -m pip wheel --quiet --no-deps -w .whl antlr4-python3-runtime==4.9.3 progressbar==2.5 dirsync==2.2.6
ls .whl
