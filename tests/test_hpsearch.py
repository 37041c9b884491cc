"""Hyper-parameter search: candidate overrides, equal-budget config checks, selection on validation loss."""

from __future__ import annotations

import json

import pytest
import yaml

from mlp_transfer.config import ConfigError, load_config
from mlp_transfer.hpsearch import (apply_overrides, candidate_model, candidate_run_settings, candidate_source_settings,
                                   model_tag, search_source_models, selection_table, training_overrides,
                                   write_search_tables)
from mlp_transfer.train import source_training_settings

from test_config import TINY


def test_overrides_replace_scalars_and_merge_nested_settings():
    training = {"lr": 1e-3, "lr_schedule": {"factor": 0.5, "patience": 4}}
    merged = apply_overrides(training, {"lr": 2e-3, "lr_schedule": {"patience": 8}})
    assert merged == {"lr": 2e-3, "lr_schedule": {"factor": 0.5, "patience": 8}}
    assert training["lr_schedule"]["patience"] == 4  # the config itself is untouched


def test_overrides_merge_at_every_depth():
    """A candidate that names one stage-two loss weight keeps the others (a stress weight silently dropped would
    stop training stresses)."""
    training = {"lr": 1e-3, "stage_two": {"lr": 1e-4, "loss_weights": {"energy": 100.0, "stress": 100.0}}}
    merged = apply_overrides(training, {"stage_two": {"loss_weights": {"energy": 300.0}}})
    assert merged["stage_two"] == {"lr": 1e-4, "loss_weights": {"energy": 300.0, "stress": 100.0}}
    assert training["stage_two"]["loss_weights"]["energy"] == 100.0


@pytest.fixture
def write(tmp_path):
    def _write(search: dict) -> dict:
        config = yaml.safe_load(TINY.read_text())
        config["hyperparameter_search"] = search
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return load_config(path)

    return _write


def test_valid_search_loads_with_default_seed(write):
    config = write({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"lr": 1e-3}]}})
    assert config["hyperparameter_search"]["seed"] == 0


@pytest.mark.parametrize("search, message", [
    ({"size": 4, "candidates": {"transfer": [{"loss_weights": {"energy": 100.0}}],
                                "scratch": [{"loss_weights": {"energy": 100.0}}]}}, "set hyperparameter_search.select_by"),
    ({"size": 4, "candidates": {"transfer": [{"stage_two": {"loss_weights": {"energy": 100.0}, "lr": 1e-4}}],
                                "scratch": [{"lr": 1e-3}]}}, "set hyperparameter_search.select_by"),
    ({"size": 4, "candidates": {"transfer": [{"force_huber_delta": 0.05}],
                                "scratch": [{"lr": 1e-3}]}}, "set hyperparameter_search.select_by"),
    ({"size": 4, "select_by": "test_mae", "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"lr": 1e-3}]}},
     "select_by"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}, {"transfer_lr": 2e-3}],
                                "scratch": [{"lr": 1e-3}]}}, "same number of candidates"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}]}}, "exactly the regimes"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"learning_rate": 1}]}},
     "not training settings"),
    ({"size": 4, "candidates": {"transfer": [{"lr": 1e-3}], "scratch": [{"lr": 1e-3}]}},
     "transfer training does not use ['lr']"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"transfer_lr": 1e-3}]}},
     "scratch training does not use"),
    ({"size": 3, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"lr": 1e-3}]}},
     "not one of learning_curve.sizes"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}, {"transfer_lr": 1e-3}],
                                "scratch": [{"lr": 1e-3}, {"lr": 2e-3}]}}, "listed twice"),
    ({"candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"lr": 1e-3}]}}, "'size' is a required"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": []}}, "should be non-empty"),
    ({"size": 4, "candidates": {"transfer": [{"model": {"width": 64}}], "scratch": [{"lr": 1e-3}]}},
     "candidates.transfer[0].model: ['width'] are not model settings"),
    ({"size": 4, "candidates": {"transfer": [{"model": {"n_atom_basis": 0}}], "scratch": [{"lr": 1e-3}]}},
     "candidates.transfer[0].model.n_atom_basis: 0 is less than the minimum of 1"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"model": {"architecture": "mace"}}]}},
     "candidates.scratch[0].model.architecture: 'mace' is not one of"),
    ({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}], "scratch": [{"model": 64}]}},
     "candidates.scratch[0].model: needs a mapping of model settings"),
])
def test_search_config_errors_name_the_key(write, search, message):
    with pytest.raises(ConfigError) as info:
        write(search)
    assert message in str(info.value)
    assert "config.yaml" in str(info.value)


