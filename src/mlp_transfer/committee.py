"""Committee (seed-ensemble) evaluation: the mean prediction of the models one learning-curve cell trained
with different seeds, and how well the members' disagreement flags the committee's own errors.

A learning curve already trains every (regime, size) with several seeds; averaging their energies and forces
costs only inference and removes the part of each member's error that is seed noise. Two uses:

* accuracy: the committee's test MAE beside the mean MAE of its members (the gain an ensemble buys at the
  same training data and settings, for transfer and scratch alike);
* uncertainty: the spread of the members' force predictions per atom, and its Spearman rank correlation with
  the committee's force error on that atom (1: the spread orders atoms by error perfectly; 0: it says
  nothing). A usable spread is what active learning and MD-time error monitoring rely on.

    mlp-transfer committee evaluate --models seed0/model.pt seed1/model.pt seed2/model.pt \\
        --test results/data/mlearn/Ge/test.extxyz --cutoff 6 --out committee.csv \\
        --summaries seed0/summary.json seed1/summary.json seed2/summary.json --meta regime=transfer
    mlp-transfer committee table --inputs results/eval_committee/*/*/*/*.csv --out-csv c.csv --out-md c.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from mlp_transfer import models
from mlp_transfer.evaluate import METRIC_COLUMNS, error_metrics, labelled_subsets, predict, read_test_frames
from mlp_transfer.io import write_csv, write_run_table, write_text

log = logging.getLogger(__name__)

MEMBER_COLUMNS = [f"member_{m}_{stat}" for m in ("energy_mae_mev_atom", "force_mae_mev_ang")
                  for stat in ("mean", "std")]
SPREAD_COLUMNS = ["energy_spread_mev_atom", "force_spread_mev_ang", "force_spread_error_spearman"]
COMMITTEE_COLUMNS = (["test_set", "n_structures", "n_members"] + METRIC_COLUMNS + MEMBER_COLUMNS
                     + ["force_mae_gain"] + SPREAD_COLUMNS)
TABLE_KEYS = ["dataset", "source", "target", "regime", "n_train"]


class CommitteeError(ValueError):
    """A committee that cannot be evaluated (too few members, members trained on different data...)."""


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either side is constant."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(pd.Series(x).corr(pd.Series(y), method="spearman"))


def committee_metrics(ref_energy, n_atoms, ref_forces, member_energies: np.ndarray,
                      member_forces: Sequence[Sequence[np.ndarray]]) -> dict:
    """Errors of the committee mean, its members' errors and the members' spread on one set of structures.

    ``member_energies``: (members, structures) in eV; ``member_forces[k][i]``: (atoms_i, 3) of member k.
    Spreads are standard deviations over members (ddof=0): the energy spread is the mean over structures of
    the spread of E/N; the force spread is the RMS over components of the per-component spread. The rank
    correlation pairs, per atom, the norm of the per-atom spread vector with the norm of the committee's
    force error vector.
    """
    member_energies = np.asarray(member_energies, dtype=float)
    n_atoms = np.asarray(n_atoms, dtype=float)
    stacked = [np.stack([member[i] for member in member_forces]) for i in range(len(ref_forces))]
    mean_forces = [s.mean(axis=0) for s in stacked]
    committee = error_metrics(ref_energy, member_energies.mean(axis=0), n_atoms, ref_forces, mean_forces)
    members = pd.DataFrame([error_metrics(ref_energy, e, n_atoms, ref_forces, f)
                            for e, f in zip(member_energies, member_forces)])
    spread = np.concatenate([s.std(axis=0) for s in stacked])  # (all atoms, 3)
    error = np.concatenate([m - np.asarray(r) for m, r in zip(mean_forces, ref_forces)])
    ddof = 1 if len(members) > 1 else 0
    row = {"n_members": len(members), **committee}
    for metric in ("energy_mae_mev_atom", "force_mae_mev_ang"):
        row[f"member_{metric}_mean"] = float(members[metric].mean())
        row[f"member_{metric}_std"] = float(members[metric].std(ddof=ddof)) if len(members) > 1 else float("nan")
    row["force_mae_gain"] = 1 - committee["force_mae_mev_ang"] / row["member_force_mae_mev_ang_mean"]
    row["energy_spread_mev_atom"] = 1000 * float(np.mean((member_energies / n_atoms).std(axis=0)))
    row["force_spread_mev_ang"] = 1000 * float(np.sqrt(np.mean(spread ** 2)))
    row["force_spread_error_spearman"] = _spearman(np.linalg.norm(spread, axis=1), np.linalg.norm(error, axis=1))
    return row


def evaluate_committee(members: Sequence, frames: Sequence, cutoff: float, device: str = "cpu",
                       group_by: str | None = None) -> pd.DataFrame:
    """One row per test set label (frames without one count as ``test``), in first-appearance order; with
    ``group_by``, also per group of that ``atoms.info`` key (:func:`mlp_transfer.evaluate.labelled_subsets`)."""
    if len(members) < 2:
        raise CommitteeError(f"a committee needs at least 2 models, got {len(members)}")
    energies, forces = [], []
    for k, model in enumerate(members):
        e, f = predict(model, frames, cutoff, device=device)
        energies.append(e)
        forces.append(f)
        log.info("member %d/%d predicted %d structures", k + 1, len(members), len(frames))
    energies = np.stack(energies)
    rows = []
    for labels, idx in labelled_subsets(frames, group_by):
        rows.append({**labels, "n_structures": len(idx), **committee_metrics(
            [frames[i].calc.results["energy"] for i in idx], [len(frames[i]) for i in idx],
            [frames[i].calc.results["forces"] for i in idx], energies[:, idx],
            [[member[i] for i in idx] for member in forces])})
    columns = COMMITTEE_COLUMNS if group_by is None else ["test_set", "group"] + COMMITTEE_COLUMNS[1:]
    return pd.DataFrame(rows, columns=columns)


def _common_n_train(summary_paths: Sequence[str | Path]) -> int:
    """The members' training-set size, which must be the same for all (one learning-curve cell)."""
    sizes = {}
    for path in summary_paths:
        try:
            sizes[str(path)] = json.loads(Path(path).read_text())["n_train"]
        except (OSError, ValueError, KeyError) as exc:
            raise CommitteeError(f"training summary {path} has no readable n_train: {exc}") from exc
    if len(set(sizes.values())) != 1:
        raise CommitteeError("committee members were trained on different numbers of structures: "
                             + ", ".join(f"{p}: {n}" for p, n in sizes.items()))
    return next(iter(sizes.values()))


