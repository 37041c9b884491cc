"""Tests for the aggregation stage on synthetic runs with hand-computable numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlp_transfer import aggregate as agg

REGIMES = ("transfer", "scratch")
SIZES = {"10": 10, "20": 20, "all": 37}  # path size label -> actual n_train
SEEDS = (0, 1)
TEST_SETS = ("T300K", "rattle")
THRESHOLDS = (100.0, 75.0, 60.0)


def force_mae(regime: str, n_train: int, seed: int, test_set: str) -> float:
    """Known numbers: transfer is better except for seed 1 at n_train=37, where scratch wins."""
    base = 1000.0 / n_train + (5.0 if test_set == "rattle" else 0.0)
    if regime == "transfer":
        return base * 0.5 + seed * 2.0 if not (n_train == 37 and seed == 1) else base * 2.0
    return base + seed * 4.0


def energy_mae(regime: str, n_train: int, seed: int, test_set: str) -> float:
    return force_mae(regime, n_train, seed, test_set) / 10.0


def eval_rows(regime: str, n_train: int, seed: int) -> list[dict]:
    return [
        {
            "dataset": "sw",
            "source": "Si",
            "target": "Ge",
            "regime": regime,
            "n_train": n_train,
            "seed": seed,
            "test_set": ts,
            "n_structures": 50,
            "energy_mae_mev_atom": energy_mae(regime, n_train, seed, ts),
            "energy_rmse_mev_atom": energy_mae(regime, n_train, seed, ts) * 1.3,
            "force_mae_mev_ang": force_mae(regime, n_train, seed, ts),
            "force_rmse_mev_ang": force_mae(regime, n_train, seed, ts) * 1.3,
        }
        for ts in TEST_SETS
    ]


def history_curve(regime: str, n_train: int, seed: int) -> pd.DataFrame:
    """Validation force MAE per step (0..200 every 25 steps).

    transfer, seed 0: 120 at step 0, 90 at 25, 70 at 50, then flat at 65 (never reaches 60).
    scratch: 400 at 0, 150 at 25, then 99 at 50, 80, 74, 59, 58, ... (reaches 100 at step 50).
    Other transfer seeds: like seed 0 but reaching 55 at the end.
    """
    steps = np.arange(0, 201, 25)
    if regime == "transfer":
        mae = [120, 90, 70, 65, 65, 65, 65, 65, 65 if seed == 0 else 55]
    else:
        mae = [400, 150, 99, 80, 74, 59, 58, 57, 56]
    return pd.DataFrame(
        {
            "step": steps,
            "epoch": steps // 25,
            "wall_time_s": steps * 0.5,
            "lr": 1e-3,
            "train_loss": np.array(mae, dtype=float) / 10,
            "val_loss": np.array(mae, dtype=float) / 10,
            "val_energy_mae_mev_atom": np.array(mae, dtype=float) / 10,
            "val_force_mae_mev_ang": np.array(mae, dtype=float),
        }
    )


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A results tree with 2 regimes x 3 sizes x 2 seeds x 2 test sets, evaluations and histories."""
    root = tmp_path / "results"
    for regime in REGIMES:
        for label, n_train in SIZES.items():
            for seed in SEEDS:
                ev = root / "eval" / "sw" / "Si-Ge" / regime / f"n{label}" / f"seed{seed}.csv"
                ev.parent.mkdir(parents=True, exist_ok=True)
                pd.DataFrame(eval_rows(regime, n_train, seed)).to_csv(ev, index=False)
                run = root / "models" / "sw" / "Si-Ge" / regime / f"n{label}" / f"seed{seed}"
                run.mkdir(parents=True, exist_ok=True)
                history_curve(regime, n_train, seed).to_csv(run / "history.csv", index=False)
                summary = {
                    "dataset": "sw", "source": "Si", "target": "Ge", "regime": regime, "n_train": n_train,
                    "seed": seed, "best_step": 200, "best_val_force_mae_mev_ang": 55.0, "stopped_step": 200,
                    "stop_reason": "max_steps", "train_wall_time_s": 100.0, "n_parameters": 1000,
                }  # fmt: skip
                (run / "summary.json").write_text(json.dumps(summary))
    return root


