"""Random (config/mlearn.yaml) against stratified (config/mlearn_stratified_cpu.yaml) subsets, seed by seed.

    .venv/bin/python results/summaries/mlearn_stratified_cpu/compare.py RUN_DIR/results/data/mlearn/Ge/train.extxyz

Reads the study's committed learning curve (results/summaries/mlearn/learning_curve.csv) and the stratified
run's (learning_curve.csv beside this script) and writes comparison.csv and comparison.md here: Ge test-set
force and energy MAE per regime, size and seed, their mean and sample standard deviation over seeds, and the
transfer/scratch ratio of the means. The Ge training pool (the workflow's import of mlearn) gives each
subset's composition by mlearn group: the study's random subsets are redrawn with make_splits (the same
function and seeds), the stratified ones are read from the split JSONs copied here (splits/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from ase.io import read

from mlp_transfer.splits import group_counts, make_splits

HERE = Path(__file__).resolve().parent
STUDY = HERE.parent / "mlearn" / "learning_curve.csv"
METRICS = {"force_mae_mev_ang": "force MAE (meV/Å)", "energy_mae_mev_atom": "energy MAE (meV/atom)"}


def load() -> pd.DataFrame:
    random = pd.read_csv(STUDY).assign(subsets="random")
    stratified = pd.read_csv(HERE / "learning_curve.csv").assign(subsets="stratified")
    sizes = set(stratified["n_train"].astype(str))
    random = random[random["n_train"].astype(str).isin(sizes) & (random["test_set"] == "test")]
    both = pd.concat([random, stratified[stratified["test_set"] == "test"]], ignore_index=True)
    return both[["subsets", "regime", "n_train", "seed", *METRICS]]


def compositions(pool: str, sizes: list[int], seeds: list[int]) -> pd.DataFrame:
    """Group counts of every subset (and validation set) of both split kinds, as 'AIMD-NVT 2, Vacancy 3'."""
    labels = [atoms.info["group"] for atoms in read(pool, ":")]
    rows = []
    for seed in seeds:
        random = make_splits(len(labels), sizes, 20, seed)
        stratified = json.loads((HERE / "splits" / f"seed{seed}.json").read_text())
        for subsets, split in (("random", random), ("stratified", stratified)):
            rows.append({"subsets": subsets, "seed": seed, "n_train": "validation",
                         "groups": group_counts(split["validation"], labels)})
            for size in sizes:
                rows.append({"subsets": subsets, "seed": seed, "n_train": size,
                             "groups": group_counts(split["train"][str(size)], labels)})
    table = pd.DataFrame(rows)
    table["groups"] = table["groups"].map(lambda g: ", ".join(f"{k} {v}" for k, v in g.items()))
    return table


def summarise(both: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (subsets, n_train, regime), runs in both.groupby(["subsets", "n_train", "regime"], sort=True):
        row = {"subsets": subsets, "n_train": n_train, "regime": regime, "n_seeds": len(runs)}
        for metric in METRICS:
            values = runs.sort_values("seed")[metric]
            row[f"{metric}_seeds"] = " / ".join(f"{v:.1f}" for v in values)
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1)
        rows.append(row)
    table = pd.DataFrame(rows)
    for metric in METRICS:
        means = table.pivot_table(index=["subsets", "n_train"], columns="regime", values=f"{metric}_mean")
        ratio = (means["transfer"] / means["scratch"]).rename(f"{metric}_transfer_over_scratch")
        table = table.merge(ratio.reset_index(), on=["subsets", "n_train"])
    return table


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| size | regime | subsets | force MAE per seed 0/1/2 | mean ± std | energy MAE per seed 0/1/2 | mean ± std |",
             "|---|---|---|---|---|---|---|"]
    for _, r in table.sort_values(["n_train", "regime", "subsets"]).iterrows():
        lines.append(f"| {r.n_train} | {r.regime} | {r.subsets} | {r.force_mae_mev_ang_seeds} | "
                     f"{r.force_mae_mev_ang_mean:.1f} ± {r.force_mae_mev_ang_std:.1f} | "
                     f"{r.energy_mae_mev_atom_seeds} | {r.energy_mae_mev_atom_mean:.1f} ± "
                     f"{r.energy_mae_mev_atom_std:.1f} |")
    lines += ["", "| size | subsets | transfer / scratch, force | transfer / scratch, energy |", "|---|---|---|---|"]
    for _, r in table.drop_duplicates(["subsets", "n_train"]).sort_values(["n_train", "subsets"]).iterrows():
        lines.append(f"| {r.n_train} | {r.subsets} | {r.force_mae_mev_ang_transfer_over_scratch:.2f} | "
                     f"{r.energy_mae_mev_atom_transfer_over_scratch:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    both = load()
    composition = compositions(sys.argv[1], sorted(both["n_train"].unique().tolist()), sorted(both["seed"].unique()))
    composition.to_csv(HERE / "subset_composition.csv", index=False)
    print(composition.to_string(index=False))
    table = summarise(both)
    table.to_csv(HERE / "comparison.csv", index=False)
    (HERE / "comparison.md").write_text(to_markdown(table))
    print(to_markdown(table))
