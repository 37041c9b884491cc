"""End-to-end checks of the Snakemake workflow: lint, planning, and real runs of tiny configurations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlearn_data import needs_mlearn, shipped_config_with_mlearn

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=1500)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def _planned_counts(proc) -> dict:
    """Jobs per rule from the output of `snakemake -n --quiet rules`."""
    return {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}


def test_lint_is_clean():
    proc = snakemake("--lint", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Lints for" not in output, output


@pytest.mark.parametrize("config_args", [["--configfile", str(REPO / "config" / "config.yaml")], []],
                         ids=["configfile", "embedded"])
def test_dry_run_plans_the_default_study(tmp_path, config_args):
    """A fresh directory (no finished runs) plans every job of the default study, also without --configfile
    (the embedded default is found beside the Snakefile, not in the working directory)."""
    proc = snakemake("-n", "--quiet", "rules", *config_args, "--directory", str(tmp_path))
    counts = _planned_counts(proc)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    lc = config["learning_curve"]
    n_runs = len(lc["sizes"]) * len(lc["seeds"]) * len(lc["regimes"]) * len(config["pairs"])
    assert counts["train_target"] == n_runs
    assert counts["evaluate_target"] == n_runs
    assert counts["train_source"] == 1
    assert counts["generate_sw"] == 2
    assert counts["evaluate_committee"] == n_runs // len(lc["seeds"])


def test_invalid_config_stops_planning(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["learning_curve"]["sizes"] = [0, 2]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0
    assert "sizes" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    snakemake("--configfile", str(TINY), "--directory", str(workdir), "--cores", "2")
    return workdir


@pytest.mark.slow
def test_tiny_workflow_produces_tables_and_plots(tiny_run):
    config = yaml.safe_load(TINY.read_text())
    lc = pd.read_csv(tiny_run / "results/tables/learning_curve.csv")
    expected_columns = ["dataset", "source", "target", "regime", "n_train", "seed", "test_set",
                        "energy_mae_mev_atom", "energy_rmse_mev_atom", "force_mae_mev_ang", "force_rmse_mev_ang"]
    assert list(lc.columns[:len(expected_columns)]) == expected_columns
    test_sets = {f"T{t}K" for t in config["datasets"]["sw"]["temperatures"]} | {"rattle"}
    assert set(lc["test_set"]) == test_sets
    grid = config["learning_curve"]
    assert len(lc) == len(grid["sizes"]) * len(grid["seeds"]) * len(grid["regimes"]) * len(test_sets)
    assert set(lc["n_train"]) == set(grid["sizes"])
    assert lc[["force_mae_mev_ang", "energy_mae_mev_atom"]].notna().all().all()
    summary = pd.read_csv(tiny_run / "results/tables/summary.csv")
    assert (summary["n_seeds"] == len(grid["seeds"])).all()
    assert (tiny_run / "results/tables/summary.md").read_text().strip()
    source = pd.read_csv(tiny_run / "results/tables/source_models.csv")
    assert set(source["element"]) == {"Si"}
    # pre-training has its own step cap (source_training.max_steps), the target runs the training one
    source_run = json.loads((tiny_run / "results/models/sw/source/Si/summary.json").read_text())
    assert config["source_training"]["max_steps"] < config["training"]["max_steps"]
    assert (source_run["stopped_step"], source_run["stop_reason"]) == (config["source_training"]["max_steps"],
                                                                       "max_steps")
    for plot in ("learning_curve_sw_Si-Ge_force.png", "convergence_sw_Si-Ge.png"):
        assert (tiny_run / "results/plots" / plot).stat().st_size > 1000
    # every rule left a log
    assert (tiny_run / "logs/train/sw/source/Si.log").stat().st_size > 0


@pytest.mark.slow
def test_tiny_workflow_runs_the_hyperparameter_search(tiny_run):
    """Every candidate of every regime is trained on validation data and exactly one wins per regime."""
    search = yaml.safe_load(TINY.read_text())["hyperparameter_search"]
    table = pd.read_csv(tiny_run / "results/tables/hyperparameter_search.csv")
    assert sorted(table["regime"].value_counts().items()) == sorted(
        (regime, len(c)) for regime, c in search["candidates"].items())
    assert (table["n_train"] == search["size"]).all()
    assert (table.groupby("regime")["selected"].sum() == 1).all()
    for regime, group in table.groupby("regime"):
        winner = group.loc[group["selected"], "best_val_loss"].item()
        assert winner == group["best_val_loss"].min()
    summary = json.loads((tiny_run / "results/hpsearch/sw/Si-Ge/scratch/c1/summary.json").read_text())
    assert summary["lr"] == search["candidates"]["scratch"][1]["lr"]
    # the wider-model candidates: both regimes train that model; transfer starts from a source model
    # pre-trained with it (its own, beside the study's narrower source model)
    study_source = json.loads((tiny_run / "results/models/sw/source/Si/summary.json").read_text())
    (wide_source_dir,) = (tiny_run / "results/hpsearch/sw/source/Si").iterdir()
    wide_source = json.loads((wide_source_dir / "summary.json").read_text())
    assert wide_source["n_parameters"] > study_source["n_parameters"]
    for regime in ("transfer", "scratch"):
        wide = json.loads((tiny_run / f"results/hpsearch/sw/Si-Ge/{regime}/c1/summary.json").read_text())
        assert wide["n_parameters"] == wide_source["n_parameters"]
        assert wide["overrides"]["model"] == {"n_atom_basis": 12}
    assert (tiny_run / f"logs/hpsearch/sw/source/Si/{wide_source_dir.name}.log").stat().st_size > 0
    assert "yes" in (tiny_run / "results/tables/hyperparameter_search.md").read_text()


@pytest.mark.slow
def test_tiny_workflow_compares_with_published_errors(tiny_run):
    table = pd.read_csv(tiny_run / "results/tables/published_comparison.csv")
    ours = table[table["citation"] == "this study"]
    # both regimes at the largest size, as seed means and as seed committees
    assert set(ours["test_set"]) == {"T300K"} and len(ours) == 4
    assert sorted(ours["model"]) == ["scratch (Si→Ge)", "scratch committee of 2 (Si→Ge)", "transfer (Si→Ge)",
                                     "transfer committee of 2 (Si→Ge)"]
    assert (ours["force_vs_best_published"] == ours["force_mae_mev_ang"] / 100.0).all()


@pytest.mark.slow
def test_tiny_workflow_evaluates_seed_committees(tiny_run):
    """One committee per (regime, size) over all seeds; its force MAE is at most the members' mean (the MAE is
    convex) and its member columns agree with the per-seed evaluations."""
    config = yaml.safe_load(TINY.read_text())
    grid = config["learning_curve"]
    table = pd.read_csv(tiny_run / "results/tables/committee.csv")
    lc = pd.read_csv(tiny_run / "results/tables/learning_curve.csv")
    assert len(table) == len(grid["sizes"]) * len(grid["regimes"]) * lc["test_set"].nunique()
    assert (table["n_members"] == len(grid["seeds"])).all()
    assert (table["seeds"] == " ".join(map(str, grid["seeds"]))).all()
    assert (table["force_mae_mev_ang"] <= table["member_force_mae_mev_ang_mean"] + 1e-9).all()
    members = lc.groupby(["regime", "n_train", "test_set"])["force_mae_mev_ang"].mean()
    for row in table.itertuples():
        assert row.member_force_mae_mev_ang_mean == pytest.approx(members[(row.regime, row.n_train, row.test_set)],
                                                                  rel=1e-6)
    assert "Seed committees" in (tiny_run / "results/tables/committee.md").read_text()


@pytest.mark.slow
def test_tables_rebuild_from_finished_runs(tiny_run, tmp_path):
    """`mlp-transfer aggregate` rebuilds the same learning-curve table from the finished runs alone."""
    proc = subprocess.run([str(BIN / "mlp-transfer"), "aggregate", "--results", str(tiny_run / "results"),
                           "--tables", str(tmp_path / "tables"), "--plots", str(tmp_path / "plots")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rebuilt = pd.read_csv(tmp_path / "tables/learning_curve.csv")
    original = pd.read_csv(tiny_run / "results/tables/learning_curve.csv")
    pd.testing.assert_frame_equal(rebuilt, original)


@pytest.mark.slow
def test_changing_the_fine_tuning_rate_reruns_only_transfer_runs(tiny_run, tmp_path):
    """Runs depend only on the settings they use: a new transfer_lr replans the transfer runs (and what
    follows from them), never the source model, the scratch runs or the search."""
    def new_fine_tuning_rate(config):
        config["training"]["transfer_lr"] = 0.00042

    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(_tiny_variant(tmp_path, new_fine_tuning_rate)),
                     "--directory", str(tiny_run))
    counts = _planned_counts(proc)
    lc = yaml.safe_load(TINY.read_text())["learning_curve"]
    assert counts.get("train_target") == len(lc["sizes"]) * len(lc["seeds"])  # the transfer runs only
    assert "train_source" not in counts and "hpsearch_train" not in counts


def _tiny_variant(tmp_path, change) -> Path:
    config = yaml.safe_load(TINY.read_text())
    change(config)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # Snakemake compares dict params in order
    return path


def _set_execution_settings(config):
    config["training"]["threads"] = 2
    config["md"]["threads"] = 2
    config["datasets"]["sw"]["elements"] = list(reversed(config["datasets"]["sw"]["elements"]))


@pytest.mark.slow
def test_execution_settings_rerun_nothing(tiny_run, tmp_path):
    """Thread counts and the order of a dataset's elements change no result: the finished study stays up to
    date. Switching the reference MD off replans only the MD tables, not a model's MD."""
    proc = snakemake("-n", "--configfile", str(_tiny_variant(tmp_path, _set_execution_settings)),
                     "--directory", str(tiny_run))
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]

    def no_reference_md(config):
        config["md"]["reference"] = False

    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(_tiny_variant(tmp_path, no_reference_md)),
                     "--directory", str(tiny_run))
    planned = set(_planned_counts(proc))
    assert planned <= {"md_aggregate", "all", "total"}, planned


