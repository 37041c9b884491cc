"""Hyper-parameter search on validation data, with the same budget for every regime.

The config's ``hyperparameter_search`` lists, per regime, candidate overrides of ``training`` keys (e.g.
``{lr: 0.002}``) and, under ``model``, of model keys (e.g. ``{model: {n_atom_basis: 128}}``). A transfer
candidate whose model differs from the study's is fine-tuned from a source model pre-trained with that model
(the study's source-training settings; one pre-training per distinct model, shared by the candidates that use
it), so model width or cutoff are searched with the same budget in both regimes. Every candidate is trained on
one learning-curve subset (``size``, ``seed``) and judged on
validation data only (test sets are never read): by default by its best validation loss, the quantity early
stopping minimises; with ``select_by: force_mae`` or ``energy_mae`` by that error of its selected weights, which
is what candidates that change the loss itself (``loss_weights``) must be compared by. The search does not
change the study by itself: the selection table says which candidate won, and the user records that choice in
the config (so a finished study states its hyper-parameters, and re-planning never depends on a search result).

    mlp-transfer hpsearch-table results/hpsearch/*/*/*/c*/summary.json --out-csv t.csv --out-md t.md
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from mlp_transfer.config import ARCHITECTURE_ONLY_KEYS, check_model_section
from mlp_transfer.io import write_csv, write_text
# UNUSED_BY_REGIME: overriding those keys in a regime's candidates wastes budget
from mlp_transfer.train import UNUSED_BY_REGIME, regime_training_config, source_training_settings

TABLE_COLUMNS = ["dataset", "source", "target", "regime", "candidate", "overrides", "n_train", "seed",
                 "best_val_loss", "best_val_force_mae_mev_ang", "best_val_energy_mae_mev_atom", "best_step",
                 "stopped_step", "stop_reason", "train_wall_time_s", "selected"]
# Candidate keys that change the loss by which a run's weights are selected: its value cannot rank them.
LOSS_CHANGING_KEYS = ("loss_weights", "stage_two", "force_huber_delta")
# select_by -> the column of a run summary that ranks the candidates (lower is better)
# reported (not selected by) when a candidate trains on stresses; absent from the table otherwise
STRESS_COLUMN = "best_val_stress_mae_gpa"
SELECTION_COLUMNS = {"val_loss": "best_val_loss", "force_mae": "best_val_force_mae_mev_ang",
                     "energy_mae": "best_val_energy_mae_mev_atom"}


def apply_overrides(training: dict, overrides: dict) -> dict:
    """``training`` with one candidate's overrides; nested settings (``lr_schedule``,
    ``stage_two.loss_weights``...) merge key by key at every depth, so an override names only what it changes."""
    merged = copy.deepcopy(training)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = apply_overrides(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


MODEL_KEY = "model"  # the candidate key whose value overrides the config's model section


def training_overrides(candidate: dict) -> dict:
    """A candidate's overrides of ``training`` keys (everything but its ``model`` overrides)."""
    return {key: value for key, value in candidate.items() if key != MODEL_KEY}


def candidate_model(model: dict, candidate: dict) -> dict:
    """The config's ``model`` section with a candidate's model overrides; a candidate that changes the architecture
    drops the study's settings that only the old one has (``config.ARCHITECTURE_ONLY_KEYS``: so3net's ``lmax``,
    painn's ``norm_epsilon``)."""
    overrides = candidate.get(MODEL_KEY, {})
    merged = {**model, **overrides}
    for key, owner in ARCHITECTURE_ONLY_KEYS.items():
        if "architecture" in overrides and overrides["architecture"] != owner and key not in overrides:
            merged.pop(key, None)
    return merged


def model_tag(model: dict) -> str:
    """Short, stable name of a model configuration (directory of the source model pre-trained with it)."""
    return "m" + hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:10]


def own_source_model(model: dict, candidate: dict) -> dict | None:
    """The model a transfer candidate's source must be pre-trained with, or None when the study's source model
    (pre-trained with the config's ``model``) serves."""
    merged = candidate_model(model, candidate)
    return None if merged == model else merged


def search_source_models(search: dict, model: dict) -> dict[str, dict]:
    """``model_tag -> model`` of the source models the search pre-trains itself (one per distinct model)."""
    models = [own_source_model(model, c) for c in search["candidates"].get("transfer", [])]
    return {model_tag(m): m for m in models if m is not None}


def candidate_run_settings(config: dict, regime: str, candidate: dict) -> dict:
    """Model and training settings of one search run: the config's with the candidate's overrides, less the
    training keys ``regime`` does not use."""
    training = apply_overrides(config["training"], training_overrides(candidate))
    return {"model": candidate_model(config["model"], candidate),
            "training": regime_training_config(training, regime)}


def candidate_source_settings(config: dict, candidate: dict) -> dict | None:
    """Pre-training settings of the source model a transfer candidate with its own model starts from, or None
    when the study's source model serves."""
    model = own_source_model(config["model"], candidate)
    return None if model is None else source_training_settings(config, model)


