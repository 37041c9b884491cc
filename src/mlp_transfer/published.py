"""Where the study's models stand against published potentials on the same test sets.

The config's ``aggregation.published_errors`` lists, per dataset and element, published test errors (MAE) with
their citation, e.g. GAP and MTP on the mlearn test sets (Zuo et al., J. Phys. Chem. A 124, 731 (2020)). This
module tabulates, per pair, every regime at the largest target training size and the source model next to
those figures, with the ratio to the best published value; the learning-curve plots draw them as lines.

    mlp-transfer published --summary results/tables/summary.csv --source results/tables/source_models.csv \\
        --configfile config/mlearn.yaml --out-csv t.csv --out-md t.md
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from mlp_transfer.io import write_csv, write_text

METRICS = {"energy_mae_mev_atom": "Energy MAE (meV/atom)", "force_mae_mev_ang": "Force MAE (meV/Å)"}
COLUMNS = ["dataset", "element", "test_set", "model", "n_train", "n_seeds",
           "energy_mae_mev_atom", "energy_mae_mev_atom_std", "force_mae_mev_ang", "force_mae_mev_ang_std",
           "energy_vs_best_published", "force_vs_best_published", "citation"]


def anchors(published: dict, dataset: str, element: str) -> list[dict]:
    """Published entries of one dataset and element, with the test set defaulting to ``test``."""
    return [{"test_set": "test", **entry} for entry in published.get(dataset, {}).get(element, [])]


def _numeric_size(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def _largest_size_per_regime(rows: pd.DataFrame) -> pd.DataFrame:
    """Each regime's rows at its own largest training size (a partial table may lack one regime's largest)."""
    if rows.empty:
        return rows
    parts = [g[g["n_train"].astype(str) == str(max(g["n_train"], key=_numeric_size))]
             for _, g in rows.groupby("regime", sort=False)]
    return pd.concat(parts, ignore_index=True)


def comparison_table(summary: pd.DataFrame, source_models: pd.DataFrame, published: dict,
                     committee: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our best-size models and the source model beside the published errors of the same element and test set.

    ``summary``: the study's summary.csv (mean/std over seeds); ``source_models``: source_models.csv;
    ``committee``: the study's committee.csv (seed committees, one row per regime and size), optional.
    Only test sets that have a published entry appear.
    """
    rows = []
    for (dataset, source, target), pair in summary.groupby(["dataset", "source", "target"], sort=True):
        ours_target = _largest_size_per_regime(pair)
        if committee is not None and not committee.empty:
            cells = _largest_size_per_regime(committee[(committee["dataset"] == dataset)
                                                       & (committee["source"] == source)
                                                       & (committee["target"] == target)])
            cells = cells.assign(regime=[f"{r} committee of {n}" for r, n in zip(cells["regime"], cells["n_members"])],
                                 n_seeds=cells["n_members"],
                                 **{f"{m}_mean": cells[m] for m in METRICS},
                                 **{f"{m}_std": float("nan") for m in METRICS})
            ours_target = pd.concat([ours_target, cells], ignore_index=True)
        for element, ours in ((target, ours_target),
                              (source, _source_rows(source_models, dataset, source))):
            entries = anchors(published, dataset, element)
            for test_set in sorted({e["test_set"] for e in entries}):
                here = [e for e in entries if e["test_set"] == test_set]
                for _, row in ours[ours["test_set"] == test_set].iterrows():
                    rows.append({"dataset": dataset, "element": element, "test_set": test_set,
                                 "model": f"{row['regime']} ({source}→{target})" if element == target
                                 else f"source ({source})", "n_train": row["n_train"],
                                 "n_seeds": row.get("n_seeds", 1),
                                 **{m: row[f"{m}_mean"] if f"{m}_mean" in row else row[m] for m in METRICS},
                                 **{f"{m}_std": row.get(f"{m}_std", float("nan")) for m in METRICS},
                                 "citation": "this study"})
                for entry in here:
                    rows.append({"dataset": dataset, "element": element, "test_set": test_set,
                                 "model": entry["model"], "citation": entry.get("citation", ""),
                                 **{m: entry.get(m, float("nan")) for m in METRICS}})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.drop_duplicates(subset=["dataset", "element", "test_set", "model"], ignore_index=True)
    for metric, ratio in (("energy_mae_mev_atom", "energy_vs_best_published"),
                          ("force_mae_mev_ang", "force_vs_best_published")):
        published_rows = table["citation"] != "this study"
        best = (table[published_rows].groupby(["dataset", "element", "test_set"])[metric].min()
                .rename("best").reset_index())
        merged = table.merge(best, on=["dataset", "element", "test_set"], how="left")
        table[ratio] = (merged[metric] / merged["best"]).where(~published_rows)
    return table


def _source_rows(source_models: pd.DataFrame, dataset: str, element: str) -> pd.DataFrame:
    rows = source_models[(source_models["dataset"] == dataset) & (source_models["element"] == element)]
    return rows.assign(regime="source")


def comparison_markdown(table: pd.DataFrame) -> str:
    parts = ["# Test errors beside published potentials\n",
             "\nOur rows: the largest target training size (mean ± std over seeds; a committee row: the test MAE of "
             "the seeds' mean prediction) and the source model. "
             "Ratio: our MAE over the best published MAE (below 1: better).\n"]
    if table.empty:
        parts.append("\n_No test set with published errors._\n")
    for (dataset, element, test_set), g in table.groupby(["dataset", "element", "test_set"], sort=True):
        out = pd.DataFrame({
            "model": g["model"],
            "n_train": [("" if pd.isna(n) else f"{n:g}" if isinstance(n, float) else str(n)) for n in g["n_train"]],
            **{label: [_fmt(m, s) for m, s in zip(g[metric], g[f"{metric}_std"])] for metric, label in METRICS.items()},
            "E ratio": [_ratio(v) for v in g["energy_vs_best_published"]],
            "F ratio": [_ratio(v) for v in g["force_vs_best_published"]],
            "source": g["citation"],
        })
        parts.append(f"\n## {dataset}: {element}, test set '{test_set}'\n\n")
        parts.append(out.to_markdown(index=False, disable_numparse=True))
        parts.append("\n")
    return "".join(parts)


def _fmt(mean, std) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if not pd.isna(std) else "")


def _ratio(value) -> str:
    return "" if pd.isna(value) else f"{value:.2f}"


def write_comparison(summary_csv, source_csv, published: dict, out_csv, out_md,
                     committee_csv=None) -> pd.DataFrame:
    try:
        summary = pd.read_csv(summary_csv)
        source = pd.read_csv(source_csv)
        committee = pd.read_csv(committee_csv) if committee_csv else None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read the study's tables: {exc}") from exc
    table = comparison_table(summary, source, published, committee)
    write_csv(table, out_csv)
    write_text(out_md, comparison_markdown(table))
    return table


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer published", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", required=True, help="summary.csv of the study")
    parser.add_argument("--source", required=True, help="source_models.csv of the study")
    parser.add_argument("--configfile", required=True, help="the study's config (aggregation.published_errors)")
    parser.add_argument("--committee", help="committee.csv of the study (seed committees), optional")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)
    args = parser.parse_args(argv)
    from mlp_transfer.config import ConfigError, load_config

    try:
        published = load_config(args.configfile)["aggregation"].get("published_errors", {})
        table = write_comparison(args.summary, args.source, published, args.out_csv, args.out_md,
                                 args.committee)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
