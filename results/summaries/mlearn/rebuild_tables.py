"""Provenance of the committed mlearn.yaml tables in this folder, and the commands that rebuilt them.

The study ran over several sessions. The raw results of its first 32 runs (models, histories, evaluation and
property CSVs) are gone; their per-run tables are kept here. The last 4 runs (both regimes at full data,
seeds 1 and 2) were trained later in a fresh directory RUN_DIR (same config; the Si source model retrained
there reproduced the earlier one's stop step and Si test errors exactly). This script rebuilds the tables of
the whole 36-run grid from both:

    .venv/bin/python results/summaries/mlearn/rebuild_tables.py RUN_DIR      # once: it rewrites this folder

1. learning-curve, summary, comparison and training-run tables and the learning-curve plots:
   ``mlp-transfer aggregate --previous`` on this folder plus RUN_DIR/results (the grid of config/mlearn.yaml).
   The earlier tables hold no ``convergence_runs.csv``, so the convergence summary is left as committed
   (32 runs; it says so); RUN_DIR's convergence rows are written beside it as ``convergence_runs_new.csv``.
2. properties: the earlier per-model property rows are gone, but a (regime, size) group with one model has
   that model's values as its mean; the full-data groups (seed 0 only) are therefore rebuilt exactly from
   those rows plus RUN_DIR's per-model tables, and every other group's rows are kept as committed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def rebuild_learning_curve(run_dir: Path, folder: Path = HERE) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tables, plots = Path(tmp) / "tables", Path(tmp) / "plots"
        subprocess.run([str(Path(sys.executable).with_name("mlp-transfer")), "aggregate", "--results",
                        str(run_dir / "results"), "--configfile", str(REPO / "config" / "mlearn.yaml"),
                        "--previous", str(folder), "--tables", str(tables), "--plots", str(plots)], check=True)
        for name in ("learning_curve.csv", "summary.md", "comparison.md", "training_runs.csv"):
            shutil.copy(tables / name, folder / name)
        shutil.copy(tables / "convergence_runs.csv", folder / "convergence_runs_new.csv")
        for png in plots.glob("learning_curve_*.png"):
            shutil.copy(png, folder / png.name)
    (folder / "missing_runs.csv").unlink(missing_ok=True)


def rebuild_properties(run_dir: Path, folder: Path = HERE) -> None:
    from mlp_transfer.io import write_csv, write_text
    from mlp_transfer.properties_aggregate import KEYS, collect, markdown, summarise

    earlier = pd.read_csv(folder / "properties_summary.csv")
    fresh = collect(sorted((run_dir / "results" / "properties").glob("*/*-*/*/n*/seed*.csv")))
    groups = fresh[["regime", "n_train"]].drop_duplicates()
    replaced = earlier.merge(groups, on=["regime", "n_train"])
    if (replaced["n_models"] != 1).any():
        raise SystemExit("error: a group to rebuild holds more than one earlier model; its values are not recoverable")
    # a one-model group's mean is that model's value, its mean error that model's error
    recovered = replaced.rename(columns={"value_mean": "value", "error_mean": "error"})
    recovered = recovered.assign(seed=-1, rel_error=float("nan"), note="")[fresh.columns]
    rebuilt = summarise(pd.concat([recovered, fresh], ignore_index=True))
    keep = earlier.merge(groups, on=["regime", "n_train"], how="left", indicator=True)
    keep = keep[keep["_merge"] == "left_only"].drop(columns="_merge")
    order = earlier[KEYS].reset_index().rename(columns={"index": "_order"})
    summary = pd.concat([keep, rebuilt], ignore_index=True).merge(order, on=KEYS).sort_values("_order")
    summary = summary.drop(columns="_order")[earlier.columns]
    write_csv(summary, folder / "properties_summary.csv")
    write_text(folder / "properties_summary.md", markdown(summary))
    write_csv(fresh, folder / "properties_new_models.csv")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    directory = Path(sys.argv[1]).resolve()
    rebuild_learning_curve(directory)
    rebuild_properties(directory)