@pytest.mark.slow
def test_adding_a_size_trains_only_that_size(tiny_run, tmp_path):
    """The split files gain a subset, the existing ones stay as they were (tests/test_splits.py), so only the new
    size's runs are trained; the source model and the search are untouched."""
    def add_size(config):
        config["learning_curve"]["sizes"] = [*config["learning_curve"]["sizes"], 6]

    proc = snakemake("-n", "--quiet", "rules", "--configfile", str(_tiny_variant(tmp_path, add_size)),
                     "--directory", str(tiny_run))
    counts = _planned_counts(proc)
    lc = yaml.safe_load(TINY.read_text())["learning_curve"]
    assert counts["train_target"] == len(lc["seeds"]) * len(lc["regimes"])  # size 6 only
    assert counts["split_subset"] == len(lc["seeds"])  # the new size's subset files; the others stay
    assert counts["evaluate_target"] == counts["train_target"]
    assert "train_source" not in counts and "hpsearch_train" not in counts

    def change_validation(config):
        config["learning_curve"]["n_validation"] = 4

    counts = _planned_counts(snakemake("-n", "--quiet", "rules", "--configfile",
                                       str(_tiny_variant(tmp_path, change_validation)), "--directory", str(tiny_run)))
    # another validation set changes every subset: every learning-curve run and the search are replanned
    assert counts["train_target"] == len(lc["sizes"]) * len(lc["seeds"]) * len(lc["regimes"])
    assert "hpsearch_train" in counts and "train_source" not in counts