# ---------------------------------------------------------------------------------------------------


def test_discovery_finds_all_finished_runs(results: Path):
    assert len(agg.discover_eval_csvs(results)) == 12
    assert len(agg.discover_histories(results)) == 12


def test_discovery_skips_unfinished_training(results: Path):
    (results / "models/sw/Si-Ge/scratch/n10/seed0/summary.json").unlink()
    found = agg.discover_histories(results)
    assert len(found) == 11
    assert results / "models/sw/Si-Ge/scratch/n10/seed0/history.csv" not in found


def test_learning_curve_columns_order_and_sorting(results: Path):
    lc = agg.learning_curve_table(agg.discover_eval_csvs(results))
    assert list(lc.columns) == [
        "dataset", "source", "target", "regime", "n_train", "seed", "test_set",
        "energy_mae_mev_atom", "energy_rmse_mev_atom", "force_mae_mev_ang", "force_rmse_mev_ang",
        "n_structures",
    ]  # fmt: skip
    assert len(lc) == 2 * 3 * 2 * 2
    assert lc.equals(lc.sort_values(agg.ROW_KEYS, ignore_index=True))
    assert sorted(lc["n_train"].unique()) == [10, 20, 37]
    assert lc["n_train"].dtype == np.int64 and lc["seed"].dtype == np.int64


def test_duplicate_rows_rejected_naming_the_file(results: Path):
    csvs = agg.discover_eval_csvs(results)
    copy = results / "extra" / "copy.csv"
    copy.parent.mkdir()
    copy.write_text(csvs[0].read_text())
    with pytest.raises(ValueError, match="duplicate") as err:
        agg.learning_curve_table(csvs + [copy])
    assert str(copy) in str(err.value) and str(csvs[0]) in str(err.value)


def test_duplicate_within_one_file_rejected(tmp_path: Path):
    path = tmp_path / "dup.csv"
    rows = eval_rows("transfer", 10, 0)
    pd.DataFrame(rows + rows[:1]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"dup\.csv"):
        agg.learning_curve_table([path])


def test_missing_column_rejected_naming_the_file(tmp_path: Path):
    path = tmp_path / "bad.csv"
    pd.DataFrame(eval_rows("transfer", 10, 0)).drop(columns="force_mae_mev_ang").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv.*force_mae_mev_ang"):
        agg.learning_curve_table([path])


def test_csv_inconsistent_with_its_path_rejected(tmp_path: Path):
    path = tmp_path / "results/eval/sw/Si-Ge/scratch/n10/seed0.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(eval_rows("transfer", 10, 0)).to_csv(path, index=False)
    with pytest.raises(ValueError, match="regime"):
        agg.learning_curve_table([path])


def test_summary_means_and_stds(results: Path):
    lc = agg.learning_curve_table(agg.discover_eval_csvs(results))
    summary = agg.summary_table(lc)
    assert list(summary.columns[:8]) == ["dataset", "source", "target", "regime", "n_train", "test_set", "n_seeds", "seeds"]
    assert len(summary) == 2 * 3 * 2
    row = summary.query("regime == 'scratch' and n_train == 10 and test_set == 'T300K'").iloc[0]
    values = [force_mae("scratch", 10, s, "T300K") for s in SEEDS]  # 100 and 104
    assert row["n_seeds"] == 2 and row["seeds"] == "0 1"
    assert row["force_mae_mev_ang_mean"] == pytest.approx(102.0)
    assert row["force_mae_mev_ang_std"] == pytest.approx(np.std(values, ddof=1)) == pytest.approx(math.sqrt(8))
    assert row["energy_mae_mev_atom_mean"] == pytest.approx(10.2)
    assert row["force_rmse_mev_ang_mean"] == pytest.approx(102.0 * 1.3)


