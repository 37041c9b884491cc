"""The component order of mlearn's virial_stress, seen by a model trained on energies and forces only: correlation
of its predicted stresses with the labels read in each candidate order (Ge training file, every 4th structure).
Run from the repository root:
  .venv/bin/python results/summaries/mlearn_full_stress_cpu/stress_order_check.py MODEL.pt [path to mlearn]
"""

import json
import sys
from pathlib import Path

import numpy as np
from ase.units import GPa

from mlp_transfer import models
from mlp_transfer.evaluate import predict_outputs
from mlp_transfer.data.mlearn import read_mlearn_json

folder = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/mlearn")
frames = read_mlearn_json(folder / "Ge" / "training.json", "Ge")[::4]
raw = np.array([e["outputs"]["virial_stress"] for e in json.loads((folder / "Ge" / "training.json").read_text())][::4])
model = models.load_model(sys.argv[1])
models.set_stress_output(model, True)
pred = predict_outputs(model, frames, 6.0)[2]
pred_voigt = np.stack([pred[:, 0, 0], pred[:, 1, 1], pred[:, 2, 2], pred[:, 1, 2], pred[:, 0, 2], pred[:, 0, 1]], 1)
ase_index = {"xx": 0, "yy": 1, "zz": 2, "yz": 3, "xz": 4, "zx": 4, "xy": 5}
for order in ("xx yy zz xy yz zx", "xx yy zz yz xz xy", "xx yy zz xy xz yz"):
    labels = np.zeros_like(raw)
    for k, component in enumerate(order.split()):
        labels[:, ase_index[component]] = -0.1 * raw[:, k]  # kbar -> GPa, compression positive -> ASE's sign
    off = np.corrcoef(labels[:, 3:].ravel(), pred_voigt[:, 3:].ravel() / GPa)[0, 1]
    print(f"order {order}: off-diagonal correlation {off:.3f}")
