"""Aggregate the MD stage: stability and structure of every trained target model vs training-set size.

Inputs (the contract with the MD stage)::

    results/md/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}/stability.csv   one row per
        (temperature, replica): stable, steps_to_failure, time_to_failure_ps, run_length_ps, reason, ...
    results/md/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}/structure.csv   RDF/ADF per temperature
    results/md/{dataset}/reference/{target}/stability.csv, structure.csv              the reference potential

Outputs (every table is written every time, header-only when empty)::

    {tables}/md_stability_runs.csv   every replica: dataset, source, target, regime, n_train, seed,
                                     temperature_K, replica, stable, time_to_failure_ps, reason, ...
                                     (the reference has regime "reference")
    {tables}/md_stability.csv        per (dataset, source, target, regime, n_train, temperature_K):
                                     n_replicas (all seeds x replicas), n_seeds, n_stable, stable_fraction,
                                     time_to_failure_ps_mean (stable replicas count with the full run length),
                                     time_to_failure_ps_min (of the failed replicas; empty when none
                                     failed), run_length_ps, reasons (counts of failure reasons)
    {tables}/md_stability.md         readable version
    {tables}/md_structure_runs.csv   per (model run, temperature, kind in {rdf, adf}): n_frames,
                                     tv_distance (0 = identical, 1 = disjoint) and w1_distance (Å for the
                                     RDF, degrees for the ADF) to the reference's distribution
    {tables}/md_structure.csv        mean and std over seeds per (pair, regime, n_train, temperature, kind)
    {tables}/md_structure.md         readable version
    {plots}/md_stability_{dataset}_{source}-{target}.png   stable fraction and mean time to failure vs n_train
    {plots}/md_structure_{dataset}_{source}-{target}.png   RDF/ADF distance to the reference vs n_train

The reference run of each temperature has a row in the stability tables as a baseline (its own
stability); the structure tables have none, since its distance to itself is 0 by definition. Distances
contain sampling noise: two independent runs of the same potential differ by a few 0.01 in ``tv_distance``
at the default run length.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from matplotlib.ticker import FuncFormatter  # noqa: E402

from mlp_transfer.aggregate import markdown_sections  # noqa: E402
from mlp_transfer.io import atomic_path, write_csv  # noqa: E402
from mlp_transfer.structure import tv_distance, w1_distance  # noqa: E402

PAIR_KEYS = ["dataset", "source", "target"]
RUN_KEYS = PAIR_KEYS + ["regime", "n_train", "seed"]
GROUP_KEYS = PAIR_KEYS + ["regime", "n_train", "temperature_K"]
REFERENCE = "reference"
_REGIME_ORDER = ["transfer", "scratch", REFERENCE]

STABILITY_SUMMARY_COLUMNS = GROUP_KEYS + ["n_replicas", "n_seeds", "n_stable", "stable_fraction",
                                          "time_to_failure_ps_mean", "time_to_failure_ps_min", "run_length_ps",
                                          "reasons"]
STRUCTURE_RUN_COLUMNS = RUN_KEYS + ["temperature_K", "kind", "n_frames", "tv_distance", "w1_distance"]
STRUCTURE_SUMMARY_COLUMNS = GROUP_KEYS + ["kind", "n_seeds", "tv_distance_mean", "tv_distance_std",
                                          "w1_distance_mean", "w1_distance_std"]


def _read(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths if Path(p).stat().st_size > 0]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    for key in RUN_KEYS:
        if key not in df:
            df[key] = np.nan
    df["source"] = df["source"].fillna("").astype(str)
    df["regime"] = df["regime"].astype(str)
    df["n_train"] = pd.to_numeric(df["n_train"], errors="coerce")
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce")
    return df


def _attach_reference_to_pairs(df: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Reference rows carry (dataset, target) only: repeat them for every pair with that target."""
    ref = df[df["regime"] == REFERENCE].drop(columns=["source"])
    models = df[df["regime"] != REFERENCE]
    if ref.empty or pairs.empty:
        return models
    ref = ref.merge(pairs, on=["dataset", "target"], how="inner")
    return pd.concat([models, ref[models.columns]], ignore_index=True)