def test_comparison_ratio_and_wins(results: Path):
    lc = agg.learning_curve_table(agg.discover_eval_csvs(results))
    comp = agg.comparison_table(lc)
    assert set(comp["regime"]) == {"transfer"} and set(comp["baseline"]) == {"scratch"}
    assert len(comp) == 3 * 2
    r10 = comp.query("n_train == 10 and test_set == 'T300K'").iloc[0]
    # transfer: 50, 52; scratch: 100, 104
    assert r10["n_pairs"] == 2 and r10["force_wins"] == 2 and r10["energy_wins"] == 2
    assert r10["force_mae_ratio"] == pytest.approx(51.0 / 102.0)
    r37 = comp.query("n_train == 37 and test_set == 'rattle'").iloc[0]
    base = 1000.0 / 37 + 5.0
    assert r37["force_wins"] == 1  # seed 1: transfer 2*base > scratch base+4
    assert r37["force_mae_ratio"] == pytest.approx((0.5 * base + 2 * base) / (2 * base + 4.0))


def test_comparison_handles_extra_regime_and_unpaired_seeds(results: Path):
    lc = agg.learning_curve_table(agg.discover_eval_csvs(results))
    extra = lc.query("regime == 'transfer' and seed == 0").assign(regime="zeroshot")
    lc = pd.concat([lc.query("not (regime == 'scratch' and seed == 1)"), extra], ignore_index=True)
    comp = agg.comparison_table(lc)
    assert set(comp["regime"]) == {"transfer", "zeroshot"}
    assert (comp["n_pairs"] == 1).all()
    assert agg.comparison_table(lc.query("regime != 'scratch'")).empty


def test_convergence_thresholds(results: Path):
    hist = agg.load_histories(agg.discover_histories(results))
    conv = agg.convergence_table(hist, THRESHOLDS)
    assert list(conv.columns) == agg.CONVERGENCE_RUN_COLUMNS
    assert set(conv["criterion"]) == {"force_mae<=100", "force_mae<=75", "force_mae<=60", "force_mae<=1.1*best"}

    def get(regime, seed, criterion):
        return conv.query("regime == @regime and n_train == 10 and seed == @seed and criterion == @criterion").iloc[0]

    s = get("scratch", 0, "force_mae<=100")
    assert s["steps_to_threshold"] == 50 and s["wall_time_s_to_threshold"] == 25.0 and s["reached"]
    assert get("scratch", 0, "force_mae<=75")["steps_to_threshold"] == 100
    assert get("scratch", 0, "force_mae<=60")["steps_to_threshold"] == 125
    # best 56 -> within 10 %: <= 61.6 -> first at step 125 (59)
    rel = get("scratch", 0, "force_mae<=1.1*best")
    assert rel["threshold_mev_ang"] == pytest.approx(61.6) and rel["steps_to_threshold"] == 125
    assert rel["best_val_force_mae_mev_ang"] == 56 and rel["best_step"] == 200 and rel["last_step"] == 200
    assert get("transfer", 0, "force_mae<=100")["steps_to_threshold"] == 25
    never = get("transfer", 0, "force_mae<=60")
    assert not never["reached"] and np.isnan(never["steps_to_threshold"]) and np.isnan(never["wall_time_s_to_threshold"])
    assert get("transfer", 1, "force_mae<=60")["steps_to_threshold"] == 200
    # best 65 -> within 10 %: <= 71.5 -> first at step 50 (70)
    assert get("transfer", 0, "force_mae<=1.1*best")["steps_to_threshold"] == 50


def test_convergence_step_zero_counts():
    hist = history_curve("transfer", 10, 0).assign(dataset="sw", source="Si", target="Ge", regime="transfer", n_train=10, seed=0)
    conv = agg.convergence_table(hist, (150.0,), relative_tolerance=None)
    assert len(conv) == 1 and conv.iloc[0]["steps_to_threshold"] == 0


def test_convergence_summary(results: Path):
    conv = agg.convergence_table(agg.load_histories(agg.discover_histories(results)), THRESHOLDS)
    summ = agg.convergence_summary(conv)
    assert len(summ) == 2 * 3 * 4
    sub = summ.query("regime == 'transfer' and n_train == 20")
    assert list(sub["criterion"]) == ["force_mae<=100", "force_mae<=75", "force_mae<=60", "force_mae<=1.1*best"]
    row = sub.query("criterion == 'force_mae<=60'").iloc[0]
    assert row["n_runs"] == 2 and row["n_reached"] == 1
    assert row["steps_to_threshold_mean"] == 200 and np.isnan(row["steps_to_threshold_std"])
    row = summ.query("regime == 'scratch' and n_train == 20 and criterion == 'force_mae<=100'").iloc[0]
    assert row["n_reached"] == 2 and row["steps_to_threshold_mean"] == 50 and row["wall_time_s_to_threshold_mean"] == 25.0


