"""Aggregation of the out-of-target property errors: tables and plots, transfer vs scratch.

Inputs are the per-model CSVs of :func:`mlp_transfer.properties.run_model_properties` (one row per property)
and the per-model JSONs with phonon spectra. Outputs:

- ``properties.csv``: every model's rows (dataset, source, target, regime, n_train, seed, property, unit, value,
  reference, error, rel_error, note);
- ``properties_summary.csv`` / ``.md``: per (dataset, pair, property, regime, n_train) the reference, the mean
  and standard deviation over seeds of the value and of the error, the mean absolute error and the number of
  seeds with a value; the Markdown has one table per property with ``error mean ± std`` per regime and
  the transfer/scratch ratio of mean absolute errors (< 1: transfer closer to the reference);
- ``properties_<property>.png``: the error vs training-set size (log x), one colour per regime, seeds as
  points, mean as a line, zero (the reference) as a dashed line;
- ``properties_phonon_bands.png``: reference phonon bands (black) against every model's at the smallest
  and the largest training size, one colour per regime.

Command line (rebuilds the tables from whatever models have finished, e.g. while a study is still running)::

    mlp-transfer properties-aggregate --results results [--tables DIR] [--plots DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mlp_transfer.io import atomic_path, write_csv, write_text
from mlp_transfer.properties import PROPERTIES, TABLE_COLUMNS

log = logging.getLogger(__name__)

KEYS = ["dataset", "source", "target", "property", "unit", "regime", "n_train"]
REGIME_COLOURS = {"transfer": "tab:blue", "scratch": "tab:orange"}


def _std(x: pd.Series) -> float:
    """Sample standard deviation over seeds; NaN (shown as the mean alone) below two values, as in the
    learning-curve summary, since one seed says nothing about the spread."""
    return float(x.std(ddof=1)) if x.notna().sum() > 1 else np.nan


COLUMNS = ["dataset", "source", "target", "regime", "seed", "n_train", *TABLE_COLUMNS]


def _read_table(path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError) as exc:  # pandas' parser errors are ValueErrors
        raise ValueError(f"{path}: unreadable property table ({exc})") from exc
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a property table, missing column(s) {missing}")
    return frame


def collect(csvs) -> pd.DataFrame:
    frames = [_read_table(path) for path in csvs]
    if not frames:
        raise ValueError("no property tables to aggregate")
    table = pd.concat(frames, ignore_index=True)
    table["note"] = table["note"].fillna("")
    order = {"property": {name: i for i, name in enumerate(PROPERTIES)},
             "regime": {name: i for i, name in enumerate(REGIME_COLOURS)}}  # transfer before scratch
    table = table.sort_values(["dataset", "source", "target", "property", "regime", "n_train", "seed"],
                              key=lambda col: col.map(order[col.name]) if col.name in order else col)
    return table.reset_index(drop=True)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    grouped = table.groupby(KEYS, sort=False, dropna=False)
    summary = grouped.agg(reference=("reference", "first"), value_mean=("value", "mean"),
                          value_std=("value", _std), error_mean=("error", "mean"), error_std=("error", _std),
                          abs_error_mean=("error", lambda e: float(e.abs().mean())),
                          n_seeds=("value", lambda v: int(v.notna().sum())),
                          n_models=("value", "size")).reset_index()
    return summary


def _fmt(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g} ± {std:.2g}" if np.isfinite(std) else f"{mean:.3g}"


def markdown(summary: pd.DataFrame) -> str:
    """One table per (dataset, pair, property): rows n_train, columns error per regime and the MAE ratio."""
    lines = ["# Out-of-target properties: model − reference", "",
             "Error = model value − reference value (mean ± std over seeds); `phonon_mesh_rmse` is the RMS "
             "frequency difference on the q-mesh. `abs err T/S` = mean absolute error of transfer / scratch "
             "(< 1: transfer closer to the reference).", ""]
    for (dataset, source, target, prop, unit), block in summary.groupby(
            ["dataset", "source", "target", "property", "unit"], sort=False):
        reference = block["reference"].iloc[0]
        ref_text = f"{reference:.4g} {unit}" if np.isfinite(reference) else "none"
        lines += [f"## {dataset} {source}→{target}: {prop} ({unit}), reference {ref_text}", ""]
        regimes = list(dict.fromkeys(block["regime"]))
        header = ["n_train", *[f"{r} error" for r in regimes]]
        both = {"transfer", "scratch"} <= set(regimes)
        if both:
            header.append("abs err T/S")  # no "|" in a cell: it splits the row
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for n_train, rows in block.groupby("n_train", sort=True):
            by_regime = rows.set_index("regime")
            cells = [str(n_train)]
            for regime in regimes:
                if regime in by_regime.index:
                    row = by_regime.loc[regime]
                    text = _fmt(row["error_mean"], row["error_std"])
                    if row["n_seeds"] < row["n_models"]:  # some models had no value (see the notes)
                        text += f" ({row['n_seeds']}/{row['n_models']} models)"
                    cells.append(text)
                else:
                    cells.append("")
            if both and {"transfer", "scratch"} <= set(by_regime.index):
                t, s = by_regime.loc["transfer", "abs_error_mean"], by_regime.loc["scratch", "abs_error_mean"]
                cells.append(f"{t / s:.2f}" if np.isfinite(t) and np.isfinite(s) and s > 0 else "n/a")
            elif both:
                cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_property(table: pd.DataFrame, prop: str, out_png: str | Path) -> None:
    """Error vs training size (log x), transfer vs scratch, one panel per (dataset, pair)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = table[table["property"] == prop].copy()
    data["pair"] = data["dataset"] + " " + data["source"] + "→" + data["target"]
    pairs = list(dict.fromkeys(data["pair"])) or ["(no models)"]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.8 * len(pairs), 3.8), squeeze=False)
    unit = PROPERTIES[prop][1]
    for ax, pair in zip(axes[0], pairs):
        sub = data[data["pair"] == pair]
        finite = sub[np.isfinite(sub["error"])]
        if len(finite):
            sns.lineplot(data=finite, x="n_train", y="error", hue="regime", estimator="mean", errorbar=None,
                         marker="o", palette=REGIME_COLOURS, ax=ax)
            sns.stripplot(data=finite, x="n_train", y="error", hue="regime", palette=REGIME_COLOURS, ax=ax,
                          native_scale=True, jitter=False, alpha=0.5, legend=False, size=4)
        else:
            ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center")
        ax.set_xscale("log")
        ax.axhline(0.0, color="black", linestyle="--", linewidth=1)
        reference = sub["reference"].dropna()
        ref_text = f" (reference {reference.iloc[0]:.4g})" if len(reference) and prop != "phonon_mesh_rmse" else ""
        ax.set_title(f"{pair}{ref_text}", fontsize=9)
        ax.set_xlabel("target training structures")
        ylabel = "RMS frequency difference" if prop == "phonon_mesh_rmse" else "model − reference"
        ax.set_ylabel(f"{prop}: {ylabel} ({unit})")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_phonon_bands(model_jsons, reference_jsons, out_png: str | Path) -> None:
    """Reference bands against the models' at the smallest and largest training size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    references = {}
    for path in reference_jsons:
        ref = json.loads(Path(path).read_text())
        references[(Path(path).parent.parent.name, ref["element"])] = ref
    models = [json.loads(Path(path).read_text()) for path in model_jsons]
    models = [m for m in models if m.get("phonons")]
    sizes = sorted({m["n_train"] for m in models})
    panels = [s for s in dict.fromkeys([sizes[0], sizes[-1]])] if sizes else []
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4), squeeze=False)
    for ax, size in zip(axes[0], panels):
        labelled = set()
        for model in (m for m in models if m["n_train"] == size):
            bands = model["phonons"]["bands"]
            label = None if model["regime"] in labelled else model["regime"]
            labelled.add(model["regime"])
            _draw_bands(ax, bands, REGIME_COLOURS.get(model["regime"], "grey"), 0.6, label)
            ref = references.get((model["dataset"], model["target"]))
            if ref and ref.get("phonons") and ("ref", model["dataset"]) not in labelled:
                labelled.add(("ref", model["dataset"]))
                _draw_bands(ax, ref["phonons"]["bands"], "black", 1.6, "reference")
        ax.set_title(f"n_train = {size}")
        ax.set_ylabel("frequency (THz)")
        ax.legend(fontsize=8)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no phonon spectra", transform=axes[0][0].transAxes, ha="center")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def _draw_bands(ax, bands: dict, colour: str, width: float, label: str | None) -> None:
    ticks = []
    for i, (distances, freqs) in enumerate(zip(bands["distances"], bands["frequencies"])):
        distances, freqs = np.asarray(distances), np.asarray(freqs)
        # one line per branch; only the first carries the legend label
        for branch, column in enumerate(freqs.T):
            ax.plot(distances, column, color=colour, linewidth=width,
                    label=label if i == 0 and branch == 0 else None)
        ticks += [distances[0], distances[-1]]
    label_ticks = sorted(set(np.round(ticks, 8)))
    ax.set_xticks(label_ticks)
    ax.set_xticklabels(bands["labels"][:len(label_ticks)])
    ax.set_xlim(label_ticks[0], label_ticks[-1])
    for x in label_ticks:
        ax.axvline(x, color="grey", linewidth=0.5)


def aggregate_properties(csvs, model_jsons, reference_jsons, out_table: str | Path, out_summary: str | Path,
                         out_markdown: str | Path, plots: dict, band_plot: str | Path | None = None,
                         table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write the property tables and plots; ``plots`` maps property name -> PNG path.

    ``table``: ``collect(csvs)`` where the caller has already read it.
    """
    table = collect(csvs) if table is None else table
    write_csv(table, out_table)
    summary = summarise(table)
    write_csv(summary, out_summary)
    write_text(out_markdown, markdown(summary))
    for prop, path in plots.items():
        plot_property(table, prop, path)
    if band_plot is not None:
        plot_phonon_bands(model_jsons, reference_jsons, band_plot)
    log.info("aggregated %d property rows of %d models", len(table), len(csvs))
    return summary