def run_committee_evaluation(model_paths: Sequence[str | Path], test_path: str | Path, out_csv: str | Path,
                             cutoff: float, metadata: dict | None = None,
                             summary_paths: Sequence[str | Path] | None = None, device: str = "cpu",
                             threads: int = 1, group_by: str | None = None) -> pd.DataFrame:
    """Evaluate the committee of saved models on a test file; write the per-test-set CSV (metadata first).

    ``summary_paths`` (the members' summary.json, in any order) give ``n_train`` and must agree on it.
    Nothing is written when a model, summary or the test file is unusable.
    """
    if len(model_paths) < 2:
        raise CommitteeError(f"a committee needs at least 2 models, got {len(model_paths)}")
    meta = dict(metadata or {})
    if summary_paths:
        meta["n_train"] = _common_n_train(summary_paths)
    torch.set_num_threads(threads)
    frames = read_test_frames(test_path, group_by)
    members = [models.load_model(path, device) for path in model_paths]
    table = write_run_table(evaluate_committee(members, frames, cutoff, device, group_by), out_csv, meta)
    for row in table.itertuples():
        log.info("%s%s: committee of %d: F MAE %.1f meV/A (members %.1f), E MAE %.2f meV/atom (members %.2f), "
                 "spread-error rank correlation %.2f", row.test_set, f" [{row.group}]" if group_by else "",
                 row.n_members, row.force_mae_mev_ang,
                 row.member_force_mae_mev_ang_mean, row.energy_mae_mev_atom, row.member_energy_mae_mev_atom_mean,
                 row.force_spread_error_spearman)
    return table


# ----------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------


