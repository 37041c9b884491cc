"""Validation errors (energy, force and, for models that predict it, stress) per mlearn group of the models in
this folder's table, on the search's Ge validation set (20 structures; the test set is not read).

Run from the directory the search ran in (config/mlearn_full_stress_cpu.yaml):
  .venv/bin/python results/summaries/mlearn_full_stress_cpu/validation_by_group.py OUT.csv NAME=MODEL.pt ...
Models trained without stresses are switched to predict them (the weights are unchanged), so their stress
errors are what an energy-and-force model implies.
"""

import json
import sys

import ase.io
import pandas as pd

from mlp_transfer import models
from mlp_transfer.evaluate import evaluate_model

frames = ase.io.read("results/data/mlearn/Ge/train.extxyz", ":")
validation = [frames[i] for i in json.load(open("results/splits/mlearn/Ge/seed0.json"))["validation"]]
tables = []
for spec in sys.argv[2:]:
    name, path = spec.split("=", 1)
    model = models.load_model(path)
    models.set_stress_output(model, True)
    table = evaluate_model(model, validation, cutoff=6.0, group_by="group")
    table.insert(0, "model", name)
    tables.append(table.drop(columns="test_set"))
pd.concat(tables).to_csv(sys.argv[1], index=False, float_format="%.4g")
print(pd.concat(tables).to_string(index=False))