BAND_PLOT_NAME = "properties_phonon_bands.png"


def split_plot_paths(paths) -> tuple[dict, str | None]:
    """``properties_<property>.png`` paths -> ({property: path}, band-structure plot path or None)."""
    plots, band_plot = {}, None
    for path in map(str, paths):
        name = Path(path).name
        if name == BAND_PLOT_NAME:
            band_plot = path
        elif name.startswith("properties_") and name.endswith(".png") and name[11:-4] in PROPERTIES:
            plots[name[11:-4]] = path
        else:
            raise ValueError(f"unexpected property plot path {path}")
    return plots, band_plot


def discover(results: str | Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Finished per-model property tables, their spectra and the reference JSONs under ``results/properties``.

    The layout is the workflow's: ``properties/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}.csv``
    (+ ``.json``) and ``properties/{dataset}/reference/{element}.json``. A table without its spectra means a
    model whose property run did not finish; that is an error rather than a silently thinner table.
    """
    root = Path(results) / "properties"
    tables = sorted(root.glob("*/*-*/*/n*/seed*.csv"))
    spectra = [table.with_suffix(".json") for table in tables]
    missing = [str(path) for path in spectra if not path.is_file()]
    if missing:
        raise ValueError(f"property table(s) without their spectra JSON (unfinished run?): {missing}")
    return tables, spectra, sorted(root.glob("*/reference/*.json"))


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer properties-aggregate",
                                     description="Rebuild the property tables and plots from finished models")
    parser.add_argument("--results", default="results", help="results folder (property runs under properties/)")
    parser.add_argument("--tables", help="default: RESULTS/tables")
    parser.add_argument("--plots", help="default: RESULTS/plots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    results = Path(args.results)
    tables_dir, plots_dir = Path(args.tables or results / "tables"), Path(args.plots or results / "plots")
    try:
        tables, spectra, references = discover(results)
        if not tables:
            raise ValueError(f"{results / 'properties'}: no finished property tables")
        table = collect(tables)
        names = [name for name in PROPERTIES if name in set(table["property"])]
        plots = {name: plots_dir / f"properties_{name}.png" for name in names}
        has_bands = any(PROPERTIES[name][0] == "phonons" for name in names)
        aggregate_properties(tables, spectra, references, tables_dir / "properties.csv",
                             tables_dir / "properties_summary.csv", tables_dir / "properties_summary.md", plots,
                             plots_dir / BAND_PLOT_NAME if has_bands else None, table=table)
    except ValueError as exc:
        print(f"mlp-transfer properties-aggregate: error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(tables)} model(s) -> {tables_dir / 'properties_summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