def _summary(path, regime, candidate, loss, **extra):
    data = {"dataset": "d", "source": "Si", "target": "Ge", "regime": regime, "candidate": candidate,
            "overrides": {"lr": 0.001 * (candidate + 1)}, "n_train": 25, "seed": 0, "best_val_loss": loss,
            "best_val_force_mae_mev_ang": 100.0 * loss, "best_val_energy_mae_mev_atom": 10.0 * loss,
            "best_step": 100, "stopped_step": 400, "stop_reason": "early_stopping", "train_wall_time_s": 5.0,
            **extra}
    path.write_text(json.dumps(data))
    return path


def test_selection_marks_the_lowest_validation_loss_per_regime(tmp_path):
    paths = [_summary(tmp_path / f"{r}{c}.json", r, c, loss)
             for (r, c, loss) in [("transfer", 0, 0.3), ("transfer", 1, 0.1), ("transfer", 2, 0.2),
                                  ("scratch", 0, 0.05), ("scratch", 1, 0.5), ("scratch", 2, 0.6)]]
    table = write_search_tables(paths, tmp_path / "t.csv", tmp_path / "t.md")
    chosen = table[table["selected"]].set_index("regime")["candidate"].to_dict()
    assert chosen == {"transfer": 1, "scratch": 0}
    assert "**yes**" in (tmp_path / "t.md").read_text()


def test_stress_error_column_only_when_a_candidate_trains_on_stresses(tmp_path):
    """Stress-trained candidates report their validation stress MAE; a table without any has no such column."""
    plain = [_summary(tmp_path / f"p{c}.json", "scratch", c, 0.1 * (c + 1)) for c in range(2)]
    assert "best_val_stress_mae_gpa" not in write_search_tables(plain, tmp_path / "p.csv", tmp_path / "p.md")
    assert "stress" not in (tmp_path / "p.md").read_text()
    mixed = [plain[0], _summary(tmp_path / "s1.json", "scratch", 1, 0.2, best_val_stress_mae_gpa=0.4321)]
    table = write_search_tables(mixed, tmp_path / "m.csv", tmp_path / "m.md", "force_mae")
    assert table["best_val_stress_mae_gpa"].isna().tolist() == [True, False]
    assert "val stress MAE (GPa)" in (tmp_path / "m.md").read_text() and "0.432" in (tmp_path / "m.md").read_text()


def test_selection_refuses_a_summary_that_is_not_a_search_run(tmp_path):
    bad = tmp_path / "summary.json"
    bad.write_text(json.dumps({"regime": "scratch", "best_val_loss": 0.1}))
    with pytest.raises(ValueError, match=f"{bad}: not a search run summary"):
        selection_table([bad])
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match=f"{broken}: cannot read run summary"):
        selection_table([broken])


def test_loss_weight_candidates_load_when_ranked_by_an_error(write):
    search = {"size": 4, "select_by": "force_mae", "candidates": {"transfer": [{"loss_weights": {"energy": 100.0}}],
                                                                  "scratch": [{"loss_weights": {"energy": 100.0}}]}}
    assert write(search)["hyperparameter_search"]["select_by"] == "force_mae"


def test_selection_by_force_or_energy_error(tmp_path):
    """select_by ranks by that validation error, whatever the losses say."""
    paths = [_summary(tmp_path / f"{r}{c}.json", r, c, loss, best_val_force_mae_mev_ang=force,
                      best_val_energy_mae_mev_atom=energy)
             for (r, c, loss, force, energy) in [("transfer", 0, 0.1, 80.0, 5.0), ("transfer", 1, 0.3, 70.0, 6.0),
                                                 ("scratch", 0, 0.2, 90.0, 4.0), ("scratch", 1, 0.1, 95.0, 3.0)]]
    by = {}
    for select_by in ("val_loss", "force_mae", "energy_mae"):
        table = write_search_tables(paths, tmp_path / "t.csv", tmp_path / "t.md", select_by)
        by[select_by] = table[table["selected"]].set_index("regime")["candidate"].to_dict()
        assert f"selected by {select_by}" in (tmp_path / "t.md").read_text()
    assert by == {"val_loss": {"transfer": 0, "scratch": 1}, "force_mae": {"transfer": 1, "scratch": 0},
                  "energy_mae": {"transfer": 0, "scratch": 1}}
    with pytest.raises(ValueError, match="unknown select_by"):
        selection_table(paths, "test_mae")


