"""Signed energy errors (predicted - DFT, meV/atom) per structure and mlearn group of the Ge test set, for models
given on the command line: shows whether a group's energy MAE is scatter or a systematic shift. Groups as
``mlp-transfer evaluate --group-by group`` reports them.

    python3 signed_energy_errors.py --test results/data/mlearn/Ge/test.extxyz MODEL.pt [MODEL.pt ...]
"""

import argparse

import numpy as np

from mlp_transfer import models
from mlp_transfer.evaluate import labelled_subsets, predict, read_test_frames

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--test", required=True)
parser.add_argument("--cutoff", type=float, default=6.0)
parser.add_argument("models", nargs="+")
args = parser.parse_args()
frames = read_test_frames(args.test, "group")
n_atoms = np.array([len(atoms) for atoms in frames])
reference = np.array([atoms.get_potential_energy() for atoms in frames])
for path in args.models:
    energies, _ = predict(models.load_model(path), frames, args.cutoff)
    errors = (energies - reference) / n_atoms * 1000
    for labels, idx in labelled_subsets(frames, "group"):
        print(f"{path}  {labels['group']}: mean {errors[idx].mean():+.2f}  each {np.round(errors[idx], 2).tolist()}")