def committee_table(csvs: Sequence[str | Path]) -> pd.DataFrame:
    """All committee CSVs stacked, sorted by pair, test set, regime and training-set size."""
    frames = []
    for path in csvs:
        try:
            df = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise CommitteeError(f"committee evaluation {path} cannot be read: {exc}") from exc
        missing = [c for c in TABLE_KEYS + COMMITTEE_COLUMNS if c not in df.columns]
        if missing:
            raise CommitteeError(f"committee evaluation {path} lacks columns {missing}")
        # "group": rows per structure type of `committee evaluate --group-by`, which must stay apart
        optional = [c for c in ("seeds", "group") if c in df.columns]
        frames.append(df[TABLE_KEYS + optional + COMMITTEE_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=TABLE_KEYS + COMMITTEE_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    order = ["dataset", "source", "target", "test_set", "regime", "n_train"]
    if "group" in table.columns:
        # one table from grouped and ungrouped evaluations: an ungrouped row covers the whole test set
        table["group"] = table["group"].fillna("all")
        order.append("group")
    return table.sort_values(order, key=_sort_key, ignore_index=True)


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name == "n_train":
        return pd.to_numeric(column, errors="coerce")
    return column.astype(str)


def committee_markdown(table: pd.DataFrame) -> str:
    from mlp_transfer.aggregate import _num, _pm, markdown_sections

    def render(g: pd.DataFrame) -> pd.DataFrame:
        groups = {"group": g["group"]} if "group" in g.columns else {}
        return pd.DataFrame({
            "test set": g["test_set"], **groups, "n_train": g["n_train"], "regime": g["regime"],
            "members": g["n_members"],
            "F MAE committee": [_num(x, 1) for x in g["force_mae_mev_ang"]],
            "F MAE members": [_pm(m, s, 1) for m, s in zip(g["member_force_mae_mev_ang_mean"],
                                                          g["member_force_mae_mev_ang_std"])],
            "F gain": [f"{100 * x:.1f} %" for x in g["force_mae_gain"]],
            "E MAE committee": [_num(x, 2) for x in g["energy_mae_mev_atom"]],
            "E MAE members": [_pm(m, s, 2) for m, s in zip(g["member_energy_mae_mev_atom_mean"],
                                                          g["member_energy_mae_mev_atom_std"])],
            "F spread": [_num(x, 1) for x in g["force_spread_mev_ang"]],
            "spread-error ρ": [_num(x, 2) for x in g["force_spread_error_spearman"]],
        })

    text = markdown_sections(table, "Seed committees: mean prediction of the seeds of each run", render)
    return text + ("\nMAE in meV/atom (E) and meV/Å (F). Members: mean ± std of the members' own test MAE. "
                   "F gain: 1 − committee/members. F spread: RMS over force components of the members' standard "
                   "deviation. ρ: Spearman rank correlation, over atoms, of the spread with the committee's "
                   "force error.\n")


def write_committee_tables(csvs: Sequence[str | Path], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    table = committee_table(csvs)
    write_csv(table, out_csv)
    write_text(out_md, committee_markdown(table))
    return table


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer committee", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="evaluate the committee of several models on a test file")
    ev.add_argument("--models", nargs="+", required=True)
    ev.add_argument("--test", required=True, help="test structures (extxyz)")
    ev.add_argument("--cutoff", type=float, required=True)
    ev.add_argument("--out", required=True, help="output CSV")
    ev.add_argument("--summaries", nargs="*", default=[], help="the members' summary.json (for n_train)")
    ev.add_argument("--meta", nargs="*", default=[], metavar="KEY=VALUE",
                    help="columns to prepend, e.g. dataset=mlearn source=Si target=Ge regime=transfer")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--group-by", metavar="INFO_KEY",
                    help="also report each group of this atoms.info key (e.g. group for mlearn data)")
    tab = sub.add_parser("table", help="stack committee CSVs into one table and its Markdown")
    tab.add_argument("--inputs", nargs="+", required=True)
    tab.add_argument("--out-csv", required=True)
    tab.add_argument("--out-md", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.command == "evaluate":
            meta = dict(item.split("=", 1) for item in args.meta)
            run_committee_evaluation(args.models, args.test, args.out, args.cutoff, meta, args.summaries,
                                     args.device, group_by=args.group_by)
        else:
            print(write_committee_tables(args.inputs, args.out_csv, args.out_md).to_string(index=False))
    except (ValueError, FileNotFoundError, TypeError) as exc:  # CommitteeError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
