"""Determinism: the tiny config run twice from scratch in two directories gives byte-identical data and
split files and the same metrics (to 1e-6); another learning-curve seed gives other splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tiny_runs import TABLES, TINY, reference_run, run_workflow

#: Columns that measure time, not results: they differ between any two runs.
TIMING = {"wall_time_s", "wall_time_s_to_threshold", "wall_time_s_to_threshold_mean",
          "wall_time_s_to_threshold_std", "train_wall_time_s"}


def assert_same_numbers(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    assert list(a.columns) == list(b.columns), what
    assert len(a) == len(b) and len(a) > 0, what
    for column in a.columns:
        if column in TIMING:
            continue
        if pd.api.types.is_numeric_dtype(a[column]) and pd.api.types.is_numeric_dtype(b[column]):
            np.testing.assert_allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-6, atol=1e-6,
                                       equal_nan=True, err_msg=f"{what}: column {column}")
        else:
            assert a[column].astype(str).tolist() == b[column].astype(str).tolist(), f"{what}: column {column}"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    first = reference_run(tmp_path_factory)
    second = tmp_path_factory.mktemp("tiny_second")
    run_workflow(second)
    return first, second


def test_data_and_splits_are_identical(two_runs):
    first, second = two_runs
    files = sorted(p.relative_to(first) for p in (first / "results").glob("data/**/*.extxyz"))
    files += sorted(p.relative_to(first) for p in (first / "results").glob("splits/**/*.json"))
    # Si/Ge train+test; Si source split, Ge seed0/seed1 split overviews and their size-2 and size-4 subset files
    assert len(files) == 4 + 3 + 4
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), f"{rel} differs between runs"


def test_metrics_are_identical(two_runs):
    first, second = two_runs
    for name in TABLES:
        a, b = (pd.read_csv(run / "results/tables" / name) for run in two_runs)
        assert_same_numbers(a, b, name)
    histories = sorted(p.relative_to(first) for p in (first / "results/models").rglob("history.csv"))
    assert len(histories) == 1 + 8  # the source model and the 2 x 2 x 2 learning-curve runs
    for rel in histories:
        assert_same_numbers(pd.read_csv(first / rel), pd.read_csv(second / rel), str(rel))
    for rel in (p.relative_to(first) for p in (first / "results/models").rglob("summary.json")):
        a, b = (json.loads((run / rel).read_text()) for run in two_runs)
        assert (a["best_step"], a["stopped_step"], a["stop_reason"], a["n_train"]) == \
            (b["best_step"], b["stopped_step"], b["stop_reason"], b["n_train"]), rel
        for key in ("energy_offset_ev_atom", "best_val_force_mae_mev_ang", "best_val_energy_mae_mev_atom"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-6), f"{rel}: {key}"


def test_another_seed_gives_other_splits(two_runs, tmp_path):
    first, _ = two_runs
    seed0 = json.loads((first / "results/splits/sw/Ge/seed0.json").read_text())
    seed1 = json.loads((first / "results/splits/sw/Ge/seed1.json").read_text())
    config = yaml.safe_load(TINY.read_text())
    config["learning_curve"]["seeds"] = [7]
    path = tmp_path / "seed7.yaml"
    path.write_text(yaml.safe_dump(config))
    run_workflow(tmp_path, path, "results/splits/sw/Ge/seed7.json")
    seed7 = json.loads((tmp_path / "results/splits/sw/Ge/seed7.json").read_text())
    # same pool (generation does not depend on the learning-curve seed), different draws
    assert (tmp_path / "results/data/sw/Ge/train.extxyz").read_bytes() == \
        (first / "results/data/sw/Ge/train.extxyz").read_bytes()
    splits = {0: seed0, 1: seed1, 7: seed7}
    for a, b in ((0, 1), (0, 7), (1, 7)):
        assert (splits[a]["validation"], splits[a]["train"]) != (splits[b]["validation"], splits[b]["train"]), (a, b)
    for split in splits.values():  # and each is still a valid nested split of the same pool
        assert split["pool_size"] == seed0["pool_size"]
        assert set(split["train"]["2"]) <= set(split["train"]["4"])
        assert not set(split["validation"]) & set(split["train"]["4"])
