"""benchmarks/device/run_search.py: the workflow's search runs on one GPU node without Snakemake.

It must plan exactly the runs, settings and layout of the workflow's search rules, run them (a transfer
candidate with its own model after its source), and tabulate them; run here on the CPU with the tiny config.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from mlp_transfer.config import load_config
from mlp_transfer.hpsearch import candidate_run_settings, model_tag
from mlp_transfer.splits import write_splits
from mlp_transfer.train import run_training, source_training_settings

from test_config import TINY

REPO = Path(__file__).resolve().parents[1]


def _driver():
    spec = importlib.util.spec_from_file_location("run_search", REPO / "benchmarks" / "device" / "run_search.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def results(tmp_path, sw_pools) -> Path:
    """A workflow results folder with the tiny config's pools and split files (no models yet)."""
    results = tmp_path / "results"
    for element, pool in sw_pools.items():
        data = results / "data" / "sw" / element
        data.mkdir(parents=True)
        shutil.copy(pool, data / "train.extxyz")
    write_splits(results / "data/sw/Ge/train.extxyz", results / "splits/sw/Ge/seed0.json", ["2", "4"],
                 n_validation=3, seed=0)
    write_splits(results / "data/sw/Si/train.extxyz", results / "splits/sw/Si/source.json", ["all"],
                 n_validation=3, seed=0)
    return results


def test_plan_matches_the_workflow_layout_and_settings(results):
    driver, config = _driver(), load_config(TINY)
    runs = {run.name: run for run in driver.plan_runs(config, results, threads=3)}
    wide = {**config["model"], "n_atom_basis": 12}
    own_source = f"hpsearch/sw/source/Si/{model_tag(wide)}"
    assert set(runs) == {own_source, *(f"hpsearch/sw/Si-Ge/{r}/c{i}" for r in ("transfer", "scratch") for i in (0, 1))}
    assert list(runs)[0] == own_source  # sources are started first
    assert runs[own_source].spec["regime"] == "source" and runs[own_source].spec["splits"].endswith("Si/source.json")
    assert runs[own_source].spec["model_config"] == wide
    assert runs[own_source].spec["training_config"] == {**source_training_settings(config, wide)["training"],
                                                        "threads": 3}
    study_source, own = runs["hpsearch/sw/Si-Ge/transfer/c0"], runs["hpsearch/sw/Si-Ge/transfer/c1"]
    assert study_source.after is None and study_source.spec["source_model"] == str(results / "models/sw/source/Si/model.pt")
    assert own.after == own_source and own.spec["source_model"] == str(results / own_source / "model.pt")
    scratch = runs["hpsearch/sw/Si-Ge/scratch/c1"]
    expected = candidate_run_settings(config, "scratch", config["hyperparameter_search"]["candidates"]["scratch"][1])
    assert scratch.spec["model_config"] == expected["model"]
    assert scratch.spec["training_config"] == {**expected["training"], "threads": 3}
    assert scratch.spec["size"] == "2" and scratch.spec["splits"] == str(results / "splits/sw/Ge/seed0.json")
    assert scratch.spec["metadata"]["overrides"] == config["hyperparameter_search"]["candidates"]["scratch"][1]


def test_missing_study_source_model_is_an_error_before_anything_runs(results, tmp_path, capsys):
    validated = tmp_path / "config.json"
    assert _driver().main(["--config", str(TINY), "--write-validated", str(validated)]) == 0
    assert _driver().main(["--validated", str(validated), "--results", str(results)]) == 2
    assert "models/sw/source/Si/model.pt" in capsys.readouterr().err
    assert not (results / "hpsearch").exists()


def test_runs_every_candidate_and_tabulates_them(results, tmp_path):
    config = load_config(TINY)
    study = source_training_settings(config)
    out = results / "models/sw/source/Si"
    run_training(regime="source", pool=results / "data/sw/Si/train.extxyz",
                 splits=results / "splits/sw/Si/source.json", size="all", element="Si", seed=0,
                 model_config=study["model"], training_config=study["training"], out_model=out / "model.pt",
                 out_history=out / "history.csv", out_summary=out / "summary.json")
    validated = tmp_path / "config.json"
    validated.write_text(json.dumps(config))
    assert _driver().main(["--validated", str(validated), "--results", str(results), "--threads", "1"]) == 0
    table = (results / "tables/hyperparameter_search.csv").read_text().splitlines()
    assert len(table) == 1 + 4  # two candidates per regime; source pre-trainings are not candidates
    own = json.loads((results / "hpsearch/sw/Si-Ge/transfer/c1/summary.json").read_text())
    assert own["regime"] == "transfer" and own["n_parameters"] > 0
    logs = sorted(p.relative_to(results / "logs").as_posix() for p in (results / "logs").rglob("*.log"))
    assert len(logs) == 5 and all((results / "logs" / log).read_text() for log in logs)


def test_list_inputs_names_what_the_runs_read_and_do_not_make(results, capsys):
    """The workflow targets prepare_search.sh builds: pools, split files and the study's source model, not the
    search's own source model, which a run makes."""
    assert _driver().main(["--config", str(TINY), "--results", "results", "--list-inputs"]) == 0
    assert capsys.readouterr().out.split() == [
        "results/data/sw/Ge/train.extxyz", "results/data/sw/Si/train.extxyz", "results/models/sw/source/Si/model.pt",
        "results/splits/sw/Ge/seed0.json", "results/splits/sw/Si/source.json"]


def test_prepare_search_makes_what_the_gpu_search_reads(tmp_path):
    """One command here gives a GPU machine everything but the wheels: the validated config, and the inputs
    made by the workflow, so that the search finds nothing missing."""
    import os
    import subprocess

    script = REPO / "benchmarks" / "device" / "prepare_search.sh"
    scratch_before = set(REPO.parent.glob("prepare-search.*"))
    env = {**os.environ, "SKIP_WHEELS": "1", "PYTHON": sys.executable}
    # PROBE relative to the caller's directory, not the repository's
    done = subprocess.run(["bash", str(script), str(TINY)], env={**env, "PROBE": "probe"}, cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = tmp_path / "probe"
    config = json.loads((probe / "config.json").read_text())
    runs = _driver().plan_runs(config, probe / "results", threads=1)
    assert _driver().missing_inputs(runs) == []
    assert set(REPO.parent.glob("prepare-search.*")) == scratch_before  # its scratch directory is removed
    # a config without a search fails before anything is built, and leaves the earlier folder as it was
    no_search = tmp_path / "no_search.yaml"
    tiny = yaml.safe_load(TINY.read_text())
    del tiny["hyperparameter_search"]
    no_search.write_text(yaml.safe_dump(tiny))
    config_before = (probe / "config.json").read_text()
    failed = subprocess.run(["bash", str(script), str(no_search)], env={**env, "PROBE": str(probe)},
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "no hyperparameter_search section" in failed.stderr
    assert (probe / "config.json").read_text() == config_before