def test_history_metadata_from_path_without_summary(tmp_path: Path):
    path = tmp_path / "models/sw/Si-Ge/scratch/n20/seed3/history.csv"
    path.parent.mkdir(parents=True)
    history_curve("scratch", 20, 3).to_csv(path, index=False)
    hist = agg.load_histories([path])
    assert hist[agg.RUN_KEYS].drop_duplicates().to_dict("records") == [
        {"dataset": "sw", "source": "Si", "target": "Ge", "regime": "scratch", "n_train": 20, "seed": 3}
    ]


def test_markdown_uses_mean_pm_std(results: Path):
    lc = agg.learning_curve_table(agg.discover_eval_csvs(results))
    md = agg.summary_markdown(agg.summary_table(lc))
    assert "## sw: Si → Ge" in md
    assert "102.0 ± 2.8" in md  # scratch n=10 T300K force MAE, std sqrt(8) = 2.83
    comp_md = agg.comparison_markdown(agg.comparison_table(lc))
    assert "2/2" in comp_md and "1/2" in comp_md


def test_aggregate_writes_tables_and_plots(results: Path, tmp_path: Path):
    tables, plots = tmp_path / "tables", tmp_path / "plots"
    written = agg.aggregate(results, tables, plots, thresholds=THRESHOLDS)
    expected_tables = {
        "learning_curve.csv", "summary.csv", "summary.md", "comparison.csv", "comparison.md",
        "convergence_runs.csv", "convergence_summary.csv", "convergence_summary.md", "training_runs.csv",
    }  # fmt: skip
    assert {p.name for p in tables.iterdir()} == expected_tables
    expected_plots = {
        "learning_curve_sw_Si-Ge_force.png", "learning_curve_sw_Si-Ge_energy.png", "convergence_sw_Si-Ge.png", "temperature_sw_Si-Ge.png",
    }  # fmt: skip
    assert {p.name for p in plots.iterdir()} == expected_plots
    for name in expected_plots:
        data = (plots / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    assert set(map(Path, written.values())) == {tables / n for n in expected_tables} | {plots / n for n in expected_plots}
    lc = pd.read_csv(tables / "learning_curve.csv")
    assert list(lc.columns[:11]) == agg.LEARNING_CURVE_COLUMNS


def test_aggregate_without_histories_still_writes_tables(results: Path, tmp_path: Path):
    csvs = agg.discover_eval_csvs(results)
    written = agg.aggregate(results, tmp_path / "t", tmp_path / "p", eval_csvs=csvs[:4], histories=[])
    assert (tmp_path / "t" / "convergence_runs.csv").read_text().startswith("dataset,source,target,regime")
    assert pd.read_csv(tmp_path / "t" / "convergence_runs.csv").empty
    assert "convergence_sw_Si-Ge" not in written and not (tmp_path / "p" / "convergence_sw_Si-Ge.png").exists()
    assert "learning_curve_sw_Si-Ge_force" in written


def test_aggregate_no_runs_is_an_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no finished runs"):
        agg.aggregate(tmp_path / "results", tmp_path / "t", tmp_path / "p")


def test_cli_end_to_end(results: Path, tmp_path: Path, capsys):
    tables, plots = tmp_path / "tab", tmp_path / "plt"
    rc = agg.cli(["--results", str(results), "--tables", str(tables), "--plots", str(plots), "--thresholds", "100", "75"])
    assert rc == 0
    conv = pd.read_csv(tables / "convergence_summary.csv")
    assert set(conv["criterion"]) == {"force_mae<=100", "force_mae<=75", "force_mae<=1.1*best"}
    assert (plots / "learning_curve_sw_Si-Ge_force.png").stat().st_size > 0
    assert str(tables / "summary.md") in capsys.readouterr().out


def test_cli_explicit_inputs(results: Path, tmp_path: Path):
    csvs = [str(p) for p in agg.discover_eval_csvs(results) if "/transfer/" in p.as_posix()]
    hists = [str(p) for p in agg.discover_histories(results)][:2]
    rc = agg.cli(["--results", str(tmp_path / "nowhere"), "--tables", str(tmp_path / "t"), "--plots", str(tmp_path / "p"), "--eval-csvs", *csvs, "--histories", *hists])
    assert rc == 0
    assert set(pd.read_csv(tmp_path / "t" / "learning_curve.csv")["regime"]) == {"transfer"}
    assert pd.read_csv(tmp_path / "t" / "comparison.csv").empty
    assert len(pd.read_csv(tmp_path / "t" / "convergence_runs.csv")) == 2 * 4


def test_cli_no_runs_exit_code_2(tmp_path: Path, capsys):
    assert agg.cli(["--results", str(tmp_path / "empty")]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_cli_duplicate_exit_code_2(results: Path, tmp_path: Path, capsys):
    csv = str(agg.discover_eval_csvs(results)[0])
    assert agg.cli(["--results", str(results), "--tables", str(tmp_path / "t"), "--plots", str(tmp_path / "p"), "--eval-csvs", csv, csv]) == 2
    assert csv in capsys.readouterr().err


def test_cli_thresholds_default_to_the_configs(results: Path, tmp_path: Path):
    """With --configfile and no --thresholds, the convergence table uses the config's thresholds, as the
    workflow's aggregate rule does; --thresholds still overrides them."""
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "config.yaml").read_text())
    config["learning_curve"].update(sizes=[10, 20, "all"], seeds=list(SEEDS), regimes=list(REGIMES))
    config["aggregation"]["force_thresholds_mev_ang"] = [150, 70]
    configfile = tmp_path / "study.yaml"
    configfile.write_text(yaml.safe_dump(config))
    common = ["--results", str(results), "--plots", str(tmp_path / "p"), "--configfile", str(configfile)]

    assert agg.cli([*common, "--tables", str(tmp_path / "from_config")]) == 0
    conv = pd.read_csv(tmp_path / "from_config" / "convergence_summary.csv")
    assert list(dict.fromkeys(conv["criterion"])) == ["force_mae<=150", "force_mae<=70", "force_mae<=1.1*best"]
    # scratch, seed 0: 150 is first reached at step 25, 70 at step 125 (59)
    row = conv.query("regime == 'scratch' and n_train == 10 and criterion == 'force_mae<=70'").iloc[0]
    assert row["n_reached"] == 2 and row["steps_to_threshold_mean"] == 125

    assert agg.cli([*common, "--tables", str(tmp_path / "given"), "--thresholds", "100"]) == 0
    given = pd.read_csv(tmp_path / "given" / "convergence_summary.csv")
    assert set(given["criterion"]) == {"force_mae<=100", "force_mae<=1.1*best"}