@pytest.mark.slow
def test_rerun_is_up_to_date(tiny_run):
    proc = snakemake("-n", "--configfile", str(TINY), "--directory", str(tiny_run))
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
@needs_mlearn
def test_reduced_mlearn_study_runs(tmp_path):
    """A reduced variant of config/mlearn.yaml (same datasets and pair, tiny budgets) runs to its tables."""
    config = shipped_config_with_mlearn("mlearn.yaml")
    config["source_training"] = {"n_train": 8, "n_validation": 4, "seed": 0, "stratify_by": "group"}
    config["learning_curve"].update({"sizes": [2, 4], "seeds": [0], "n_validation": 4, "stratify_by": "group"})
    config["model"] = {"architecture": "painn", "cutoff": 4.0, "n_atom_basis": 8, "n_interactions": 1, "n_rbf": 8}
    config["training"] = {"batch_size": 2, "max_steps": 10, "val_interval": 5, "early_stopping": {"patience": 2}}
    config["hyperparameter_search"] = {"size": 2, "candidates": {"transfer": [{"transfer_lr": 0.001}],
                                                                 "scratch": [{"lr": 0.002}]}}
    path = tmp_path / "mlearn_reduced.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake("--configfile", str(path), "--directory", str(tmp_path), "--cores", "2")
    # stratified by mlearn group: 4 of the 228 Ge structures (90 AIMD-NVT, 72 Vacancy, 55 Elastic, 11 Surface)
    splits = json.loads((tmp_path / "results/splits/mlearn/Ge/seed0.json").read_text())
    assert splits["stratify_by"] == "group"
    assert splits["validation_groups"] == {"AIMD-NVT": 2, "Elastic": 1, "Vacancy": 1}
    assert splits["train_groups"]["2"] == {"AIMD-NVT": 1, "Vacancy": 1}
    assert json.loads((tmp_path / "results/splits/mlearn/Si/source.json").read_text())["stratify_by"] == "group"
    lc = pd.read_csv(tmp_path / "results/tables/learning_curve.csv")
    assert set(lc["test_set"]) == {"test"}
    assert set(lc["regime"]) == {"transfer", "scratch"}
    assert set(lc["n_train"]) == {2, 4}
    # the published split is kept: 25 Ge test structures
    assert (lc["n_structures"] == 25).all()
    # GAP and MTP of Zuo et al. beside our Ge models and the Si source model, on the same test sets
    published = pd.read_csv(tmp_path / "results/tables/published_comparison.csv")
    assert {"GAP", "MTP", "source (Si)", "transfer (Si→Ge)", "scratch (Si→Ge)"} <= set(published["model"])
    assert set(published["element"]) == {"Si", "Ge"}