def stability_runs_table(stability_csvs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    df = _read(stability_csvs)
    if df.empty:
        return pd.DataFrame(columns=RUN_KEYS + ["temperature_K", "replica", "stable", "time_to_failure_ps"])
    pairs = df.loc[df["regime"] != REFERENCE, PAIR_KEYS].drop_duplicates()
    df = _attach_reference_to_pairs(df, pairs)
    df["stable"] = df["stable"].astype(str).str.lower().isin(["true", "1"])
    front = RUN_KEYS + ["temperature_K", "replica"]
    df = df[front + [c for c in df.columns if c not in front]]
    return df.sort_values(front, na_position="first", kind="stable").reset_index(drop=True)


def stability_summary(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=STABILITY_SUMMARY_COLUMNS)
    rows = []
    for key, g in runs.groupby(GROUP_KEYS, dropna=False, sort=True):
        failed = g.loc[~g["stable"], "reason"].value_counts()
        rows.append(dict(zip(GROUP_KEYS, key), n_replicas=len(g), n_seeds=g["seed"].nunique(dropna=False),
                         n_stable=int(g["stable"].sum()), stable_fraction=float(g["stable"].mean()),
                         time_to_failure_ps_mean=float(g["time_to_failure_ps"].mean()),
                         # the first failure among the replicas that failed; NaN ("–") when none did
                         time_to_failure_ps_min=float(g.loc[~g["stable"], "time_to_failure_ps"].min()),
                         run_length_ps=float(g["run_length_ps"].max()),
                         reasons=" ".join(f"{r}:{n}" for r, n in failed.items())))
    return pd.DataFrame(rows, columns=STABILITY_SUMMARY_COLUMNS)


def structure_runs_table(structure_csvs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Distance of every model run's RDF/ADF to the reference's at the same temperature."""
    df = _read(structure_csvs)
    if df.empty or not (df["regime"] == REFERENCE).any():
        return pd.DataFrame(columns=STRUCTURE_RUN_COLUMNS)
    ref = df[df["regime"] == REFERENCE]
    rows = []
    for key, g in df[df["regime"] != REFERENCE].groupby(RUN_KEYS + ["temperature_K", "kind"], sort=True):
        d = dict(zip(RUN_KEYS + ["temperature_K", "kind"], key))
        r = ref[(ref["dataset"] == d["dataset"]) & (ref["target"] == d["target"])
                & (ref["temperature_K"] == d["temperature_K"]) & (ref["kind"] == d["kind"])]
        tv = w1 = np.nan
        if len(r) == len(g) and np.allclose(r["x"].to_numpy(), g["x"].to_numpy()):
            x = g["x"].to_numpy()
            tv = tv_distance(x, g["value"].to_numpy(), r["value"].to_numpy())
            w1 = w1_distance(x, g["value"].to_numpy(), r["value"].to_numpy())
        rows.append(dict(d, n_frames=int(g["n_frames"].iloc[0]), tv_distance=tv, w1_distance=w1))
    return pd.DataFrame(rows, columns=STRUCTURE_RUN_COLUMNS)


def structure_summary(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=STRUCTURE_SUMMARY_COLUMNS)
    g = runs.groupby(GROUP_KEYS + ["kind"], sort=True)
    out = g.agg(n_seeds=("seed", "nunique"), tv_distance_mean=("tv_distance", "mean"),
                tv_distance_std=("tv_distance", "std"), w1_distance_mean=("w1_distance", "mean"),
                w1_distance_std=("w1_distance", "std")).reset_index()
    return out[STRUCTURE_SUMMARY_COLUMNS]


# ---------------------------------------------------------------------------------------------------


def _fmt(x: float, d: int = 2) -> str:
    return "–" if not np.isfinite(x) else f"{x:.{d}f}"


def _n_train(x) -> str:
    return "–" if not np.isfinite(x) else str(int(x))


def _order(g: pd.DataFrame) -> pd.DataFrame:
    rank = {r: i for i, r in enumerate(_REGIME_ORDER)}
    return g.assign(_r=g["regime"].map(lambda r: rank.get(r, len(rank)))).sort_values(
        ["temperature_K", "n_train", "_r"], na_position="first", kind="stable")


def stability_markdown(summary: pd.DataFrame) -> str:
    def render(g):
        g = _order(g)
        return pd.DataFrame({"T (K)": [f"{t:g}" for t in g["temperature_K"]], "n_train": g["n_train"].map(_n_train),
                             "regime": g["regime"],
                             "stable": [f"{s}/{n}" for s, n in zip(g["n_stable"], g["n_replicas"])],
                             "mean time to failure (ps)": [f"{_fmt(m)} / {_fmt(L)}" for m, L in
                                                           zip(g["time_to_failure_ps_mean"], g["run_length_ps"])],
                             "first failure (ps)": g["time_to_failure_ps_min"].map(_fmt),
                             "failure reasons": g["reasons"].fillna("")})

    return markdown_sections(summary, "MD stability: stable replicas and mean time to failure (of the run length)",
                     render)


def structure_markdown(summary: pd.DataFrame) -> str:
    def render(g):
        g = _order(g)
        out = pd.DataFrame({"T (K)": [f"{t:g}" for t in g["temperature_K"]], "kind": g["kind"],
                            "n_train": g["n_train"].map(_n_train), "regime": g["regime"], "seeds": g["n_seeds"]})
        out["TV distance"] = [f"{_fmt(m, 3)} ± {_fmt(s, 3)}" if np.isfinite(s) else _fmt(m, 3)
                              for m, s in zip(g["tv_distance_mean"], g["tv_distance_std"])]
        out["W1 (Å or °)"] = [f"{_fmt(m, 3)} ± {_fmt(s, 3)}" if np.isfinite(s) else _fmt(m, 3)
                              for m, s in zip(g["w1_distance_mean"], g["w1_distance_std"])]
        return out.sort_values(["kind"], kind="stable")

    return markdown_sections(summary, "Structure from MD: distance of RDF and ADF to the reference potential "
                     "(TV: 0 identical, 1 disjoint)", render)


# ---------------------------------------------------------------------------------------------------


def _palette(regimes) -> tuple[list[str], dict]:
    present = list(dict.fromkeys(regimes))
    order = [r for r in _REGIME_ORDER if r in present] + sorted(set(present) - set(_REGIME_ORDER))
    colours = sns.color_palette("colorblind", len(_REGIME_ORDER) + len(order))
    return order, {r: colours[i] for i, r in enumerate(order)}


_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def _log_x(ax) -> None:
    """Log x axis with plain tick labels (2, 5, 20 rather than 2x10^0)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_PLAIN)
    ax.xaxis.set_minor_formatter(_PLAIN)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _empty_plot(path: Path, message: str) -> Path:
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return _save(fig, path)


def plot_stability(runs: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Stable fraction (top) and mean time to failure (bottom) vs n_train, one column per temperature;
    lines = regime means over seeds and replicas, dashed line = the reference potential."""
    path = Path(path)
    models = runs[runs["regime"] != REFERENCE].copy()
    if models.empty:
        return _empty_plot(path, "no MD runs")
    models["stable_fraction"] = models["stable"].astype(float)
    temps = sorted(models["temperature_K"].unique())
    order, palette = _palette(models["regime"])
    fig, axes = plt.subplots(2, len(temps), figsize=(3.6 * len(temps), 5.6), sharex=True, squeeze=False)
    ref = runs[runs["regime"] == REFERENCE]
    for col, t in enumerate(temps):
        sub = models[models["temperature_K"] == t]
        for row, metric, label in ((0, "stable_fraction", "fraction of stable runs"),
                                   (1, "time_to_failure_ps", "mean time to failure (ps)")):
            ax = axes[row, col]
            sns.lineplot(data=sub, x="n_train", y=metric, hue="regime", hue_order=order, palette=palette,
                         estimator="mean", errorbar=None, marker="o", ax=ax, legend=(row == 0 and col == 0))
            r = ref[ref["temperature_K"] == t]
            if not r.empty:
                value = r["stable"].astype(float).mean() if row == 0 else r["time_to_failure_ps"].mean()
                ax.axhline(value, color="grey", ls="--", lw=1, label="reference" if row == 0 and col == 0 else None)
            if row == 0:
                ax.set_ylim(-0.05, 1.05)
                ax.set_title(f"{t:g} K")
            else:
                ax.set_ylim(0, 1.05 * sub["run_length_ps"].max())
            _log_x(ax)
            ax.set_ylabel(label if col == 0 else "")
            ax.set_xlabel("training structures" if row == 1 else "")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if axes[0, 0].get_legend() is not None:
        axes[0, 0].get_legend().remove()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.04), frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_structure(runs: pd.DataFrame, path: str | os.PathLike) -> Path:
    """TV distance of RDF (top) and ADF (bottom) to the reference vs n_train, one column per temperature."""
    path = Path(path)
    if runs.empty or not runs["tv_distance"].notna().any():
        return _empty_plot(path, "no structure distances (no reference MD or no usable frames)")
    temps = sorted(runs["temperature_K"].unique())
    order, palette = _palette(runs["regime"])
    fig, axes = plt.subplots(2, len(temps), figsize=(3.6 * len(temps), 5.6), sharex=True, squeeze=False)
    for col, t in enumerate(temps):
        for row, kind in enumerate(("rdf", "adf")):
            ax = axes[row, col]
            sub = runs[(runs["temperature_K"] == t) & (runs["kind"] == kind)]
            if not sub.empty:
                sns.lineplot(data=sub, x="n_train", y="tv_distance", hue="regime", hue_order=order, palette=palette,
                             estimator="mean", errorbar=("pi", 100), marker="o", ax=ax,
                             legend=(row == 0 and col == 0))
            _log_x(ax)
            ax.set_ylim(bottom=0)
            ax.set_title(f"{kind.upper()}, {t:g} K")
            ax.set_ylabel("TV distance to reference" if col == 0 else "")
            ax.set_xlabel("training structures" if row == 1 else "")
    if axes[0, 0].get_legend() is not None:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        axes[0, 0].get_legend().remove()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.04), frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_csv(df, path)


def _write_text(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def aggregate_md(stability_csvs: Sequence[str | os.PathLike], structure_csvs: Sequence[str | os.PathLike],
                 tables_dir: str | os.PathLike, plots_dir: str | os.PathLike,
                 pairs: Sequence[tuple[str, str, str]] | None = None) -> dict[str, Path]:
    """Write every MD table and plot (see the module docstring); ``pairs`` fixes which per-pair plots are
    made (default: the pairs found in the inputs)."""
    tables_dir, plots_dir = Path(tables_dir), Path(plots_dir)
    runs = stability_runs_table(stability_csvs)
    summary = stability_summary(runs)
    struct_runs = structure_runs_table(structure_csvs)
    struct_summary = structure_summary(struct_runs)
    written = {}
    for name, df in (("md_stability_runs.csv", runs), ("md_stability.csv", summary),
                     ("md_structure_runs.csv", struct_runs), ("md_structure.csv", struct_summary)):
        _write_csv(df, tables_dir / name)
        written[name] = tables_dir / name
    _write_text(stability_markdown(summary), tables_dir / "md_stability.md")
    _write_text(structure_markdown(struct_summary), tables_dir / "md_structure.md")
    if pairs is None:
        pairs = sorted({tuple(p) for p in runs.loc[runs["regime"] != REFERENCE, PAIR_KEYS].itertuples(index=False)})
    for dataset, source, target in pairs:
        stem = f"{_safe(dataset)}_{_safe(source)}-{_safe(target)}"
        sel = (runs["dataset"] == dataset) & (runs["source"] == source) & (runs["target"] == target) \
            if not runs.empty else []
        written[f"md_stability_{stem}.png"] = plot_stability(runs[sel] if len(runs) else runs,
                                                             plots_dir / f"md_stability_{stem}.png")
        ssel = ((struct_runs["dataset"] == dataset) & (struct_runs["source"] == source)
                & (struct_runs["target"] == target)) if not struct_runs.empty else []
        written[f"md_structure_{stem}.png"] = plot_structure(struct_runs[ssel] if len(struct_runs) else struct_runs,
                                                             plots_dir / f"md_structure_{stem}.png")
    return written


def _discover(results: Path, name: str) -> list[Path]:
    return sorted((results / "md").glob(f"**/{name}"))


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer md-aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="results folder (MD outputs are found under md/)")
    parser.add_argument("--tables", help="default: RESULTS/tables")
    parser.add_argument("--plots", help="default: RESULTS/plots")
    args = parser.parse_args(argv)
    results = Path(args.results)
    aggregate_md(_discover(results, "stability.csv"), _discover(results, "structure.csv"),
                 args.tables or results / "tables", args.plots or results / "plots")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
