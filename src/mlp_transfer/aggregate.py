"""Aggregate finished runs into learning-curve tables and plots.

Why this stage exists: every trained target model leaves one evaluation CSV (one row per test set) and
one training history. The scientific claims of the study -- transfer from Si lowers the Ge error at a
given training-set size, and transfer reaches a given accuracy in fewer optimizer steps -- are
statements about *all* runs together, so they are made here, from finished files only. Because runs
are discovered by globbing (unless listed explicitly), the tables can be rebuilt at any time from
whatever has finished.

Inputs (the contract with the evaluation and training stages)::

    results/eval/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}.csv
    results/models/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}/history.csv  (+ summary.json)

Outputs (``aggregate`` writes all tables every time, header-only when empty, so a workflow can
declare them)::

    {tables}/learning_curve.csv       every (run, test set) row: dataset, source, target, regime,
                                      n_train, seed, test_set, energy_mae_mev_atom,
                                      energy_rmse_mev_atom, force_mae_mev_ang, force_rmse_mev_ang,
                                      then any other columns of the eval CSVs (e.g. n_structures)
    {tables}/summary.csv              one row per (dataset, source, target, regime, n_train, test_set):
                                      n_seeds, seeds (space separated), then {metric}_mean and
                                      {metric}_std (sample std, ddof=1; NaN for one seed) per metric
    {tables}/summary.md               the same as "mean ± std" strings, one section per dataset/pair
    {tables}/comparison.csv           one row per (dataset, source, target, regime, n_train, test_set)
                                      for every regime other than the baseline ("scratch") that has
                                      runs paired by seed with it: baseline, n_pairs,
                                      force_mae_mean, baseline_force_mae_mean, force_mae_ratio
                                      (regime mean / baseline mean over the paired seeds),
                                      force_wins (pairs where the regime's force MAE is strictly
                                      lower), and the same four for energy (energy_*)
    {tables}/comparison.md            readable version ("wins" as k/n)
    {tables}/convergence_runs.csv     one row per (run, criterion): dataset, source, target, regime,
                                      n_train, seed, criterion, threshold_mev_ang, reached,
                                      steps_to_threshold, wall_time_s_to_threshold (NaN when never
                                      reached), best_val_force_mae_mev_ang, best_step, last_step
    {tables}/convergence_summary.csv  one row per (dataset, source, target, regime, n_train,
                                      criterion): n_runs, n_reached, threshold_mev_ang_mean,
                                      steps_to_threshold_mean/_std, wall_time_s_to_threshold_mean/_std
                                      (over the runs that reached the criterion)
    {tables}/convergence_summary.md   readable version
    {plots}/learning_curve_{dataset}_{source}-{target}_force.png    force MAE vs n_train, log-log
    {plots}/learning_curve_{dataset}_{source}-{target}_energy.png   energy MAE vs n_train, log-log
    {plots}/convergence_{dataset}_{source}-{target}.png             val force MAE vs optimizer step
                                                                    (only when histories exist)

A convergence criterion is "validation force MAE <= threshold": absolute thresholds in meV/Å
(``force_mae<=100``) and one relative to the run's own best (``force_mae<=1.1*best``, within 10 %).
Step 0 (the untrained or just-transferred model) counts, so a transferred model that is already
good enough before fine-tuning needs 0 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch stage: never needs (or may have) a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogFormatter, NullFormatter, ScalarFormatter  # noqa: E402

from mlp_transfer.config import schema_default  # noqa: E402
from mlp_transfer.io import atomic_path, write_csv  # noqa: E402
from mlp_transfer.published import anchors  # noqa: E402

RUN_KEYS = ["dataset", "source", "target", "regime", "n_train", "seed"]
ROW_KEYS = RUN_KEYS + ["test_set"]
METRICS = ["energy_mae_mev_atom", "energy_rmse_mev_atom", "force_mae_mev_ang", "force_rmse_mev_ang"]
EVAL_COLUMNS = ROW_KEYS + ["n_structures"] + METRICS
LEARNING_CURVE_COLUMNS = ROW_KEYS + METRICS  # leading columns of learning_curve.csv, in this order
GROUP_KEYS = ["dataset", "source", "target", "regime", "n_train", "test_set"]
PAIR_KEYS = ["dataset", "source", "target"]
HISTORY_COLUMNS = ["step", "wall_time_s", "val_force_mae_mev_ang"]
STRING_KEYS = ["dataset", "source", "target", "regime", "test_set"]

# Without a config the workflow's own default applies (one source: the schema).
DEFAULT_THRESHOLDS = tuple(float(x) for x in schema_default("aggregation", "force_thresholds_mev_ang"))
DEFAULT_RELATIVE_TOLERANCE = 0.10
BASELINE_REGIME = "scratch"
# Preferred plotting/legend order; any other regime is appended alphabetically (nothing hard-codes two).
_REGIME_ORDER = ["transfer", "scratch", "zeroshot"]

_EVAL_PATH = re.compile(
    r"eval/(?P<dataset>[^/]+)/(?P<source>[^/-]+)-(?P<target>[^/]+)/(?P<regime>[^/]+)/n(?P<size>\d+|all)/seed(?P<seed>\d+)\.csv$"
)
_HISTORY_PATH = re.compile(
    r"(?P<dataset>[^/]+)/(?P<source>[^/-]+)-(?P<target>[^/]+)/(?P<regime>[^/]+)/n(?P<size>\d+|all)/seed(?P<seed>\d+)/history\.csv$"
)

_LABELS = {
    "energy_mae_mev_atom": "Energy MAE (meV/atom)",
    "energy_rmse_mev_atom": "Energy RMSE (meV/atom)",
    "force_mae_mev_ang": "Force MAE (meV/Å)",
    "force_rmse_mev_ang": "Force RMSE (meV/Å)",
}


class AggregateError(ValueError):
    """Bad or missing input data; the CLI reports these as a message with exit code 2, not a traceback."""


# ----------------------------------------------------------------------------------------------------
# Learning-curve table
# ----------------------------------------------------------------------------------------------------


def read_eval_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check one evaluation CSV, so a malformed run fails here with its file name attached."""
    path = Path(path)
    df = pd.read_csv(path, dtype={c: str for c in STRING_KEYS})
    missing = [c for c in EVAL_COLUMNS if c not in df.columns]
    if missing:
        raise AggregateError(f"{path}: missing required column(s) {missing}")
    if df.empty:
        raise AggregateError(f"{path}: no rows (an evaluation CSV has one row per test set)")
    if df[ROW_KEYS].isna().any().any():
        raise AggregateError(f"{path}: empty values in key columns {ROW_KEYS}")
    for col in ("n_train", "seed", "n_structures"):
        try:
            as_float = pd.to_numeric(df[col]).astype(float)
        except (ValueError, TypeError) as exc:
            raise AggregateError(f"{path}: column {col!r} is not numeric ({exc})") from None
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            raise AggregateError(f"{path}: column {col!r} must hold integers")
        df[col] = as_float.astype("int64")
    for col in METRICS:
        try:
            df[col] = pd.to_numeric(df[col]).astype(float)
        except (ValueError, TypeError) as exc:
            raise AggregateError(f"{path}: metric column {col!r} is not numeric ({exc})") from None
    _check_against_path(df, path)
    return df