def check_search(search: dict, regimes: list[str], sizes: list, training_keys: set[str], model: dict,
                 model_schema: dict) -> None:
    """Raise ``ValueError`` naming the key when the search cannot give every regime an equal, useful budget.

    ``model`` and ``model_schema`` are the config's model section and its JSON schema: a candidate's model
    overrides are validated as a whole model section."""
    candidates = search["candidates"]
    if set(candidates) != set(regimes):
        raise ValueError(f"hyperparameter_search.candidates: needs exactly the regimes of learning_curve.regimes "
                         f"{sorted(regimes)}, got {sorted(candidates)}")
    counts = {regime: len(c) for regime, c in candidates.items()}
    ranked_by_loss = search.get("select_by", "val_loss") == "val_loss"
    if len(set(counts.values())) != 1:
        raise ValueError(f"hyperparameter_search.candidates: every regime needs the same number of candidates "
                         f"(equal search budget), got {counts}")
    for regime, items in candidates.items():
        for i, overrides in enumerate(items):
            where = f"hyperparameter_search.candidates.{regime}[{i}]"
            unknown = sorted(set(overrides) - training_keys - {MODEL_KEY})
            if unknown:
                raise ValueError(f"{where}: {unknown} are not training settings (known: {sorted(training_keys)}, "
                                 f"and {MODEL_KEY!r} for model settings)")
            if MODEL_KEY in overrides:
                _check_model_overrides(f"{where}.{MODEL_KEY}", overrides[MODEL_KEY], model, model_schema)
            unused = sorted(set(overrides) & UNUSED_BY_REGIME.get(regime, set()))
            if unused:
                raise ValueError(f"{where}: {regime} training does not use {unused}")
        if ranked_by_loss and any(key in o for o in items for key in LOSS_CHANGING_KEYS):
            raise ValueError(f"hyperparameter_search.candidates.{regime}: candidates that change loss_weights, "
                             f"stage_two or force_huber_delta (the loss of the selected weights) change "
                             f"the validation loss itself, so it cannot rank them; set hyperparameter_search.select_by "
                             f"to force_mae or energy_mae")
        seen = [json.dumps(o, sort_keys=True) for o in items]
        if len(set(seen)) != len(seen):
            raise ValueError(f"hyperparameter_search.candidates.{regime}: a candidate is listed twice")
    if search["size"] not in sizes:
        raise ValueError(f"hyperparameter_search.size: {search['size']!r} is not one of learning_curve.sizes "
                         f"{sizes} (the search trains on that subset and its validation set)")


def _check_model_overrides(where: str, overrides, model: dict, model_schema: dict) -> None:
    if not isinstance(overrides, dict) or not overrides:
        raise ValueError(f"{where}: needs a mapping of model settings, e.g. {{n_atom_basis: 128}}, got {overrides!r}")
    known = set(model_schema.get("properties", {}))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{where}: {unknown} are not model settings (known: {sorted(known)})")
    import jsonschema

    merged = candidate_model(model, {MODEL_KEY: overrides})
    try:
        jsonschema.validate(merged, model_schema)
    except jsonschema.ValidationError as exc:
        key = ".".join(str(p) for p in exc.absolute_path)
        raise ValueError(f"{where}{'.' + key if key else ''}: {exc.message}") from None
    check_model_section(merged, where)


def selection_table(summaries: list[str | Path], select_by: str = "val_loss") -> pd.DataFrame:
    """One row per candidate run; ``selected`` marks the lowest ``select_by`` figure per pair and regime."""
    if select_by not in SELECTION_COLUMNS:
        raise ValueError(f"unknown select_by {select_by!r} (choose one of {sorted(SELECTION_COLUMNS)})")
    rows = []
    for path in summaries:
        try:
            summary = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read run summary: {exc}") from exc
        missing = [c for c in TABLE_COLUMNS if c not in ("selected", "overrides", "target", "source")
                   and c not in summary]
        if missing:
            raise ValueError(f"{path}: not a search run summary (missing {missing})")
        row = {c: summary.get(c) for c in TABLE_COLUMNS if c != "selected"}
        row["overrides"] = json.dumps(summary.get("overrides", {}), sort_keys=True)
        row[STRESS_COLUMN] = summary.get(STRESS_COLUMN)
        rows.append(row)
    with_stress = any(row[STRESS_COLUMN] is not None for row in rows)
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS + ([STRESS_COLUMN] if with_stress else []))
    if df.empty:
        return df
    keys = ["dataset", "source", "target", "regime"]
    df = df.sort_values([*keys, "candidate"]).reset_index(drop=True)
    column = SELECTION_COLUMNS[select_by]
    best = df.groupby(keys)[column].transform("min")
    df["selected"] = df[column] == best
    return df


def table_markdown(df: pd.DataFrame, select_by: str = "val_loss") -> str:
    from mlp_transfer.aggregate import markdown_sections

    def render(g: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "regime": g["regime"], "candidate": g["candidate"], "overrides": g["overrides"],
            "val loss": [f"{v:.4g}" for v in g["best_val_loss"]],
            "val F MAE (meV/Å)": [f"{v:.1f}" for v in g["best_val_force_mae_mev_ang"]],
            "val E MAE (meV/atom)": [f"{v:.2f}" for v in g["best_val_energy_mae_mev_atom"]],
            **({"val stress MAE (GPa)": ["" if pd.isna(v) else f"{v:.3f}" for v in g[STRESS_COLUMN]]}
               if STRESS_COLUMN in g else {}),
            "best / stopped step": [f"{a} / {b} ({r})" for a, b, r in
                                    zip(g["best_step"], g["stopped_step"], g["stop_reason"])],
            "selected": ["**yes**" if s else "" for s in g["selected"]],
        })

    return markdown_sections(df, f"Hyper-parameter search (validation data only; selected by {select_by})", render)


def write_search_tables(summaries: list[str | Path], out_csv: str | Path, out_md: str | Path,
                        select_by: str = "val_loss") -> pd.DataFrame:
    df = selection_table(summaries, select_by)
    write_csv(df, out_csv)
    write_text(out_md, table_markdown(df, select_by))
    return df


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer hpsearch-table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summaries", nargs="+", help="summary.json of the search runs")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--select-by", choices=sorted(SELECTION_COLUMNS), default="val_loss",
                        help="validation figure that ranks the candidates (default: val_loss)")
    args = parser.parse_args(argv)
    try:
        df = write_search_tables(args.summaries, args.out_csv, args.out_md, args.select_by)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(df[df["selected"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
