"""The figures of the README's "Higher angular order" table and text, from the committed histories, run summaries
and test errors in this folder: steps, ms per step, best validation errors, force at fixed steps, test errors.

Run from this folder: python3 probe_figures.py
"""

import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RUNS = ["painn_lr1e-3", "so3net_l2_lr1e-3", "so3net_l2_lr5e-4", "so3net_l3_lr1e-3"]

rows = []
for run in RUNS:
    history = pd.read_csv(HERE / f"history_scratch_{run}.csv").set_index("step")
    summary = json.loads((HERE / f"summary_scratch_{run}.json").read_text())
    force = history["val_force_mae_mev_ang"]
    rows.append({"run": run, "parameters": summary["n_parameters"], "steps": summary["stopped_step"],
                 "ms_per_step": round(1000 * summary["train_wall_time_s"] / summary["stopped_step"]),
                 "best_force": round(summary["best_val_force_mae_mev_ang"], 1),
                 "best_energy": round(summary["best_val_energy_mae_mev_atom"], 2), "best_step": summary["best_step"],
                 "force_at_1250": round(force.get(1250, float("nan")), 1),
                 "force_at_2100": round(force.get(2100, float("nan")), 1),
                 "last_50_step_change": round(force.iloc[-1] - force.iloc[-2], 2),
                 "stop_reason": summary["stop_reason"], "device": summary["device_name"]})
print(pd.DataFrame(rows).to_string(index=False))
for path in sorted(HERE.glob("test_errors_*.csv")):
    test = pd.read_csv(path)
    print(f"\n{path.name}")
    print(test[["group", "n_structures", "force_mae_mev_ang", "energy_mae_mev_atom"]].round(2).to_string(index=False))