def test_cli_without_config_uses_the_schemas_thresholds(results: Path, tmp_path: Path):
    """One default for the workflow and the bare command: the schema's aggregation.force_thresholds_mev_ang."""
    import yaml

    from mlp_transfer.config import SCHEMA_PATH

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    default = schema["properties"]["aggregation"]["properties"]["force_thresholds_mev_ang"]["default"]
    assert agg.cli(["--results", str(results), "--tables", str(tmp_path / "t"), "--plots", str(tmp_path / "p")]) == 0
    conv = pd.read_csv(tmp_path / "t" / "convergence_summary.csv")
    assert list(dict.fromkeys(conv["criterion"])) == [*(f"force_mae<={x:g}" for x in default), "force_mae<=1.1*best"]


def _grid() -> list[dict]:
    config = {"pairs": [{"dataset": "sw", "source": "Si", "target": "Ge"}],
              "learning_curve": {"sizes": list(SIZES), "seeds": list(SEEDS), "regimes": list(REGIMES)}}
    return agg.expected_runs(config)


def _move_runs(results: Path, to: Path, label: str, seed: int) -> None:
    """Move one (size, seed)'s evaluations and models of both regimes from one results tree to another."""
    for regime in REGIMES:
        for part in (Path("eval") / "sw" / "Si-Ge" / regime / f"n{label}" / f"seed{seed}.csv",
                     Path("models") / "sw" / "Si-Ge" / regime / f"n{label}" / f"seed{seed}"):
            (to / part).parent.mkdir(parents=True, exist_ok=True)
            (results / part).rename(to / part)


