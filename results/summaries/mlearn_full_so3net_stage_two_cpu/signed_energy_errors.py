"""Signed energy errors (predicted - DFT, meV/atom) per structure and mlearn group of the Ge test set, for models
given on the command line: shows whether a group's energy MAE is scatter or a systematic shift.

    python3 signed_energy_errors.py --test results/data/mlearn/Ge/test.extxyz MODEL.pt [MODEL.pt ...]
"""

import argparse

import ase.io
import numpy as np

from mlp_transfer import models
from mlp_transfer.evaluate import predict

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--test", required=True)
parser.add_argument("--cutoff", type=float, default=6.0)
parser.add_argument("models", nargs="+")
args = parser.parse_args()
frames = ase.io.read(args.test, ":")
for path in args.models:
    energies, _ = predict(models.load_model(path), frames, args.cutoff)
    for group in sorted({atoms.info.get("group") for atoms in frames}):
        errors = [(energies[i] - atoms.get_potential_energy()) / len(atoms) * 1000
                  for i, atoms in enumerate(frames) if atoms.info.get("group") == group]
        print(f"{path}  {group}: mean {np.mean(errors):+.2f}  each {np.round(errors, 2).tolist()}")