def _check_against_path(df: pd.DataFrame, path: Path) -> None:
    """Catch a CSV written under the wrong run directory, which would silently mislabel a run."""
    m = _EVAL_PATH.search(path.as_posix())
    if not m:
        return  # explicit files outside the standard layout are trusted as they are
    expected = {k: m[k] for k in ("dataset", "source", "target", "regime")}
    expected["seed"] = int(m["seed"])
    for col, value in expected.items():
        found = set(df[col].unique())
        if found != {value}:
            raise AggregateError(f"{path}: column {col!r} holds {sorted(map(str, found))} but the path says {value!r}")


def learning_curve_table(eval_csvs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate evaluation CSVs into one validated, sorted table: the raw material of every result.

    Raises AggregateError (a ValueError) naming the file(s) on a missing column or on a duplicated
    (dataset, source, target, regime, n_train, seed, test_set) row -- a duplicate means two runs claim
    to be the same one, and averaging them would bias the seed statistics.
    """
    if not eval_csvs:
        raise AggregateError("no evaluation CSVs given (no finished runs)")
    frames = []
    for path in eval_csvs:
        df = read_eval_csv(path)
        df["_file"] = str(path)
        frames.append(df)
    lc = pd.concat(frames, ignore_index=True)
    dup = lc.duplicated(ROW_KEYS, keep=False)
    if dup.any():
        first = lc.loc[dup].sort_values(ROW_KEYS).iloc[0]
        same = (lc.loc[dup, ROW_KEYS] == first[ROW_KEYS]).all(axis=1)
        files = sorted(set(lc.loc[dup].loc[same, "_file"]))
        key = ", ".join(f"{k}={first[k]}" for k in ROW_KEYS)
        raise AggregateError(f"duplicate evaluation row ({key}) in file(s): {', '.join(files)}")
    lc = lc.drop(columns="_file")
    others = [c for c in lc.columns if c not in LEARNING_CURVE_COLUMNS]
    return lc[LEARNING_CURVE_COLUMNS + others].sort_values(ROW_KEYS, ignore_index=True)


# ----------------------------------------------------------------------------------------------------
# Summary over seeds and regime comparison
# ----------------------------------------------------------------------------------------------------


def summary_table(lc: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per (dataset, source, target, regime, n_train, test_set).

    The seed spread is reported next to the mean because, at small training sizes, it is often as large
    as the transfer-vs-scratch difference the study is after.
    """
    agg: dict[str, tuple[str, object]] = {
        "n_seeds": ("seed", "nunique"),
        "seeds": ("seed", lambda s: " ".join(str(x) for x in sorted(s))),
    }
    for m in METRICS:
        agg[f"{m}_mean"] = (m, "mean")
        agg[f"{m}_std"] = (m, "std")
    out = lc.groupby(GROUP_KEYS, sort=True).agg(**agg).reset_index()
    out["n_seeds"] = out["n_seeds"].astype("int64")
    return out


def comparison_table(lc: pd.DataFrame, baseline: str = BASELINE_REGIME) -> pd.DataFrame:
    """Compare every regime with the baseline, pairing runs by seed: the direct test of "transfer helps".

    Pairing by seed (same training subset, same initial split) removes the subset-to-subset variation
    that unpaired means would carry. Only seeds present in both regimes count.
    """
    cols = [
        "dataset", "source", "target", "regime", "baseline", "n_train", "test_set", "n_pairs",
        "force_mae_mean", "baseline_force_mae_mean", "force_mae_ratio", "force_wins",
        "energy_mae_mean", "baseline_energy_mae_mean", "energy_mae_ratio", "energy_wins",
    ]  # fmt: skip
    keys = ["dataset", "source", "target", "n_train", "test_set", "seed"]
    values = ["force_mae_mev_ang", "energy_mae_mev_atom"]
    base = lc.loc[lc["regime"] == baseline, keys + values]
    other = lc.loc[lc["regime"] != baseline, keys + ["regime"] + values]
    paired = other.merge(base, on=keys, suffixes=("", "_base"))
    if paired.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    paired["force_win"] = paired["force_mae_mev_ang"] < paired["force_mae_mev_ang_base"]
    paired["energy_win"] = paired["energy_mae_mev_atom"] < paired["energy_mae_mev_atom_base"]
    out = (
        paired.groupby(["dataset", "source", "target", "regime", "n_train", "test_set"], sort=True)
        .agg(
            n_pairs=("seed", "size"),
            force_mae_mean=("force_mae_mev_ang", "mean"),
            baseline_force_mae_mean=("force_mae_mev_ang_base", "mean"),
            force_wins=("force_win", "sum"),
            energy_mae_mean=("energy_mae_mev_atom", "mean"),
            baseline_energy_mae_mean=("energy_mae_mev_atom_base", "mean"),
            energy_wins=("energy_win", "sum"),
        )
        .reset_index()
    )
    out["baseline"] = baseline
    out["force_mae_ratio"] = out["force_mae_mean"] / out["baseline_force_mae_mean"]
    out["energy_mae_ratio"] = out["energy_mae_mean"] / out["baseline_energy_mae_mean"]
    for c in ("n_pairs", "force_wins", "energy_wins"):
        out[c] = out[c].astype("int64")
    return out[cols]


# ----------------------------------------------------------------------------------------------------
# Convergence ("transfer expedites training")
# ----------------------------------------------------------------------------------------------------


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """Read one history.csv and label it with its run keys (from summary.json beside it, else the path)."""
    path = Path(path)
    hist = pd.read_csv(path)
    missing = [c for c in HISTORY_COLUMNS if c not in hist.columns]
    if missing:
        raise AggregateError(f"{path}: missing required history column(s) {missing}")
    if hist.empty:
        raise AggregateError(f"{path}: no rows")
    meta = _run_metadata(path)
    for k in RUN_KEYS:
        hist[k] = meta[k]
    return hist[RUN_KEYS + [c for c in hist.columns if c not in RUN_KEYS]]


def _run_metadata(history_path: Path) -> dict:
    """Run keys for a history; summary.json is authoritative because it holds the actual n_train."""
    summary_path = history_path.with_name("summary.json")
    meta: dict = {}
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        meta = {k: summary[k] for k in RUN_KEYS if k in summary}
    m = _HISTORY_PATH.search(history_path.as_posix())
    if m:
        meta.setdefault("dataset", m["dataset"])
        meta.setdefault("source", m["source"])
        meta.setdefault("target", m["target"])
        meta.setdefault("regime", m["regime"])
        meta.setdefault("seed", int(m["seed"]))
        if m["size"] != "all":
            meta.setdefault("n_train", int(m["size"]))
    missing = [k for k in RUN_KEYS if k not in meta]
    if missing:
        raise AggregateError(f"{history_path}: cannot determine {missing} (no summary.json and path not in the standard layout)")
    for k in ("n_train", "seed"):
        meta[k] = int(meta[k])
    for k in ("dataset", "source", "target", "regime"):
        meta[k] = str(meta[k])
    return meta


def load_histories(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Stack run histories into one long table (run keys + history columns), the input of convergence_table."""
    frames = [read_history(p) for p in paths]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_KEYS + HISTORY_COLUMNS})
    hist = pd.concat(frames, ignore_index=True)
    dup = hist.duplicated(RUN_KEYS + ["step"])
    if dup.any():
        row = hist.loc[dup].iloc[0]
        key = ", ".join(f"{k}={row[k]}" for k in RUN_KEYS)
        raise AggregateError(f"duplicate history for run ({key}) at step {row['step']}")
    return hist.sort_values(RUN_KEYS + ["step"], ignore_index=True)


def _criteria(thresholds: Sequence[float], relative_tolerance: float | None) -> list[tuple[str, float | None]]:
    """(label, absolute threshold or None for the relative criterion), in reporting order."""
    if any(not (t > 0) for t in thresholds):
        raise AggregateError(f"thresholds must be positive, got {list(thresholds)}")
    crit: list[tuple[str, float | None]] = [(f"force_mae<={float(t):g}", float(t)) for t in thresholds]
    if relative_tolerance is not None:
        if relative_tolerance < 0:
            raise AggregateError(f"relative tolerance must be >= 0, got {relative_tolerance}")
        crit.append((f"force_mae<={1 + relative_tolerance:g}*best", None))
    return crit


CONVERGENCE_RUN_COLUMNS = RUN_KEYS + [
    "criterion", "threshold_mev_ang", "reached", "steps_to_threshold", "wall_time_s_to_threshold",
    "best_val_force_mae_mev_ang", "best_step", "last_step",
]  # fmt: skip


def convergence_table(
    histories: pd.DataFrame,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    relative_tolerance: float | None = DEFAULT_RELATIVE_TOLERANCE,
) -> pd.DataFrame:
    """Optimizer steps and wall time each run needed to first reach each validation force-MAE criterion.

    Final errors alone cannot show that transfer *speeds up* training; the first step at which the
    validation error drops to a fixed accuracy can. NaN (reached=False) when a run never got there;
    last_step tells whether it simply stopped early. The relative criterion (within
    ``relative_tolerance`` of the run's own best) measures convergence independent of final quality.
    """
    crit = _criteria(thresholds, relative_tolerance)
    rows = []
    if histories.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CONVERGENCE_RUN_COLUMNS})
    for key, run in histories.groupby(RUN_KEYS, sort=True):
        run = run.sort_values("step")
        mae = run["val_force_mae_mev_ang"].to_numpy(dtype=float)
        steps = run["step"].to_numpy()
        times = run["wall_time_s"].to_numpy(dtype=float)
        finite = np.isfinite(mae)
        best_idx = int(np.nanargmin(np.where(finite, mae, np.inf))) if finite.any() else None
        best = mae[best_idx] if best_idx is not None else np.nan
        for label, threshold in crit:
            thr = threshold if threshold is not None else best * (1 + relative_tolerance)
            hit = np.flatnonzero(finite & (mae <= thr)) if np.isfinite(thr) else np.array([], dtype=int)
            reached = hit.size > 0
            rows.append(
                dict(
                    zip(RUN_KEYS, key),
                    criterion=label,
                    threshold_mev_ang=thr,
                    reached=reached,
                    steps_to_threshold=float(steps[hit[0]]) if reached else np.nan,
                    wall_time_s_to_threshold=float(times[hit[0]]) if reached else np.nan,
                    best_val_force_mae_mev_ang=best,
                    best_step=float(steps[best_idx]) if best_idx is not None else np.nan,
                    last_step=int(steps[-1]),
                )
            )
    return pd.DataFrame(rows, columns=CONVERGENCE_RUN_COLUMNS)


def convergence_summary(conv: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the convergence numbers per (regime, n_train, criterion).

    Means are over the runs that reached the criterion; n_reached/n_runs is reported beside them so a
    mean that excludes slow runs is never mistaken for one that includes them.
    """
    keys = ["dataset", "source", "target", "regime", "n_train", "criterion"]
    cols = keys + [
        "n_runs", "n_reached", "threshold_mev_ang_mean",
        "steps_to_threshold_mean", "steps_to_threshold_std",
        "wall_time_s_to_threshold_mean", "wall_time_s_to_threshold_std",
    ]  # fmt: skip
    if conv.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    # Keep the criteria in the order given (absolute thresholds, then relative), not alphabetical.
    order = {c: i for i, c in enumerate(dict.fromkeys(conv["criterion"]))}
    conv = conv.assign(_order=conv["criterion"].map(order), reached=conv["reached"].astype(bool))
    out = (
        conv.groupby(keys[:-1] + ["_order", "criterion"], sort=True)
        .agg(
            n_runs=("seed", "size"),
            n_reached=("reached", "sum"),
            threshold_mev_ang_mean=("threshold_mev_ang", "mean"),
            steps_to_threshold_mean=("steps_to_threshold", "mean"),
            steps_to_threshold_std=("steps_to_threshold", "std"),
            wall_time_s_to_threshold_mean=("wall_time_s_to_threshold", "mean"),
            wall_time_s_to_threshold_std=("wall_time_s_to_threshold", "std"),
        )
        .reset_index()
    )
    out["n_runs"] = out["n_runs"].astype("int64")
    out["n_reached"] = out["n_reached"].astype("int64")
    return out[cols]


# ----------------------------------------------------------------------------------------------------
# Markdown rendering
# ----------------------------------------------------------------------------------------------------


def _decimals(x: float) -> int:
    """About four significant figures, so 0.0123 and 123.4 both stay readable."""
    if not np.isfinite(x) or x == 0:
        return 2
    return int(min(6, max(1, 3 - math.floor(math.log10(abs(x))))))


def _pm(mean: float, std: float, decimals: int | None = None) -> str:
    """'mean ± std'; just the mean when std is undefined (a single seed)."""
    if not np.isfinite(mean):
        return "–"
    d = _decimals(mean) if decimals is None else decimals
    if not np.isfinite(std):
        return f"{mean:.{d}f}"
    return f"{mean:.{d}f} ± {std:.{d}f}"


def _num(x: float, decimals: int | None = None) -> str:
    if not np.isfinite(x):
        return "–"
    return f"{x:.{_decimals(x) if decimals is None else decimals}f}"


def _vs(a: float, b: float) -> str:
    """'a vs b' with the same number of decimals on both sides, so the two are easy to compare."""
    finite = [abs(x) for x in (a, b) if np.isfinite(x) and x != 0]
    d = _decimals(min(finite)) if finite else 2
    return f"{_num(a, d)} vs {_num(b, d)}"


def markdown_sections(df: pd.DataFrame, title: str, render) -> str:
    """One Markdown section per (dataset, source, target), so each table stays narrow and readable."""
    parts = [f"# {title}\n"]
    if df.empty:
        parts.append("\n_No data._\n")
    for (dataset, source, target), group in df.groupby(PAIR_KEYS, sort=True):
        parts.append(f"\n## {dataset}: {source} → {target}\n\n")
        parts.append(render(group).to_markdown(index=False, disable_numparse=True))  # keep "0.500" as written
        parts.append("\n")
    return "".join(parts)


def summary_markdown(summary: pd.DataFrame) -> str:
    """Summary table as 'mean ± std' strings, rows grouped by test set so regimes sit side by side."""

    def render(g: pd.DataFrame) -> pd.DataFrame:
        g = g.sort_values(["test_set", "n_train", "regime"], key=_natural_series)
        out = pd.DataFrame({"test set": g["test_set"], "n_train": g["n_train"], "regime": g["regime"], "seeds": g["n_seeds"]})
        for m in METRICS:
            out[_LABELS[m]] = [_pm(a, b) for a, b in zip(g[f"{m}_mean"], g[f"{m}_std"])]
        return out

    return markdown_sections(summary, "Test errors: mean ± std over seeds", render)


def comparison_markdown(comparison: pd.DataFrame) -> str:
    """Paired comparison with wins as k/n: the headline 'does transfer beat scratch' table."""

    def render(g: pd.DataFrame) -> pd.DataFrame:
        g = g.sort_values(["test_set", "n_train", "regime"], key=_natural_series)
        return pd.DataFrame(
            {
                "test set": g["test_set"],
                "n_train": g["n_train"],
                "regime vs baseline": g["regime"] + " vs " + g["baseline"],
                "force MAE (meV/Å)": [_vs(a, b) for a, b in zip(g["force_mae_mean"], g["baseline_force_mae_mean"])],
                "force ratio": [_num(x, 3) for x in g["force_mae_ratio"]],
                "force wins": [f"{w}/{n}" for w, n in zip(g["force_wins"], g["n_pairs"])],
                "energy MAE (meV/atom)": [_vs(a, b) for a, b in zip(g["energy_mae_mean"], g["baseline_energy_mae_mean"])],
                "energy ratio": [_num(x, 3) for x in g["energy_mae_ratio"]],
                "energy wins": [f"{w}/{n}" for w, n in zip(g["energy_wins"], g["n_pairs"])],
            }
        )

    return markdown_sections(comparison, "Regime vs baseline, paired by seed (ratio < 1 and wins: regime is better)", render)


def convergence_markdown(conv_summary: pd.DataFrame) -> str:
    """Steps/time to reach each validation force-MAE criterion, mean ± std over the runs that reached it."""

    def render(g: pd.DataFrame) -> pd.DataFrame:
        # criterion, then size, then regime: the regimes to compare end up on adjacent rows
        order = {c: i for i, c in enumerate(dict.fromkeys(g["criterion"]))}
        g = g.assign(_order=g["criterion"].map(order)).sort_values(["_order", "n_train", "regime"], kind="stable")
        return pd.DataFrame(
            {
                "criterion (meV/Å)": g["criterion"],
                "n_train": g["n_train"],
                "regime": g["regime"],
                "reached": [f"{r}/{n}" for r, n in zip(g["n_reached"], g["n_runs"])],
                "optimizer steps": [_pm(a, b, 0) for a, b in zip(g["steps_to_threshold_mean"], g["steps_to_threshold_std"])],
                "wall time (s)": [_pm(a, b, 1) for a, b in zip(g["wall_time_s_to_threshold_mean"], g["wall_time_s_to_threshold_std"])],
            }
        )

    return markdown_sections(conv_summary, "Training needed to reach a validation force MAE", render)


# ----------------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------------


def _regime_palette(regimes: Iterable[str]) -> tuple[list[str], dict[str, tuple]]:
    """Fixed regime order and colours, so 'transfer' has the same colour in every figure."""
    present = set(regimes)
    order = [r for r in _REGIME_ORDER if r in present] + sorted(present - set(_REGIME_ORDER))
    colours = sns.color_palette("colorblind", len(_REGIME_ORDER) + len(order))
    palette = {r: colours[_REGIME_ORDER.index(r)] if r in _REGIME_ORDER else colours[len(_REGIME_ORDER) + i] for i, r in enumerate(order)}
    return order, palette


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def _tidy_axes(g: sns.FacetGrid, ncol: int) -> None:
    """Plain-number log tick labels (60, 100 rather than 6x10^1), shown only on the left column.

    FacetGrid hides shared tick labels only for the ticks that existed before the log scale was set,
    so the inner panels would otherwise repeat the minor labels.
    """
    for i, ax in enumerate(g.axes.flat):
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        if i % ncol:
            ax.tick_params(axis="y", which="both", labelleft=False)


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curve(lc: pd.DataFrame, metric: str, path: str | os.PathLike,
                        anchors: Sequence[dict] = ()) -> Path:
    """Log-log error vs training-set size, one panel per test set: the learning curve of the paper.

    Line = mean over seeds, band = min–max over seeds (never negative, unlike ±std on a log axis),
    dots = individual seeds. ``lc`` must hold a single (dataset, source, target). ``anchors``: published
    errors of the target element (see :mod:`mlp_transfer.published`), drawn as labelled horizontal lines.
    """
    (dataset, source, target), = lc[PAIR_KEYS].drop_duplicates().itertuples(index=False, name=None)
    order, palette = _regime_palette(lc["regime"])
    test_sets = sorted(lc["test_set"].unique(), key=natural_key)
    g = sns.relplot(
        data=lc, kind="line", x="n_train", y=metric, hue="regime", hue_order=order, palette=palette,
        col="test_set", col_order=test_sets, col_wrap=min(3, len(test_sets)),
        estimator="mean", errorbar=("pi", 100), err_style="band", marker="o",
        height=3.2, aspect=1.15, facet_kws={"sharey": True, "sharex": True},
    )  # fmt: skip
    g.map_dataframe(sns.scatterplot, x="n_train", y=metric, hue="regime", hue_order=order, palette=palette, alpha=0.45, s=18, legend=False)
    sizes = sorted(lc["n_train"].unique())
    for ax in g.axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.25)
    lines: dict[tuple[str, float], list[str]] = {}  # equal published values share one line and label
    for entry in anchors:
        if entry.get(metric) is not None:
            lines.setdefault((entry.get("test_set", "test"), float(entry[metric])), []).append(entry["model"])
    for i, ((test_set, value), names) in enumerate(sorted(lines.items(), key=lambda kv: -kv[0][1])):
        ax = g.axes_dict.get(test_set)
        if ax is not None:  # labels alternate above and below their lines, so close values stay readable
            ax.axhline(value, color="0.3", lw=1, ls=(0, (4, 3)), zorder=0)
            ax.annotate(", ".join(names), (1.0, value), xycoords=("axes fraction", "data"),
                        xytext=(-3, 2 if i % 2 == 0 else -2), textcoords="offset points", ha="right",
                        va="bottom" if i % 2 == 0 else "top", fontsize=7, color="0.3")
    _tidy_axes(g, min(3, len(test_sets)))
    g.set_titles(col_template="test set: {col_name}")
    g.set_axis_labels("Training structures", _LABELS[metric])
    g.figure.suptitle(f"{dataset}: {source} → {target}, {_LABELS[metric]} vs training-set size (mean, min–max over seeds)", y=1.03)
    return _save(g.figure, Path(path))


_TEMPERATURE_LABEL = re.compile(r"^T(\d+(?:\.\d+)?)K$")


def temperature_table(lc: pd.DataFrame) -> pd.DataFrame:
    """Rows of test sets labelled ``T<temperature>K`` with the temperature as a number: error vs test
    temperature, the temperature-transferability view of the learning curve (empty if no such sets)."""
    temperature = lc["test_set"].astype(str).str.extract(_TEMPERATURE_LABEL, expand=False).astype(float)
    return lc.assign(test_temperature_k=temperature).dropna(subset=["test_temperature_k"])


def plot_error_vs_temperature(lc: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Force MAE vs test temperature, one panel per training size, transfer vs scratch (mean, min-max)."""
    table = temperature_table(lc)
    (dataset, source, target), = table[PAIR_KEYS].drop_duplicates().itertuples(index=False, name=None)
    order, palette = _regime_palette(table["regime"])
    sizes = sorted(table["n_train"].unique())
    g = sns.relplot(
        data=table, kind="line", x="test_temperature_k", y="force_mae_mev_ang", hue="regime", hue_order=order,
        palette=palette, col="n_train", col_order=sizes, col_wrap=min(4, len(sizes)),
        estimator="mean", errorbar=("pi", 100), err_style="band", marker="o", height=3.0, aspect=1.1,
    )  # fmt: skip
    for ax in g.axes.flat:
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.25)
    g.set_titles(col_template="{col_name} training structures")
    g.set_axis_labels("Test temperature (K)", _LABELS["force_mae_mev_ang"])
    g.figure.suptitle(f"{dataset}: {source} → {target}, force error vs test temperature", y=1.03)
    return _save(g.figure, Path(path))


def plot_convergence(histories: pd.DataFrame, path: str | os.PathLike, thresholds: Sequence[float] = ()) -> Path:
    """Validation force MAE vs optimizer step, one line per run, one panel per training-set size.

    Shows directly whether transferred models start lower and reach a given accuracy in fewer steps.
    The x axis is symlog so step 0 (the model before fine-tuning) stays visible. ``histories`` must
    hold a single (dataset, source, target).
    """
    (dataset, source, target), = histories[PAIR_KEYS].drop_duplicates().itertuples(index=False, name=None)
    order, palette = _regime_palette(histories["regime"])
    sizes = sorted(histories["n_train"].unique())
    g = sns.relplot(
        data=histories, kind="line", x="step", y="val_force_mae_mev_ang", hue="regime", hue_order=order,
        palette=palette, units="seed", estimator=None, alpha=0.8, linewidth=1.2,
        col="n_train", col_order=sizes, col_wrap=min(3, len(sizes)), height=3.2, aspect=1.15,
        facet_kws={"sharey": True, "sharex": False},
    )  # fmt: skip
    positive = histories.loc[histories["step"] > 0, "step"]
    linthresh = float(positive.min()) if not positive.empty else 1.0
    for ax in g.axes.flat:
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_xlim(left=0)
        ax.set_yscale("log")
        for t in thresholds:
            ax.axhline(t, color="0.5", linestyle="--", linewidth=0.8)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.grid(True, which="major", alpha=0.25)
    _tidy_axes(g, min(3, len(sizes)))
    g.set_titles(col_template="n_train = {col_name}")
    g.set_axis_labels("Optimizer step", "Validation force MAE (meV/Å)")
    note = f"; dashed: {', '.join(f'{t:g}' for t in thresholds)} meV/Å" if thresholds else ""
    g.figure.suptitle(f"{dataset}: {source} → {target}, validation force MAE during training (one line per seed{note})", y=1.03)
    return _save(g.figure, Path(path))


# ----------------------------------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------------------------------


GRID_KEYS = ["dataset", "source", "target", "regime", "size", "seed"]
MISSING_RUNS_COLUMNS = GRID_KEYS + ["eval_csv"]


def expected_runs(config: dict) -> list[dict]:
    """Every run of a config's learning-curve grid: pairs x regimes x sizes x seeds.

    ``size`` is the size label of the run's paths (an integer or ``"all"``), as in ``n{size}``; the
    workflow's ``aggregate`` rule and ``mlp-transfer aggregate --configfile`` both use this grid.
    """
    lc = config["learning_curve"]
    regimes = lc.get("regimes", ["transfer", "scratch"])
    return [{"dataset": p["dataset"], "source": p["source"], "target": p["target"], "regime": regime,
             "size": str(size), "seed": int(seed)}
            for p in config["pairs"] for regime in regimes for size in lc["sizes"] for seed in lc["seeds"]]


def _run_key(run: dict) -> tuple:
    return tuple(str(run[k]) if k != "seed" else int(run[k]) for k in GRID_KEYS)


def eval_csv_run(path: str | os.PathLike) -> dict | None:
    """Grid keys of an evaluation CSV in the standard layout (``size`` = the path's label), else None."""
    m = _EVAL_PATH.search(Path(path).as_posix())
    if not m:
        return None
    return {"dataset": m["dataset"], "source": m["source"], "target": m["target"], "regime": m["regime"],
            "size": m["size"], "seed": int(m["seed"])}


def _history_run(path: str | os.PathLike) -> dict | None:
    m = _HISTORY_PATH.search(Path(path).as_posix())
    if not m:
        return None
    return {"dataset": m["dataset"], "source": m["source"], "target": m["target"], "regime": m["regime"],
            "size": m["size"], "seed": int(m["seed"])}


def inferred_grid(eval_csvs: Sequence[str | os.PathLike]) -> list[dict]:
    """The full grid spanned by the runs found: per (dataset, source, target), every regime x size x seed
    that occurs for it. Used when no config names the grid; it cannot see a size, seed or regime that
    is missing for every run, which only the config (``--configfile``) can."""
    runs = [r for r in map(eval_csv_run, eval_csvs) if r is not None]
    grid = []
    for pair in sorted({(r["dataset"], r["source"], r["target"]) for r in runs}):
        mine = [r for r in runs if (r["dataset"], r["source"], r["target"]) == pair]
        for regime in sorted({r["regime"] for r in mine}):
            for size in sorted({r["size"] for r in mine}, key=natural_key):
                for seed in sorted({r["seed"] for r in mine}):
                    grid.append(dict(zip(GRID_KEYS, (*pair, regime, size, seed))))
    return grid


def check_grid(eval_csvs: Sequence[str | os.PathLike], expected: Sequence[dict], results_dir: str | os.PathLike,
               allow_partial: bool, explicit: bool, tabulated: Mapping[tuple, str] | None = None
               ) -> tuple[list, pd.DataFrame]:
    """Compare finished runs with the expected grid; returns (eval CSVs to use, missing runs).

    Missing runs are an error unless ``allow_partial``. Runs outside the grid are an error when the
    CSVs were listed explicitly and are left out (they belong to another study) when discovered.
    ``tabulated``: grid keys of runs that earlier tables already hold (:func:`previous_runs`) -> that table;
    they count as finished, and a run both there and among the CSVs is an error (two results for one run).
    """
    tabulated = dict(tabulated or {})
    by_key: dict = {}
    outside = []
    expected_keys = {_run_key(r) for r in expected}
    for path in eval_csvs:
        run = eval_csv_run(path)
        if run is None or _run_key(run) not in expected_keys:
            outside.append(str(path))
        elif _run_key(run) in tabulated:
            raise AggregateError(f"{path}: this run is also in {tabulated[_run_key(run)]}; keep one of the two")
        else:
            by_key[_run_key(run)] = path
    if outside and explicit:
        raise AggregateError(f"{len(outside)} evaluation CSV(s) are not runs of the expected grid, e.g. {outside[0]}")
    missing = [dict(zip(GRID_KEYS, key)) for key in sorted({_run_key(r) for r in expected} - set(by_key)
                                                             - set(tabulated),
                                                             key=lambda k: (*k[:4], natural_key(k[4]), k[5]))]
    for run in missing:
        run["eval_csv"] = (Path(results_dir) / "eval" / run["dataset"] / f"{run['source']}-{run['target']}"
                           / run["regime"] / f"n{run['size']}" / f"seed{run['seed']}.csv").as_posix()
    missing_df = pd.DataFrame(missing, columns=MISSING_RUNS_COLUMNS)
    if missing and not allow_partial:
        listed = "; ".join(f"{r['dataset']} {r['source']}-{r['target']} {r['regime']} n{r['size']} seed{r['seed']}"
                           for r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise AggregateError(
            f"partial grid: {len(missing)} of {len(expected_keys)} expected runs have no evaluation CSV "
            f"({listed}{more}); finish them (rerun the workflow) or pass --allow-partial to build tables "
            "that list them in missing_runs.csv")
    return [by_key[k] for k in sorted(by_key, key=lambda k: (*k[:4], natural_key(k[4]), k[5]))], missing_df


def previous_runs(tables_dir: str | os.PathLike, expected: Sequence[dict]) -> dict[tuple, str]:
    """Grid keys of the runs in an earlier aggregation's ``learning_curve.csv`` -> that file.

    A run's size label is its ``n_train`` when the grid has that size, else ``all`` (the only size whose
    label is not its number) for the largest such run per (pair, regime, seed). Rows outside the expected
    grid are an error: the tables would mix studies.
    """
    path = Path(tables_dir) / "learning_curve.csv"
    if not path.is_file():
        raise AggregateError(f"{path}: not found (--previous takes the tables folder of an earlier aggregation)")
    lc = read_eval_csv(path)
    labels: dict[tuple, set] = {}
    for run in expected:
        labels.setdefault((run["dataset"], run["source"], run["target"]), set()).add(str(run["size"]))
    expected_keys = {_run_key(r) for r in expected}
    runs, placed_at_all = {}, set()
    rows = lc.drop_duplicates(RUN_KEYS).sort_values("n_train", ascending=False)
    for row in rows.itertuples():
        sizes = labels.get((row.dataset, row.source, row.target), set())
        size = str(row.n_train) if str(row.n_train) in sizes else "all"
        series = (row.dataset, row.source, row.target, row.regime, row.seed)
        if size == "all" and series in placed_at_all:
            size = str(row.n_train)  # smaller than the run already placed at "all": not a grid size
        elif size == "all":
            placed_at_all.add(series)
        key = _run_key({"dataset": row.dataset, "source": row.source, "target": row.target, "regime": row.regime,
                        "size": size, "seed": row.seed})
        if key not in expected_keys:
            raise AggregateError(f"{path}: run {row.dataset} {row.source}-{row.target} {row.regime} "
                                 f"n_train={row.n_train} seed {row.seed} is not in the expected grid")
        runs[key] = str(path)
    return runs


def _previous_table(tables_dir: Path, name: str, columns: Sequence[str]) -> pd.DataFrame | None:
    """An earlier aggregation's per-run table, checked for its columns; None when that table is absent."""
    path = tables_dir / name
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={c: str for c in STRING_KEYS if c != "test_set"})
    lacking = [c for c in columns if c not in table.columns]
    if lacking:
        raise AggregateError(f"{path}: missing required column(s) {lacking}")
    return table


def _stack_runs(fresh: pd.DataFrame, previous: pd.DataFrame | None, name: str) -> pd.DataFrame:
    """Fresh per-run rows and an earlier table's, refusing a run that both hold."""
    if previous is None or previous.empty:
        return fresh
    previous = previous[list(fresh.columns)]
    if len(fresh):
        earlier = set(previous[RUN_KEYS].astype(str).itertuples(index=False, name=None))
        for key in fresh[RUN_KEYS].astype(str).itertuples(index=False, name=None):
            if key in earlier:
                raise AggregateError(f"{name}: run ({', '.join(f'{k}={v}' for k, v in zip(RUN_KEYS, key))}) is both "
                                     "in the earlier tables and among the runs found")
        previous = pd.concat([previous, fresh], ignore_index=True)
    return previous.sort_values(RUN_KEYS, kind="stable", ignore_index=True)


def _partial_note(missing: pd.DataFrame, expected: int) -> str:
    return (f"> **Partial grid: {len(missing)} of {expected} expected runs are missing** (listed in "
            "`missing_runs.csv`); means, standard deviations and comparisons below use the finished runs "
            "only.\n\n")


def discover_eval_csvs(results_dir: str | os.PathLike) -> list[Path]:
    """Finished runs = evaluation CSVs in the standard layout (written atomically, so present = complete)."""
    root = Path(results_dir)
    return sorted(p for p in root.glob("eval/*/*-*/*/n*/seed*.csv") if _EVAL_PATH.search(p.as_posix()))


def discover_histories(results_dir: str | os.PathLike) -> list[Path]:
    """Histories of finished trainings: summary.json is written last, so a history without one is still running."""
    root = Path(results_dir)
    return sorted(
        p
        for p in root.glob("models/*/*-*/*/n*/seed*/history.csv")
        if _HISTORY_PATH.search(p.as_posix()) and p.with_name("summary.json").exists()
    )


TRAINING_RUN_COLUMNS = ["dataset", "source", "target", "regime", "n_train", "seed", "stop_reason", "best_step",
                        "stopped_step", "best_val_force_mae_mev_ang", "best_val_energy_mae_mev_atom",
                        "train_wall_time_s", "lr", "n_parameters", "resumed_from_step"]


def training_runs_table(histories: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per training run from the summary.json beside each history: how and when each run stopped.

    Runs that stopped at ``max_steps`` rather than by early stopping were cut short by the cap; this table
    makes them visible next to the results.
    """
    rows = []
    for history in histories:
        summary_path = Path(history).with_name("summary.json")
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            rows.append({key: summary.get(key) for key in TRAINING_RUN_COLUMNS})
    table = pd.DataFrame(rows, columns=TRAINING_RUN_COLUMNS)
    return table.sort_values(["dataset", "source", "target", "regime", "n_train", "seed"], ignore_index=True)


def natural_key(label: str) -> tuple:
    """Sort "T300K" before "T1200K": digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(label)))


def _natural_series(column: pd.Series) -> pd.Series:
    if column.name != "test_set":
        return column
    ranks = {label: rank for rank, label in enumerate(sorted(column.unique(), key=natural_key))}
    return column.map(ranks)


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    return write_csv(df, path)


def _write_text(text: str, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def aggregate(
    results_dir: str | os.PathLike,
    tables_dir: str | os.PathLike,
    plots_dir: str | os.PathLike,
    eval_csvs: Sequence[str | os.PathLike] | None = None,
    histories: Sequence[str | os.PathLike] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    relative_tolerance: float | None = DEFAULT_RELATIVE_TOLERANCE,
    baseline: str = BASELINE_REGIME,
    expected: Sequence[dict] | None = None,
    allow_partial: bool = False,
    published: dict | None = None,
    previous: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Build every table and plot; runs are discovered under ``results_dir`` unless listed explicitly.

    Partial grids: ``expected`` (see :func:`expected_runs`) is the grid of runs the tables must cover.
    When runs are discovered and no grid is given, the grid spanned by the discovered runs is used
    (:func:`inferred_grid`). If any expected run has no evaluation CSV, aggregation stops with an
    :class:`AggregateError` listing them, unless ``allow_partial``: then the tables are built from the
    finished runs, ``missing_runs.csv`` lists the missing ones and the Markdown tables say so. A complete
    grid removes a stale ``missing_runs.csv``. Explicit ``eval_csvs`` without ``expected`` are taken as given.

    Returns {name: path} of everything written: table names (learning_curve, summary, summary_md,
    comparison, comparison_md, convergence_runs, convergence_summary, convergence_md, training_runs and
    missing_runs when runs are missing) and plot file stems. ``published``: the config's
    ``aggregation.published_errors``, drawn in the learning-curve plots.

    ``previous``: the tables folder of an earlier aggregation whose runs' raw results are gone (a purged
    scratch file system, another machine). Its per-run tables (``learning_curve.csv``, and
    ``training_runs.csv`` and ``convergence_runs.csv`` where present) are stacked with the runs found and
    count as finished runs of the grid; needs ``expected``. A run in both is an error. Without the earlier
    ``convergence_runs.csv`` the convergence tables cover the runs found only, and say so.
    """
    tables, plots = Path(tables_dir), Path(plots_dir)
    explicit = eval_csvs is not None
    tabulated: dict = {}
    if previous is not None:
        if expected is None:
            raise AggregateError("previous tables need the study's grid (--configfile) to place their runs")
        tabulated = previous_runs(previous, expected)
    if eval_csvs is None:
        eval_csvs = discover_eval_csvs(results_dir)
        if not eval_csvs and expected is None:
            raise AggregateError(f"no finished runs found: no evaluation CSVs under {Path(results_dir) / 'eval'}")
        if expected is None:
            expected = inferred_grid(eval_csvs)
    missing = pd.DataFrame(columns=MISSING_RUNS_COLUMNS)
    if expected is not None:
        eval_csvs, missing = check_grid(eval_csvs, expected, results_dir, allow_partial, explicit, tabulated)
        if not eval_csvs and not tabulated:
            raise AggregateError(f"no finished runs: none of the {len(expected)} expected runs has an evaluation "
                                 f"CSV under {Path(results_dir) / 'eval'}")
    if histories is None:
        histories = discover_histories(results_dir)
        if expected is not None:  # only the histories of the runs being tabulated
            used = {_run_key(r) for r in map(eval_csv_run, eval_csvs) if r is not None}
            histories = [h for h in histories if (run := _history_run(h)) is not None and _run_key(run) in used]
    _criteria(thresholds, relative_tolerance)  # fail on bad thresholds before writing anything

    lc = learning_curve_table(list(eval_csvs) + ([Path(previous) / "learning_curve.csv"] if tabulated else []))
    summary = summary_table(lc)
    comparison = comparison_table(lc, baseline=baseline)
    hist = load_histories(histories)
    conv = convergence_table(hist, thresholds, relative_tolerance)
    runs = training_runs_table(histories)
    conv_note = ""
    if tabulated:
        runs = _stack_runs(runs, _previous_table(Path(previous), "training_runs.csv", TRAINING_RUN_COLUMNS),
                           "training_runs.csv")
        earlier = _previous_table(Path(previous), "convergence_runs.csv", CONVERGENCE_RUN_COLUMNS)
        if earlier is None:
            conv_note = (f"> **Convergence of {conv[RUN_KEYS].drop_duplicates().shape[0]} of "
                         f"{lc[RUN_KEYS].drop_duplicates().shape[0]} runs**: the earlier tables "
                         f"({Path(previous)}) hold no convergence_runs.csv, so their runs are left out here.\n\n")
        else:
            conv = _stack_runs(conv, earlier, "convergence_runs.csv")
    conv_summary = convergence_summary(conv)

    note = _partial_note(missing, len(expected)) if len(missing) else ""
    written = {}
    # missing_runs.csv first: a partial table set is never on disk without the list of what it lacks
    if len(missing):
        written["missing_runs"] = _write_csv(missing, tables / "missing_runs.csv")
    else:
        (tables / "missing_runs.csv").unlink(missing_ok=True)
    written.update({
        "learning_curve": _write_csv(lc, tables / "learning_curve.csv"),
        "summary": _write_csv(summary, tables / "summary.csv"),
        "summary_md": _write_text(note + summary_markdown(summary), tables / "summary.md"),
        "comparison": _write_csv(comparison, tables / "comparison.csv"),
        "comparison_md": _write_text(note + comparison_markdown(comparison), tables / "comparison.md"),
        "convergence_runs": _write_csv(conv, tables / "convergence_runs.csv"),
        "convergence_summary": _write_csv(conv_summary, tables / "convergence_summary.csv"),
        "convergence_md": _write_text(note + conv_note + convergence_markdown(conv_summary),
                                      tables / "convergence_summary.md"),
        "training_runs": _write_csv(runs, tables / "training_runs.csv"),
    })
    for (dataset, source, target), group in lc.groupby(PAIR_KEYS, sort=True):
        tag = f"{_safe(dataset)}_{_safe(source)}-{_safe(target)}"
        for kind, metric in (("force", "force_mae_mev_ang"), ("energy", "energy_mae_mev_atom")):
            stem = f"learning_curve_{tag}_{kind}"
            written[stem] = plot_learning_curve(group, metric, plots / f"{stem}.png",
                                                anchors(published or {}, dataset, target))
        if not temperature_table(group).empty:
            written[f"temperature_{tag}"] = plot_error_vs_temperature(group, plots / f"temperature_{tag}.png")
    if not hist.empty:
        for (dataset, source, target), group in hist.groupby(PAIR_KEYS, sort=True):
            stem = f"convergence_{_safe(dataset)}_{_safe(source)}-{_safe(target)}"
            written[stem] = plot_convergence(group, plots / f"{stem}.png", thresholds)
    return written


def cli(argv: list[str] | None = None) -> int:
    """``mlp-transfer aggregate``: rebuild tables and plots from finished runs."""
    parser = argparse.ArgumentParser(prog="mlp-transfer aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="results root to search for finished runs (default: results)")
    parser.add_argument("--tables", default=None, help="output folder for tables (default: RESULTS/tables)")
    parser.add_argument("--plots", default=None, help="output folder for plots (default: RESULTS/plots)")
    parser.add_argument("--thresholds", nargs="+", type=float, default=None, help="absolute validation force-MAE thresholds in meV/Å (default: the config's aggregation.force_thresholds_mev_ang with --configfile, as the workflow's aggregate rule uses; else the schema's default, %s)" % " ".join(f"{x:g}" for x in DEFAULT_THRESHOLDS))
    parser.add_argument("--relative-tolerance", type=float, default=DEFAULT_RELATIVE_TOLERANCE, help="relative criterion: within this fraction of each run's best (default: 0.10)")
    parser.add_argument("--baseline", default=BASELINE_REGIME, help="regime the others are compared with (default: scratch)")
    parser.add_argument("--eval-csvs", nargs="+", default=None, help="explicit evaluation CSVs (default: discover under RESULTS/eval)")
    parser.add_argument("--histories", nargs="*", default=None, help="explicit history.csv files (default: discover under RESULTS/models)")
    parser.add_argument("--configfile", default=None, help="the study's workflow config: its grid (pairs x regimes x sizes x seeds) is the set of runs the tables must cover (default: the grid spanned by the runs found, which cannot see a size, seed or regime missing for every run)")
    parser.add_argument("--previous", default=None, metavar="TABLES", help="tables folder of an earlier aggregation whose runs' raw results are gone: its learning_curve.csv (and training_runs.csv, convergence_runs.csv) count as finished runs, stacked with those found; needs --configfile")
    parser.add_argument("--allow-partial", action="store_true", help="build tables even if expected runs are missing; they are listed in TABLES/missing_runs.csv and flagged in the Markdown tables")
    args = parser.parse_args(argv)
    results = Path(args.results)
    try:
        expected, published = None, None
        thresholds = args.thresholds if args.thresholds is not None else list(DEFAULT_THRESHOLDS)
        if args.configfile is not None:
            from mlp_transfer.config import ConfigError, load_config

            try:
                config = load_config(args.configfile)
                expected = expected_runs(config)
                published = config["aggregation"].get("published_errors")
                if args.thresholds is None:
                    thresholds = config["aggregation"]["force_thresholds_mev_ang"]
            except ConfigError as exc:
                raise AggregateError(str(exc)) from None
        elif args.eval_csvs is None:
            print("mlp-transfer aggregate: note: no --configfile; checking the runs found against the grid they "
                  "span (a size, seed or regime missing for every run goes unnoticed)", file=sys.stderr)
        written = aggregate(
            results,
            Path(args.tables) if args.tables else results / "tables",
            Path(args.plots) if args.plots else results / "plots",
            eval_csvs=args.eval_csvs,
            histories=args.histories,
            thresholds=thresholds,
            relative_tolerance=args.relative_tolerance,
            baseline=args.baseline,
            expected=expected,
            allow_partial=args.allow_partial,
            published=published,
            previous=args.previous,
        )
    except (AggregateError, FileNotFoundError) as exc:
        print(f"mlp-transfer aggregate: error: {exc}", file=sys.stderr)
        return 2
    for path in written.values():
        print(path)
    return 0


def source_model_table(eval_csvs: Sequence[str | os.PathLike], out_csv: str | os.PathLike) -> pd.DataFrame:
    """Errors of the pre-trained source models on their own element's test sets, one row per test set."""
    if not eval_csvs:
        raise AggregateError("no source-model evaluations given")
    table = pd.concat([pd.read_csv(path) for path in eval_csvs], ignore_index=True)
    _write_csv(table, Path(out_csv))
    return table


if __name__ == "__main__":
    sys.exit(cli())