def test_model_candidates_load_and_share_source_models_per_distinct_model(write):
    """A candidate's ``model`` overrides the model section; transfer candidates with the same model share one
    pre-trained source model, and scratch candidates need none."""
    wide, wide_cut = {"n_atom_basis": 16}, {"n_atom_basis": 16, "cutoff": 5.0}
    search = {"size": 4, "candidates": {
        "transfer": [{"model": wide}, {"model": wide, "transfer_lr": 2e-3}, {"model": wide_cut}],
        "scratch": [{"model": wide}, {"model": {"cutoff": 6.0}}, {"lr": 2e-3}]}}
    config = write(search)
    base = config["model"]
    candidate = config["hyperparameter_search"]["candidates"]["transfer"][1]
    assert candidate_model(base, candidate) == {**base, **wide}
    assert training_overrides(candidate) == {"transfer_lr": 2e-3}
    sources = search_source_models(config["hyperparameter_search"], base)
    assert sorted(sources.values(), key=str) == sorted([{**base, **wide}, {**base, **wide_cut}], key=str)
    assert sources == {model_tag(m): m for m in sources.values()}


def test_so3net_candidates_need_lmax_and_leaving_so3net_drops_it(write):
    """Candidate models are checked whole: so3net without lmax is refused; a painn study can try so3net with an
    lmax, and an so3net study's painn candidate does not inherit the lmax only so3net has."""
    with pytest.raises(ConfigError, match=r"candidates.scratch\[0\].model.lmax: architecture so3net needs lmax"):
        write({"size": 4, "candidates": {"transfer": [{"transfer_lr": 1e-3}],
                                         "scratch": [{"model": {"architecture": "so3net"}}]}})
    so3 = {"architecture": "so3net", "lmax": 3}
    config = write({"size": 4, "candidates": {"transfer": [{"model": so3}], "scratch": [{"model": so3}]}})
    base = config["model"]
    assert list(search_source_models(config["hyperparameter_search"], base).values()) == [{**base, **so3}]
    so3_study = {**base, **so3}
    assert candidate_model(so3_study, {"model": {"architecture": "painn"}}) == {**base, "architecture": "painn"}
    assert candidate_model(so3_study, {"model": {"lmax": 2}}) == {**so3_study, "lmax": 2}


def test_model_tag_is_stable_and_tells_models_apart():
    model = {"architecture": "painn", "cutoff": 5.0, "n_atom_basis": 64, "n_interactions": 3, "n_rbf": 20}
    assert model_tag(model) == model_tag(dict(reversed(list(model.items()))))  # key order does not matter
    assert model_tag(model) != model_tag({**model, "n_atom_basis": 128})
    assert model_tag(model).startswith("m") and len(model_tag(model)) == 11


def test_a_candidate_with_the_study_model_reuses_the_study_source_model():
    """Restating the study's model (e.g. the baseline of a width search) pre-trains nothing twice."""
    model = {"architecture": "painn", "cutoff": 5.0, "n_atom_basis": 64, "n_interactions": 3, "n_rbf": 20}
    search = {"candidates": {"transfer": [{"model": {"n_atom_basis": 64}}, {"model": {"n_atom_basis": 128}}]}}
    assert list(search_source_models(search, model).values()) == [{**model, "n_atom_basis": 128}]


def test_candidate_run_settings_are_the_workflow_rules_settings(write):
    """What rule hpsearch_train / hpsearch_source (and the one-GPU driver) train with: the candidate's training
    and model overrides, less the keys the regime does not use; a transfer candidate with its own model gets a
    source pre-trained with the study's source-training rate and step cap."""
    so3 = {"architecture": "so3net", "lmax": 2}
    config = write({"size": 4, "candidates": {"transfer": [{"transfer_lr": 3e-3, "model": so3}],
                                              "scratch": [{"lr": 3e-3}]}})
    config["source_training"]["lr"] = 7e-4
    transfer = config["hyperparameter_search"]["candidates"]["transfer"][0]
    scratch = config["hyperparameter_search"]["candidates"]["scratch"][0]
    run = candidate_run_settings(config, "transfer", transfer)
    assert run["model"] == {**config["model"], **so3}
    assert run["training"]["transfer_lr"] == 3e-3 and "lr" not in run["training"]
    run = candidate_run_settings(config, "scratch", scratch)
    assert run["model"] == config["model"] and run["training"]["lr"] == 3e-3 and "transfer_lr" not in run["training"]
    source = candidate_source_settings(config, transfer)
    assert source["model"] == {**config["model"], **so3}
    assert source["training"]["lr"] == 7e-4 and "transfer_lr" not in source["training"]
    assert source == source_training_settings(config, {**config["model"], **so3})
    assert candidate_source_settings(config, {"transfer_lr": 1e-3}) is None  # the study's source model serves