def test_previous_tables_stand_in_for_runs_whose_raw_results_are_gone(results: Path, tmp_path: Path):
    """Tables of a partial study plus the runs finished later (elsewhere) give the full study's tables."""
    full = tmp_path / "full"
    agg.aggregate(results, full, tmp_path / "p_full", thresholds=THRESHOLDS, expected=_grid())
    later = tmp_path / "later"
    _move_runs(results, later, "all", 1)
    earlier = tmp_path / "earlier"
    agg.aggregate(results, earlier, tmp_path / "p0", thresholds=THRESHOLDS, expected=_grid(), allow_partial=True)
    assert len(pd.read_csv(earlier / "missing_runs.csv")) == 2
    merged = tmp_path / "merged"
    agg.aggregate(later, merged, tmp_path / "p1", thresholds=THRESHOLDS, expected=_grid(), previous=earlier)
    assert not (merged / "missing_runs.csv").exists()
    for name in ("learning_curve.csv", "summary.csv", "comparison.csv", "training_runs.csv",
                 "convergence_runs.csv", "convergence_summary.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(merged / name), pd.read_csv(full / name), check_like=True)
    assert "Convergence of" not in (merged / "convergence_summary.md").read_text()


def test_previous_tables_without_convergence_runs_say_what_convergence_covers(results: Path, tmp_path: Path):
    later = tmp_path / "later"
    _move_runs(results, later, "all", 1)
    earlier = tmp_path / "earlier"
    agg.aggregate(results, earlier, tmp_path / "p0", thresholds=THRESHOLDS, expected=_grid(), allow_partial=True)
    (earlier / "convergence_runs.csv").unlink()
    merged = tmp_path / "merged"
    assert agg.cli(["--results", str(later), "--tables", str(merged), "--plots", str(tmp_path / "p1"),
                    "--thresholds", "100", "--configfile", str(_config_file(tmp_path)),
                    "--previous", str(earlier)]) == 0
    assert len(pd.read_csv(merged / "learning_curve.csv")) == len(REGIMES) * len(SIZES) * len(SEEDS) * 2
    assert len(pd.read_csv(merged / "training_runs.csv")) == len(REGIMES) * len(SIZES) * len(SEEDS)
    assert len(pd.read_csv(merged / "convergence_runs.csv")[agg.RUN_KEYS].drop_duplicates()) == 2
    assert "Convergence of 2 of 12 runs" in (merged / "convergence_summary.md").read_text()


def _config_file(tmp_path: Path) -> Path:
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "config.yaml").read_text())
    config["learning_curve"].update(sizes=[10, 20, "all"], seeds=list(SEEDS), regimes=list(REGIMES))
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_previous_tables_refuse_a_run_found_twice_and_need_the_grid(results: Path, tmp_path: Path, capsys):
    earlier = tmp_path / "earlier"
    agg.aggregate(results, earlier, tmp_path / "p0", thresholds=THRESHOLDS, expected=_grid())
    with pytest.raises(agg.AggregateError, match="also in .*learning_curve.csv"):
        agg.aggregate(results, tmp_path / "t", tmp_path / "p", expected=_grid(), previous=earlier)
    assert not (tmp_path / "t").exists()
    assert agg.cli(["--results", str(results), "--tables", str(tmp_path / "t"), "--previous", str(earlier)]) == 2
    assert "need the study's grid" in capsys.readouterr().err
    smaller = [run for run in _grid() if run["size"] != "20"]
    with pytest.raises(agg.AggregateError, match=r"transfer n_train=20 seed \d is not in the expected grid"):
        agg.aggregate(tmp_path / "none", tmp_path / "t", tmp_path / "p", expected=smaller, previous=earlier)
    with pytest.raises(agg.AggregateError, match="not found"):
        agg.aggregate(results, tmp_path / "t", tmp_path / "p", expected=_grid(), previous=tmp_path / "nowhere")
