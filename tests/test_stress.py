"""Stress as a model output and as a training label (``training.loss_weights.stress``)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from ase.calculators.fd import calculate_numerical_stress
from ase.stress import voigt_6_to_full_3x3_stress
from ase.units import GPa

from mlp_transfer import models
from mlp_transfer.batching import STRESS_REF, MissingStressError, StructureSet
from mlp_transfer.data.common import attach_results, write_extxyz
from mlp_transfer.evaluate import evaluate_model, predict_outputs
from mlp_transfer.properties import model_calculator
from mlp_transfer.reference import diamond_cell, sw_calculator
from mlp_transfer.splits import write_splits
from mlp_transfer.train import STRESS_HISTORY_COLUMN, run_training


def strained_sw_frames(element: str, n: int, seed: int = 0) -> list:
    """Rattled 8-atom cells under random strains of up to 3 %, labelled with SW energy, forces and stress."""
    calc = sw_calculator(element)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = diamond_cell(element, supercell=1)
        strain = rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + (strain + strain.T) / 2), scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        atoms.calc = calc
        attach_results(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def stress_pool(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stress_pool")
    pool, splits = directory / "Ge_train.xyz", directory / "Ge.json"
    write_extxyz(pool, strained_sw_frames("Ge", 12, seed=3))
    write_splits(pool, splits, ["all"], n_validation=3, seed=0)
    return pool, splits


def test_stress_output_matches_finite_differences_and_switches_off(tiny_model_config):
    """The model's stress is 1/V dE/d(strain) in ASE's sign convention (central differences of its own
    energy), energies and forces do not change when it is switched on, and switching it off removes it."""
    frames = strained_sw_frames("Si", 2, seed=1)
    torch.manual_seed(0)
    model = models.build_model(**tiny_model_config)
    models.set_energy_offset(model, -4.3)
    before = model(StructureSet(frames, 4.0).batch([0, 1]))
    models.set_stress_output(model, True)
    assert models.predicts_stress(model)
    out = model(StructureSet(frames, 4.0).batch([0, 1]))
    assert out["stress"].shape == (2, 3, 3)
    torch.testing.assert_close(out["energy"], before["energy"])
    torch.testing.assert_close(out["forces"], before["forces"])
    plain = copy.deepcopy(model)
    models.set_stress_output(plain, False)
    assert not models.predicts_stress(plain) and "stress" not in plain(StructureSet(frames, 4.0).batch([0]))
    calc = model_calculator(copy.deepcopy(plain), 4.0)
    for i, atoms in enumerate(frames):
        atoms = atoms.copy()
        atoms.calc = calc
        numerical = calculate_numerical_stress(atoms, eps=1e-5, voigt=False, force_consistent=False)
        np.testing.assert_allclose(out["stress"][i].detach().numpy(), numerical, atol=2e-6)
        assert np.abs(numerical).max() > 1e-4  # strained cells: the check is not comparing zeros


def test_stress_labels_in_batches():
    """Voigt labels become (n, 3, 3) tensors in batch order; a structure without one is a clear error."""
    frames = strained_sw_frames("Si", 3, seed=2)
    batch = StructureSet(frames, 4.0, with_stress=True).batch([2, 0])
    expected = [voigt_6_to_full_3x3_stress(frames[i].get_stress()) for i in (2, 0)]
    np.testing.assert_allclose(batch[STRESS_REF].numpy(), np.array(expected), rtol=1e-6, atol=1e-9)
    assert STRESS_REF not in StructureSet(frames, 4.0).batch([0])
    attach_results(frames[1], frames[1].get_potential_energy(), frames[1].get_forces())  # drops the stress
    with pytest.raises(MissingStressError, match="structure 1 has no stress label"):
        StructureSet(frames, 4.0, with_stress=True)


def train_config(**loss_weights) -> dict:
    return {"batch_size": 3, "lr": 5e-3, "transfer_lr": 2e-3, "max_steps": 60, "val_interval": 10,
            "loss_weights": {"energy": 10.0, "forces": 1.0, **loss_weights},
            "early_stopping": {"patience": 100, "min_rel_improvement": 0.0},
            "lr_schedule": {"factor": 0.5, "patience": 100, "min_lr": 1e-6}, "threads": 1}


def run(pool, splits, model_config, out, config, **kwargs):
    kwargs = {"regime": "scratch", **kwargs}
    summary = run_training(pool=pool, splits=splits, size="all", element="Ge", seed=0, model_config=model_config,
                           training_config=config, out_model=out / "model.pt", out_history=out / "history.csv",
                           out_summary=out / "summary.json", **kwargs)
    return summary, pd.read_csv(out / "history.csv"), models.load_model(out / "model.pt")


def validation_stress_mae_gpa(model, pool, splits) -> float:
    import ase.io

    frames = ase.io.read(pool, ":")
    val = [frames[i] for i in json.loads(splits.read_text())["validation"]]
    models.set_stress_output(model, True)
    batch = StructureSet(val, 4.0, with_stress=True).batch(range(len(val)))
    pred = model(batch)["stress"].detach()
    return float((pred - batch[STRESS_REF]).abs().mean() / GPa)


def test_training_with_stress_weight(stress_pool, tiny_model_config, tmp_path):
    """A stress weight adds the stress term: the history and summary report the validation stress MAE, the
    saved model predicts stresses, and it predicts them better than the same run without the term."""
    pool, splits = stress_pool
    # a weight at which the stress term dominates the loss, so that 60 steps of the tiny model show its effect
    summary, history, model = run(pool, splits, tiny_model_config, tmp_path / "stress", train_config(stress=1e4))
    assert list(history.columns)[-1] == STRESS_HISTORY_COLUMN and history[STRESS_HISTORY_COLUMN].notna().all()
    assert models.predicts_stress(model)
    best = history.loc[history.step == summary["best_step"]].iloc[0]
    assert summary["best_val_stress_mae_gpa"] == pytest.approx(best[STRESS_HISTORY_COLUMN])
    assert summary["best_val_stress_mae_gpa"] == pytest.approx(validation_stress_mae_gpa(model, pool, splits),
                                                               rel=1e-4)
    assert history[STRESS_HISTORY_COLUMN].iloc[-1] < 0.8 * history[STRESS_HISTORY_COLUMN].iloc[0]

    plain_summary, plain_history, plain = run(pool, splits, tiny_model_config, tmp_path / "plain", train_config())
    assert STRESS_HISTORY_COLUMN not in plain_history and "best_val_stress_mae_gpa" not in plain_summary
    assert not models.predicts_stress(plain)
    assert summary["best_val_stress_mae_gpa"] < 0.8 * validation_stress_mae_gpa(plain, pool, splits)


def test_transfer_adds_stress_to_a_source_trained_without(stress_pool, tiny_model_config, tmp_path):
    """Fine-tuning with a stress weight starts from a source model that never predicted stresses."""
    pool, splits = stress_pool
    source_summary, _, source = run(pool, splits, tiny_model_config, tmp_path / "source", train_config(),
                                    regime="source")
    assert not models.predicts_stress(source)
    summary, history, model = run(pool, splits, tiny_model_config, tmp_path / "transfer", train_config(stress=100.0),
                                  regime="transfer", source_model=tmp_path / "source" / "model.pt",
                                  source_element="Ge")
    assert models.predicts_stress(model) and STRESS_HISTORY_COLUMN in history
    # step 0 is the source model with the stress switched on: its energies and forces are the source's
    assert history.val_force_mae_mev_ang.iloc[0] == pytest.approx(
        pd.read_csv(tmp_path / "source" / "history.csv").set_index("step").loc[
            source_summary["best_step"], "val_force_mae_mev_ang"], rel=1e-5)


def test_stress_weight_without_stress_labels_is_a_clear_error(sw_pools, tiny_model_config, tmp_path):
    """The shared SW pools carry no stresses: a stress weight names the pool and the missing label."""
    splits = tmp_path / "Si.json"
    write_splits(sw_pools["Si"], splits, ["all"], n_validation=3, seed=0)
    with pytest.raises(ValueError, match=r"Si_train\.xyz: training\.loss_weights\.stress is 100\.0.*no stress label"):
        run_training(regime="scratch", pool=sw_pools["Si"], splits=splits, size="all", element="Si", seed=0,
                     model_config=tiny_model_config, training_config=train_config(stress=100.0),
                     out_model=tmp_path / "m.pt", out_history=tmp_path / "h.csv", out_summary=tmp_path / "s.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Si.json"]  # nothing written, no checkpoint files
    stage_two = {**train_config(), "stage_two": {"loss_weights": {"stress": 50.0}, "lr": 1e-4}}
    with pytest.raises(ValueError, match=r"training\.stage_two\.loss_weights\.stress is 50\.0.*no stress label"):
        run_training(regime="scratch", pool=sw_pools["Si"], splits=splits, size="all", element="Si", seed=0,
                     model_config=tiny_model_config, training_config=stage_two,
                     out_model=tmp_path / "m.pt", out_history=tmp_path / "h.csv", out_summary=tmp_path / "s.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Si.json"]


def test_transfer_without_stress_weight_drops_the_source_stress_output(stress_pool, tiny_model_config, tmp_path):
    """A source pre-trained on stresses: a target run without a stress term neither computes nor saves them."""
    pool, splits = stress_pool
    run(pool, splits, tiny_model_config, tmp_path / "source", train_config(stress=100.0), regime="source")
    assert models.predicts_stress(models.load_model(tmp_path / "source" / "model.pt"))
    _, history, model = run(pool, splits, tiny_model_config, tmp_path / "transfer", train_config(),
                            regime="transfer", source_model=tmp_path / "source" / "model.pt", source_element="Ge")
    assert not models.predicts_stress(model) and STRESS_HISTORY_COLUMN not in history


def test_evaluation_reports_stress_errors_of_stress_models(tiny_model_config):
    """Test tables gain stress MAE/RMSE (GPa) for a model that predicts stresses on structures that carry them,
    matching a direct computation; models without stress output and unlabelled structures get none."""
    frames = strained_sw_frames("Ge", 4, seed=5)
    torch.manual_seed(0)
    model = models.build_model(**tiny_model_config)
    models.set_energy_offset(model, -3.8)
    assert "stress_mae_gpa" not in evaluate_model(model, frames, 4.0)
    models.set_stress_output(model, True)
    table = evaluate_model(model, frames, 4.0)
    pred = predict_outputs(model, frames, 4.0)[2]
    ref = np.array([voigt_6_to_full_3x3_stress(a.get_stress()) for a in frames])
    assert table.stress_mae_gpa.item() == pytest.approx(np.abs(pred - ref).mean() / GPa)
    assert table.stress_rmse_gpa.item() >= table.stress_mae_gpa.item() > 0
    unlabelled = [a.copy() for a in frames]
    for a, b in zip(unlabelled, frames):
        attach_results(a, b.get_potential_energy(), b.get_forces())
    assert "stress_mae_gpa" not in evaluate_model(model, unlabelled, 4.0)
