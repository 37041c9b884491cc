"""Batching of structures and the training loop: learning, history, early stopping, determinism, transfer, resume.

All runs use the tiny PaiNN model on 12-structure pools (9 training + 3 validation structures), so a run
of 40 steps takes well under a second.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import schnetpack as spk
import torch
from ase.build import bulk

from mlp_transfer import models
from mlp_transfer.batching import ENERGY_REF, FORCES_REF, StructureSet, mean_energy_per_atom
from mlp_transfer.data.common import attach_results
from mlp_transfer.splits import write_splits
from mlp_transfer.train import Trainer, TrainingInterrupted, TrainSettings, force_loss, run_training

HISTORY_COLUMNS = ["step", "epoch", "wall_time_s", "lr", "train_loss", "val_loss",
                   "val_energy_mae_mev_atom", "val_force_mae_mev_ang"]
SUMMARY_KEYS = {"regime", "element", "n_train", "n_validation", "seed", "lr", "energy_offset_ev_atom", "best_step",
                "best_val_loss", "best_val_energy_mae_mev_atom", "best_val_force_mae_mev_ang", "stopped_step",
                "stop_reason", "train_wall_time_s", "resumed_from_step", "n_parameters", "threads", "device", "device_name",
                "torch_version"}


def training_config(**overrides) -> dict:
    """A fast training configuration in the workflow's (nested) config form."""
    config = {"batch_size": 3, "lr": 5e-3, "transfer_lr": 2e-4, "max_steps": 40, "val_interval": 5,
              "early_stopping": {"patience": 100, "min_rel_improvement": 0.0},
              "lr_schedule": {"factor": 0.5, "patience": 100, "min_lr": 1e-6}, "threads": 1}
    for key, value in overrides.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    return config


@pytest.fixture(scope="module")
def splits(sw_pools, tmp_path_factory) -> dict:
    """Split files of both pools: 3 validation structures, subsets of 4 and 'all' (9) structures."""
    directory = tmp_path_factory.mktemp("splits")
    out = {}
    for element, pool in sw_pools.items():
        out[element] = directory / f"{element}.json"
        write_splits(pool, out[element], ["4", "all"], n_validation=3, seed=0)
    return out


@pytest.fixture
def train(sw_pools, splits, tiny_model_config, tmp_path):
    """Call run_training with defaults for a Si scratch run writing into ``tmp_path / run``."""

    def _train(run="run", *, regime="scratch", element="Si", size="all", seed=0, config=None, **kwargs):
        out = tmp_path / run
        summary = run_training(regime=regime, pool=sw_pools[element], splits=splits[element], size=size,
                               element=element, seed=seed, model_config=tiny_model_config,
                               training_config=config or training_config(), out_model=out / "model.pt",
                               out_history=out / "history.csv", out_summary=out / "summary.json", **kwargs)
        return out, summary, pd.read_csv(out / "history.csv")

    return _train


# ------------------------------------------------------------------------------------------------ batching

@pytest.fixture(scope="module")
def mixed_frames(make_sw_frames):
    """An 8-atom cubic cell, a 2-atom primitive cell and another 8-atom cell, all SW-labelled."""
    from mlp_transfer.reference import sw_calculator, sw_lattice_constant

    primitive = bulk("Si", "diamond", a=sw_lattice_constant("Si"))
    primitive.positions[1] += [0.05, -0.03, 0.02]
    primitive.calc = sw_calculator("Si")
    attach_results(primitive, primitive.get_potential_energy(), primitive.get_forces())
    cubic = make_sw_frames("Si", 2, seed=21)
    return [cubic[0], primitive, cubic[1]]


def test_batch_collates_counts_and_offsets_neighbour_indices(mixed_frames):
    """A batch concatenates atoms in order; idx_m numbers structures; neighbour indices are offset per structure."""
    structures = StructureSet(mixed_frames, cutoff=4.0)
    items = structures.items
    batch = structures.batch([1, 2, 0])
    assert batch["_n_atoms"].tolist() == [2, 8, 8]
    assert batch["_idx_m"].tolist() == [0] * 2 + [1] * 8 + [2] * 8
    offsets = [0, 2, 10]
    for key in ("_idx_i", "_idx_j"):
        expected = torch.cat([items[i][key] + off for i, off in zip([1, 2, 0], offsets)])
        assert torch.equal(batch[key], expected), key
    assert torch.equal(batch["_positions"], torch.cat([items[i]["_positions"] for i in [1, 2, 0]]))
    energies = [mixed_frames[i].calc.results["energy"] for i in [1, 2, 0]]
    assert batch[ENERGY_REF].dtype == torch.float64
    np.testing.assert_array_equal(batch[ENERGY_REF].numpy(), energies)
    np.testing.assert_allclose(batch[FORCES_REF].numpy(),
                               np.concatenate([mixed_frames[i].calc.results["forces"] for i in [1, 2, 0]]),
                               rtol=1e-6, atol=1e-6)


def test_neighbour_list_matches_cutoff(mixed_frames):
    """Each structure's neighbour pairs are exactly the pairs within the cutoff (checked with ASE)."""
    from ase.neighborlist import neighbor_list

    item = StructureSet(mixed_frames[:1], cutoff=4.0).items[0]
    i_ase, _ = neighbor_list("ij", mixed_frames[0], 4.0)
    assert len(item["_idx_i"]) == len(i_ase)
    assert np.array_equal(np.bincount(item["_idx_i"].numpy(), minlength=8), np.bincount(i_ase, minlength=8))


def test_batches_cover_all_structures_in_order(mixed_frames):
    structures = StructureSet(mixed_frames, cutoff=4.0)
    indices = [b["_idx"].tolist() for b in structures.batches(2)]
    assert indices == [[0, 1], [2]]


def test_labels_survive_forward_pass(mixed_frames, tiny_model_config):
    """The model writes 'energy'/'forces' into the batch dict; the reference labels keep their values."""
    torch.manual_seed(0)
    model = models.build_model(**tiny_model_config)
    batch = StructureSet(mixed_frames, cutoff=4.0).batch([0, 1, 2])
    energy_ref, forces_ref = batch[ENERGY_REF].clone(), batch[FORCES_REF].clone()
    pred = model(batch)
    assert not torch.allclose(pred["energy"], energy_ref)
    torch.testing.assert_close(batch[ENERGY_REF], energy_ref, check_dtype=False, rtol=0, atol=0)
    torch.testing.assert_close(batch[FORCES_REF], forces_ref, check_dtype=False, rtol=0, atol=0)


def test_structure_set_without_targets(mixed_frames):
    """with_targets=False stores no labels (test structures may be predicted without them)."""
    item = StructureSet(mixed_frames, cutoff=4.0, with_targets=False).items[0]
    assert ENERGY_REF not in item and FORCES_REF not in item


def test_mean_energy_per_atom_is_mean_of_ratios():
    """The offset is the mean over structures of E/N, not total energy over total atoms."""
    big = attach_results(bulk("Si", "diamond", a=5.43, cubic=True), -16.0, np.zeros((8, 3)))  # -2.0 eV/atom
    small = attach_results(bulk("Si", "diamond", a=5.43), -3.0, np.zeros((2, 3)))  # -1.5 eV/atom
    assert mean_energy_per_atom([big, small]) == pytest.approx(-1.75)


# ------------------------------------------------------------------------------------------------ settings

def test_settings_from_config_maps_nested_keys():
    """Nested config sections map onto the flat TrainSettings fields."""
    settings = TrainSettings.from_config({
        "lr": 2e-3, "loss_weights": {"energy": 3.0, "forces": 0.5},
        "early_stopping": {"patience": 7, "min_rel_improvement": 0.01},
        "lr_schedule": {"factor": 0.3, "patience": 2, "min_lr": 1e-6}, "embedding_init": "random"})
    assert (settings.lr, settings.energy_weight, settings.forces_weight) == (2e-3, 3.0, 0.5)
    assert (settings.patience, settings.min_rel_improvement) == (7, 0.01)
    assert (settings.lr_factor, settings.lr_patience, settings.min_lr) == (0.3, 2, 1e-6)


@pytest.mark.parametrize("training", [{"learning_rate": 1e-3}, {"early_stopping": {"patiance": 3}},
                                      {"loss_weights": {"virial": 1.0}}])
def test_settings_from_config_rejects_unknown_keys(training):
    """Unknown keys (top level or inside a section) are a ValueError naming them."""
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainSettings.from_config(training)


def test_settings_from_config_rejects_unknown_lr_schedule_key():
    with pytest.raises(ValueError, match="cooldown"):
        TrainSettings.from_config({"lr_schedule": {"cooldown": 2}})


# ------------------------------------------------------------------------------------------------ training

@pytest.fixture(scope="module")
def scratch_run(sw_pools, splits, tiny_model_config, tmp_path_factory):
    """One finished scratch run on the Si pool (40 steps), shared by several tests."""
    out = tmp_path_factory.mktemp("scratch")
    summary = run_training(regime="scratch", pool=sw_pools["Si"], splits=splits["Si"], size="all", element="Si",
                           seed=0, model_config=tiny_model_config, training_config=training_config(),
                           out_model=out / "model.pt", out_history=out / "history.csv",
                           out_summary=out / "summary.json", metadata={"dataset": "sw"})
    return out, summary, pd.read_csv(out / "history.csv")


def test_scratch_training_reduces_validation_force_error(scratch_run):
    """Training lowers the validation force MAE well below its step-0 value."""
    _, summary, history = scratch_run
    initial = history.loc[history.step == 0, "val_force_mae_mev_ang"].item()
    assert summary["best_val_force_mae_mev_ang"] < 0.8 * initial


def test_history_columns_and_rows(scratch_run):
    """history.csv has the documented columns, a step-0 row without train loss and one row per validation."""
    _, _, history = scratch_run
    assert list(history.columns) == HISTORY_COLUMNS
    assert history.step.tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    first = history.iloc[0]
    assert first.epoch == 0 and first.wall_time_s == 0 and np.isnan(first.train_loss)
    assert history.train_loss.iloc[1:].notna().all()
    assert (history.lr == 5e-3).all()
    assert history.wall_time_s.is_monotonic_increasing
    # 9 structures in batches of 3: three steps per epoch; `epoch` counts completed epochs.
    assert history.epoch.tolist() == [step // 3 for step in history.step]


def test_summary_contents(scratch_run, sw_pools):
    """summary.json holds the documented keys, the metadata, and values consistent with the history."""
    out, summary, history = scratch_run
    assert json.loads((out / "summary.json").read_text()) == summary
    assert SUMMARY_KEYS <= set(summary) and summary["dataset"] == "sw"
    assert summary["stop_reason"] in {"early_stopping", "max_steps"}
    assert (summary["stop_reason"], summary["stopped_step"]) == ("max_steps", 40)
    assert (summary["n_train"], summary["n_validation"], summary["lr"]) == (9, 3, 5e-3)
    assert summary["resumed_from_step"] is None
    best = history.loc[history.step == summary["best_step"]].iloc[0]
    assert best.val_loss == pytest.approx(summary["best_val_loss"]) == history.val_loss.min()
    assert best.val_force_mae_mev_ang == pytest.approx(summary["best_val_force_mae_mev_ang"])


def test_saved_model_is_best_model_with_train_offset(scratch_run, sw_pools, splits, tiny_model_config):
    """model.pt holds the best weights (reproducing the best validation loss) and the training-set offset."""
    import ase.io

    out, summary, _ = scratch_run
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.pt", "summary.json"]
    model = models.load_model(out / "model.pt")
    split = json.loads(splits["Si"].read_text())
    frames = ase.io.read(sw_pools["Si"], ":")
    train_frames = [frames[i] for i in split["train"]["all"]]
    assert models.get_energy_offset(model) == pytest.approx(mean_energy_per_atom(train_frames), abs=1e-12)
    assert summary["energy_offset_ev_atom"] == pytest.approx(mean_energy_per_atom(train_frames), abs=1e-12)
    val_set = StructureSet([frames[i] for i in split["validation"]], tiny_model_config["cutoff"])
    trainer = Trainer(model, val_set, val_set, TrainSettings(), lr=1e-3, seed=0)
    assert trainer.validate()["val_loss"] == pytest.approx(summary["best_val_loss"], rel=1e-5)


def test_validation_batches_are_bounded_in_atoms_and_do_not_change_the_metrics(scratch_run, sw_pools, splits,
                                                                                tiny_model_config, monkeypatch):
    """Validation batches hold at most MAX_BATCH_ATOMS atoms (its memory peak: an SO3net run on a CPU with a
    heap-only malloc stood at 20-22 GB with 16-structure validation batches, 12.6 GB with the bound), and how the
    set is batched does not change the metrics."""
    import ase.io

    from mlp_transfer import train as train_module

    out, _, _ = scratch_run
    frames = ase.io.read(sw_pools["Si"], ":")
    val_frames = [frames[i] for i in json.loads(splits["Si"].read_text())["validation"]]
    val_set = StructureSet(val_frames, tiny_model_config["cutoff"])
    trainer = Trainer(models.load_model(out / "model.pt"), val_set, val_set, TrainSettings(), lr=1e-3, seed=0)
    together = trainer.validate()
    sizes = []
    batches = StructureSet.batches

    def recording_batches(self, *args, **kwargs):
        for batch in batches(self, *args, **kwargs):
            sizes.append(int(batch["_n_atoms"].sum()))
            yield batch

    monkeypatch.setattr(StructureSet, "batches", recording_batches)
    monkeypatch.setattr(train_module, "MAX_BATCH_ATOMS", len(val_frames[0]))
    one_by_one = trainer.validate()
    assert sizes == [len(atoms) for atoms in val_frames]
    assert one_by_one == pytest.approx(together, rel=1e-6)


def test_same_seed_gives_identical_history(scratch_run, train):
    """Two runs with the same seed agree to 1e-6 in every history value (wall times aside)."""
    _, summary, history = scratch_run
    _, summary2, history2 = train("again")
    columns = [c for c in HISTORY_COLUMNS if c != "wall_time_s"]
    np.testing.assert_allclose(history2[columns].to_numpy(), history[columns].to_numpy(), rtol=0, atol=1e-6)
    assert summary2["best_step"] == summary["best_step"]


def test_different_seed_gives_different_history(scratch_run, train):
    """The seed matters (initial weights and batch order): a sanity check of the determinism test."""
    _, _, history = scratch_run
    _, _, other = train("seed1", seed=1)
    assert not np.allclose(other.val_loss.to_numpy(), history.val_loss.to_numpy(), rtol=0, atol=1e-6)


def test_early_stopping_without_improvement(train):
    """With lr 1e-9 nothing improves: patience 1 stops at the first validation after step 0."""
    config = training_config(lr=1e-9, max_steps=200, early_stopping={"patience": 1, "min_rel_improvement": 1e-3})
    _, summary, history = train(config=config)
    assert summary["stop_reason"] == "early_stopping"
    assert (summary["best_step"], summary["stopped_step"]) == (0, 5)
    assert history.step.tolist() == [0, 5]


def test_transfer_uses_transfer_lr_and_starts_better(scratch_run, train):
    """Transfer from a model trained on the same element's data uses transfer_lr and starts from a lower
    validation error than a randomly initialised scratch model."""
    source_dir, _, _ = scratch_run
    _, scratch, scratch_history = train("scratch4", size="4")
    _, transfer, history = train("transfer4", regime="transfer", size="4", source_model=source_dir / "model.pt",
                                 source_element="Si")
    assert transfer["lr"] == 2e-4 and scratch["lr"] == 5e-3
    assert history.lr.iloc[0] == 2e-4
    step0 = history.iloc[0]
    scratch0 = scratch_history.iloc[0]
    assert step0.val_force_mae_mev_ang < 0.8 * scratch0.val_force_mae_mev_ang
    assert step0.val_loss < scratch0.val_loss


def test_transfer_across_elements_uses_target_offset(scratch_run, train, sw_pools, splits):
    """Si -> Ge transfer replaces the energy offset by the mean E/N of the Ge training subset."""
    import ase.io

    source_dir, _, _ = scratch_run
    out, summary, _ = train("si_ge", regime="transfer", element="Ge", size="4",
                            source_model=source_dir / "model.pt", source_element="Si",
                            config=training_config(max_steps=10))
    frames = ase.io.read(sw_pools["Ge"], ":")
    subset = [frames[i] for i in json.loads(splits["Ge"].read_text())["train"]["4"]]
    assert summary["energy_offset_ev_atom"] == pytest.approx(mean_energy_per_atom(subset), abs=1e-12)
    assert models.get_energy_offset(models.load_model(out / "model.pt")) == pytest.approx(
        mean_energy_per_atom(subset), abs=1e-12)


def test_so3net_trains_as_source_and_transfers_across_elements(sw_pools, splits, tiny_model_config, tmp_path):
    """The SO3net model goes through the same loop: a Si source run learns, and Ge fine-tuning from it
    starts below a scratch Ge model's validation error."""
    model_config = dict(tiny_model_config, architecture="so3net", lmax=2)
    config = training_config(max_steps=30)

    def run(name, **kwargs):
        out = tmp_path / name
        summary = run_training(size="all", seed=0, model_config=model_config, training_config=config,
                               out_model=out / "model.pt", out_history=out / "history.csv",
                               out_summary=out / "summary.json", **kwargs)
        return out, summary, pd.read_csv(out / "history.csv")

    source_dir, _, source = run("source", regime="source", pool=sw_pools["Si"], splits=splits["Si"], element="Si")
    assert source.val_loss.min() < 0.8 * source.val_loss.iloc[0]
    assert isinstance(models.load_model(source_dir / "model.pt").representation, spk.representation.SO3net)
    _, _, scratch = run("scratch", regime="scratch", pool=sw_pools["Ge"], splits=splits["Ge"], element="Ge")
    _, _, transfer = run("transfer", regime="transfer", pool=sw_pools["Ge"], splits=splits["Ge"], element="Ge",
                         source_model=source_dir / "model.pt", source_element="Si")
    assert transfer.val_force_mae_mev_ang.iloc[0] < scratch.val_force_mae_mev_ang.iloc[0]


def test_transfer_needs_source_model(train):
    with pytest.raises(ValueError, match="source_model"):
        train(regime="transfer")


def test_unknown_regime_and_missing_size(train):
    with pytest.raises(ValueError, match="regime"):
        train(regime="finetune")
    with pytest.raises(ValueError, match="'7'"):
        train(size="7")


# ------------------------------------------------------------------------------------------------ resume

class Killed(Exception):
    """Stands in for the job being killed right after a checkpoint was written."""


def kill_after_checkpoint(monkeypatch, at_step: int) -> None:
    original = Trainer.save_checkpoint

    def save_then_die(self):
        original(self)
        if self.step >= at_step:
            raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)


def test_resume_after_kill_continues_history(train, monkeypatch, tmp_path):
    """A run killed after its step-10 checkpoint resumes there: resumed_from_step is set, history continuous."""
    config = training_config(max_steps=20)
    kill_after_checkpoint(monkeypatch, 10)
    with pytest.raises(Killed):
        train(config=config)
    run = tmp_path / "run"
    assert (run / "checkpoint.pt").is_file() and not (run / "model.pt").exists()
    monkeypatch.undo()

    _, summary, history = train(config=config)
    assert summary["resumed_from_step"] == 10
    assert history.step.tolist() == [0, 5, 10, 15, 20]
    assert history.step.is_unique
    assert (summary["stopped_step"], summary["stop_reason"]) == (20, "max_steps")
    assert not (run / "checkpoint.pt").exists() and not (run / "checkpoint.fingerprint").exists()


def test_resume_from_final_checkpoint_does_not_train_again(train, monkeypatch, tmp_path):
    """A kill after the last checkpoint but before model.pt: the rerun only writes the outputs."""
    config = training_config(max_steps=20)
    kill_after_checkpoint(monkeypatch, 20)
    with pytest.raises(Killed):
        train(config=config)
    monkeypatch.undo()
    _, summary, history = train(config=config)
    assert summary["resumed_from_step"] == 20 and summary["stopped_step"] == 20
    assert summary["stop_reason"] == "max_steps"
    assert history.step.tolist() == [0, 5, 10, 15, 20]


def interrupt_and_rerun(train, monkeypatch, run: str, config: dict, interrupt, stops=Killed, match=None):
    """Run with ``interrupt(monkeypatch)`` in place until it stops the run with ``stops``, then rerun the same
    run without it; returns the rerun's (out, summary, history)."""
    interrupt(monkeypatch)
    with pytest.raises(stops, match=match):
        train(run, config=config)
    monkeypatch.undo()
    return train(run, config=config)


def kill_and_resume(train, monkeypatch, run: str, config: dict, at_step: int) -> pd.DataFrame:
    return interrupt_and_rerun(train, monkeypatch, run, config, lambda mp: kill_after_checkpoint(mp, at_step))[2]


VALUE_COLUMNS = [c for c in HISTORY_COLUMNS if c not in ("wall_time_s", "epoch")]


def test_resume_at_epoch_boundary_reproduces_values(train, monkeypatch):
    """Killed at the end of an epoch (step 12 = 4 epochs of 3 steps), the resumed run reproduces the
    uninterrupted run's losses and errors: weights, optimiser, scheduler and RNG are restored."""
    config = training_config(max_steps=24, val_interval=6)
    _, _, reference = train("reference", config=config)
    resumed = kill_and_resume(train, monkeypatch, "killed", config, at_step=12)
    assert resumed.step.tolist() == reference.step.tolist() == [0, 6, 12, 18, 24]
    np.testing.assert_allclose(resumed[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(),
                               rtol=0, atol=1e-6)


def test_resume_at_epoch_boundary_keeps_epoch_count(train, monkeypatch):
    config = training_config(max_steps=24, val_interval=6)
    _, _, reference = train("reference", config=config)
    resumed = kill_and_resume(train, monkeypatch, "killed", config, at_step=12)
    assert resumed.epoch.tolist() == reference.epoch.tolist()


def test_resume_mid_epoch_reproduces_values(train, monkeypatch):
    """Killed mid-epoch (step 10 is the first step of the fourth epoch), the resumed run should still
    reproduce the uninterrupted run."""
    config = training_config(max_steps=20)
    _, _, reference = train("reference", config=config)
    resumed = kill_and_resume(train, monkeypatch, "killed", config, at_step=10)
    np.testing.assert_allclose(resumed[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(),
                               rtol=0, atol=1e-6)


def test_checkpoint_resumes_with_another_thread_count(train, monkeypatch):
    """The thread count is not part of the run: a job retried with other cores resumes the checkpoint."""
    kill_after_checkpoint(monkeypatch, 10)
    with pytest.raises(Killed):
        train(config=training_config(max_steps=20, threads=1))
    monkeypatch.undo()
    _, summary, history = train(config=training_config(max_steps=20, threads=2))
    assert summary["resumed_from_step"] == 10 and summary["threads"] == 2
    assert history.step.tolist() == [0, 5, 10, 15, 20]


def test_checkpoint_for_other_settings_is_discarded(train, monkeypatch, tmp_path):
    """A checkpoint left by a run with different settings (here lr) is not resumed."""
    kill_after_checkpoint(monkeypatch, 10)
    with pytest.raises(Killed):
        train(config=training_config(max_steps=20, lr=4e-3))
    monkeypatch.undo()
    _, summary, history = train(config=training_config(max_steps=20))
    assert summary["resumed_from_step"] is None
    assert history.step.tolist() == [0, 5, 10, 15, 20]
    assert (history.lr == 5e-3).all()


@pytest.mark.parametrize("fingerprint", [None, "0123456789abcdef"])
def test_stale_checkpoint_without_matching_fingerprint_is_discarded(train, tmp_path, fingerprint):
    """An unreadable checkpoint with a missing or foreign fingerprint is deleted, not loaded."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a torch file")
    if fingerprint is not None:
        (run / "checkpoint.fingerprint").write_text(fingerprint)
    _, summary, history = train(config=training_config(max_steps=10))
    assert summary["resumed_from_step"] is None
    assert history.step.tolist() == [0, 5, 10]


def test_checkpoint_for_other_data_is_discarded(splits, tiny_model_config, make_sw_frames, monkeypatch, tmp_path):
    """A run killed on one pool and rerun after the pool was regenerated (same size, new structures) must
    start afresh rather than resume weights trained on the old data."""
    from mlp_transfer.data.common import write_extxyz

    pool = tmp_path / "pool.xyz"
    out = tmp_path / "run"

    def run():
        return run_training(regime="scratch", pool=pool, splits=splits["Si"], size="all", element="Si", seed=0,
                            model_config=tiny_model_config, training_config=training_config(max_steps=20),
                            out_model=out / "model.pt", out_history=out / "history.csv",
                            out_summary=out / "summary.json")

    write_extxyz(pool, make_sw_frames("Si", 12, seed=0))
    kill_after_checkpoint(monkeypatch, 10)
    with pytest.raises(Killed):
        run()
    monkeypatch.undo()
    write_extxyz(pool, make_sw_frames("Si", 12, seed=99, stdev=0.15))
    assert run()["resumed_from_step"] is None


def test_regime_settings_leave_out_what_the_regime_does_not_use():
    from mlp_transfer.train import regime_training_config

    # threads: how a job runs, not what it computes (a change must not rerun finished runs)
    training = {"lr": 1e-3, "transfer_lr": 5e-4, "embedding_init": "copy", "batch_size": 4, "threads": 2}
    assert regime_training_config(training, "scratch") == {"lr": 1e-3, "batch_size": 4}
    assert regime_training_config(training, "source") == {"lr": 1e-3, "batch_size": 4}
    assert regime_training_config(training, "transfer") == {"transfer_lr": 5e-4, "embedding_init": "copy",
                                                            "batch_size": 4}


# ------------------------------------------------------------------------------------------ weight averaging

def test_ema_model_is_validated_selected_and_saved(train):
    """With ema_decay the saved weights are the moving average, not the last or best raw iterate, and the
    history differs from the raw run's (validation sees the average)."""
    _, raw_summary, raw_history = train("raw")
    out, summary, history = train("ema", config=training_config(ema_decay=0.9))
    assert summary["best_step"] > 0 and not history["val_loss"].equals(raw_history["val_loss"])
    # Both start from the same initial weights; afterwards validation sees the average, not the iterate.
    assert history["val_loss"].iloc[0] == raw_history["val_loss"].iloc[0]
    assert (history["val_loss"].iloc[1:] != raw_history["val_loss"].iloc[1:]).all()
    saved = models.load_model(out / "model.pt")
    raw_saved = models.load_model(out.parent / "raw" / "model.pt")
    differs = [not torch.equal(a, b) for a, b in zip(saved.state_dict().values(), raw_saved.state_dict().values())]
    assert any(differs)


def test_ema_decay_zero_is_the_plain_run(train):
    _, _, plain = train("plain")
    _, _, zero = train("zero", config=training_config(ema_decay=0.0))
    pd.testing.assert_frame_equal(plain.drop(columns="wall_time_s"), zero.drop(columns="wall_time_s"))


# ------------------------------------------------------------------------------------------ gradient clipping

def _record_gradient_norms(monkeypatch) -> list:
    """Global gradient norm the optimiser sees at each of its steps."""
    norms, step = [], torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.nn.utils.get_total_norm(grads)))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    return norms


def test_gradient_clipping_bounds_every_step(train, monkeypatch):
    unclipped = _record_gradient_norms(monkeypatch)
    _, _, plain = train("plain")
    clip = float(np.median(unclipped)) / 2  # active on most steps
    monkeypatch.undo()
    clipped = _record_gradient_norms(monkeypatch)
    _, summary, history = train("clipped", config=training_config(gradient_clip_norm=clip))
    assert len(clipped) == summary["stopped_step"] > 0
    assert max(clipped) <= clip * (1 + 1e-5)
    assert not history["val_loss"].iloc[1:].equals(plain["val_loss"].iloc[1:])


def test_loose_gradient_clipping_is_the_plain_run(train):
    """A bound no gradient reaches changes nothing: clipping is the only thing the setting does."""
    _, _, plain = train("plain")
    _, _, loose = train("loose", config=training_config(gradient_clip_norm=1e12))
    pd.testing.assert_frame_equal(plain.drop(columns="wall_time_s"), loose.drop(columns="wall_time_s"))


# --------------------------------------------------------------------------------------- Huber force loss

def test_force_loss_is_squared_error_below_delta_and_linear_beyond():
    errors = torch.tensor([0.01, -0.03, 0.2, -1.0], dtype=torch.float64)
    delta = 0.05
    expected = np.mean([0.01 ** 2, 0.03 ** 2, 2 * delta * 0.2 - delta ** 2, 2 * delta * 1.0 - delta ** 2])
    assert float(force_loss(errors, delta)) == pytest.approx(expected, rel=1e-12)
    assert float(force_loss(errors, None)) == pytest.approx(float((errors ** 2).mean()), rel=1e-12)
    # The tail's gradient is bounded by 2 delta per component; the squared error's grows with the error.
    errors.requires_grad_(True)
    force_loss(errors, delta).backward()
    assert float(errors.grad.abs().max()) == pytest.approx(2 * delta / len(errors), rel=1e-12)


def test_huber_force_loss_changes_training_and_validation_loss(train):
    _, _, plain = train("plain")
    _, _, huber = train("huber", config=training_config(force_huber_delta=1e-3))
    # Step 0 validates the same initial weights: only the loss formula differs there.
    assert huber["val_force_mae_mev_ang"].iloc[0] == pytest.approx(plain["val_force_mae_mev_ang"].iloc[0])
    assert huber["val_loss"].iloc[0] < plain["val_loss"].iloc[0]
    assert not huber["val_force_mae_mev_ang"].iloc[1:].equals(plain["val_force_mae_mev_ang"].iloc[1:])


def test_huber_delta_no_error_reaches_is_the_plain_run(train):
    """With every error below delta the Huber term is the squared error, so the run is the plain one."""
    _, _, plain = train("plain")
    _, _, wide = train("wide", config=training_config(force_huber_delta=1e6))
    pd.testing.assert_frame_equal(plain.drop(columns="wall_time_s"), wide.drop(columns="wall_time_s"))


@pytest.mark.parametrize("settings, at_step", [({"ema_decay": 0.9}, 10), ({"warmup_steps": 12}, 5)],
                         ids=["ema", "mid-warmup"])
def test_resume_mid_run_reproduces_values_with_run_state(train, monkeypatch, settings, at_step):
    """The moving average is checkpointed and the warm-up is a function of the step: a run killed mid-way (for the
    warm-up, mid-ramp) and resumed gives the uninterrupted run's values."""
    config = training_config(max_steps=20, **settings)
    _, _, reference = train("reference", config=config)
    resumed = kill_and_resume(train, monkeypatch, "killed", config, at_step=at_step)
    np.testing.assert_allclose(resumed[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(),
                               rtol=0, atol=1e-6)


def test_max_wall_time_stops_at_the_next_validation(train):
    """A wall-time cap ends the run at the first validation past it, with its own stop reason and the
    best-validation weights written like any finished run."""
    config = training_config(max_steps=40, max_wall_time_s=1e-9)
    out, summary, history = train(config=config)
    assert (summary["stop_reason"], summary["stopped_step"]) == ("max_wall_time", 5)
    assert history.step.tolist() == [0, 5]
    assert (out / "model.pt").is_file() and not (out / "checkpoint.pt").exists()


def signal_during_step(monkeypatch, step: int) -> None:
    """SIGTERM arrives while step ``step`` is computed (between two validations)."""
    original = Trainer._warm_up

    def warm_up_with_signal(self):
        if self.step == step - 1:
            self.signal_received = 15
        return original(self)

    monkeypatch.setattr(Trainer, "_warm_up", warm_up_with_signal)


def test_signal_between_validations_past_the_wall_time_resumes_to_the_next_validation(train, monkeypatch):
    """A checkpoint written on a signal mid-interval is not a final one, even past the wall-time cap: the rerun
    goes on to the next validation and stops there, as the uninterrupted run does."""
    config = training_config(max_steps=40, max_wall_time_s=1e-9)
    _, reference, _ = train("reference", config=config)
    _, summary, history = interrupt_and_rerun(train, monkeypatch, "killed", config,
                                              lambda mp: signal_during_step(mp, 3), stops=TrainingInterrupted)
    assert summary["resumed_from_step"] == 3
    assert (summary["stop_reason"], summary["stopped_step"]) == (reference["stop_reason"], 5) == ("max_wall_time", 5)
    assert history.step.tolist() == [0, 5]


def test_non_finite_stop_is_kept_by_a_rerun(train, monkeypatch):
    """A run that stopped on a non-finite validation loss and was killed before writing its model stops again on
    rerun (from the checkpoint), instead of training on."""
    validate = Trainer.validate

    def nan_at_step_10(self):
        metrics = validate(self)
        if self.step == 10:
            metrics["val_loss"] = float("nan")
        return metrics

    monkeypatch.setattr(Trainer, "validate", nan_at_step_10)
    config = training_config(max_steps=20)
    _, reference, _ = train("reference", config=config)
    assert (reference["stop_reason"], reference["stopped_step"]) == ("non_finite_loss", 10)
    _, summary, history = interrupt_and_rerun(train, monkeypatch, "killed", config,
                                              lambda mp: kill_after_checkpoint(mp, 10))
    assert (summary["stop_reason"], summary["stopped_step"]) == ("non_finite_loss", 10)
    assert history.step.tolist() == [0, 5, 10]



# --------------------------------------------------------------------------------------- learning-rate warm-up

def _record_step_learning_rates(monkeypatch) -> list[float]:
    """Learning rate of every optimiser step, as Adam uses it."""
    rates, step = [], torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    return rates


def test_warmup_ramps_the_learning_rate_linearly_then_holds_it(train, monkeypatch):
    rates = _record_step_learning_rates(monkeypatch)
    peak = training_config()["lr"]
    _, summary, history = train(config=training_config(max_steps=20, warmup_steps=8))
    assert len(rates) == summary["stopped_step"] == 20
    np.testing.assert_allclose(rates[:8], [peak * k / 8 for k in range(1, 9)], rtol=1e-12)
    assert rates[8:] == [peak] * 12  # the plateau schedule (patience 100 here) takes over at the peak
    # the history logs the rate of the step just taken
    assert history.set_index("step").lr.loc[5] == pytest.approx(peak * 5 / 8)


def test_warmup_validations_count_neither_for_patience_nor_schedule(train):
    """A run that cannot improve (lr 1e-12) stops after `patience` bad validations; those inside the warm-up
    are not counted, and the plateau schedule does not cut the rate during it."""
    config = training_config(lr=1e-12, max_steps=40, early_stopping={"patience": 2},
                             lr_schedule={"patience": 0, "min_lr": 0.0})
    _, plain, _ = train("plain", config=config)
    _, warm, history = train("warm", config={**config, "warmup_steps": 20})
    assert (plain["stop_reason"], plain["stopped_step"]) == ("early_stopping", 10)
    assert (warm["stop_reason"], warm["stopped_step"]) == ("early_stopping", 25)
    # the first cut comes at the first validation after the warm-up (step 20)
    lr = history.set_index("step").lr
    assert lr.loc[20] == pytest.approx(1e-12) and lr.loc[25] == pytest.approx(0.5e-12)


def test_stage_two_has_its_own_warmup_or_inherits_the_first():
    base = training_config(warmup_steps=50, stage_two={"loss_weights": {"energy": 100.0}, "lr": 1e-4})
    assert TrainSettings.from_config(base).stage_two_settings().warmup_steps == 50
    own = {**base, "stage_two": {**base["stage_two"], "warmup_steps": 200}}
    settings = TrainSettings.from_config(own)
    assert (settings.warmup_steps, settings.stage_two_settings().warmup_steps) == (50, 200)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainSettings.from_config({**base, "stage_two": {**base["stage_two"], "warmup": 3}}).stage_two_settings()


# ------------------------------------------------------------------------------------------------ stage two

STAGE_TWO = {"loss_weights": {"energy": 20.0}, "lr": 1e-3}


def test_stage_two_settings_replace_only_the_named_weights():
    settings = TrainSettings.from_config(training_config(loss_weights={"energy": 10.0, "forces": 1.0},
                                                         stage_two={"loss_weights": {"energy": 100.0}, "lr": 1e-3}))
    two = settings.stage_two_settings()
    assert (two.energy_weight, two.forces_weight, two.stage_two) == (100.0, 1.0, None)
    assert (settings.energy_weight, settings.max_steps) == (10.0, two.max_steps)
    assert TrainSettings.from_config(training_config()).stage_two_settings() is None
    with pytest.raises(ValueError, match="stage_two"):
        TrainSettings.from_config(training_config(stage_two={"loss_weights": {"energie": 1.0}, "lr": 1e-3})
                                  ).stage_two_settings()


def test_stage_two_continues_stage_one_on_one_step_axis(train):
    """Stage one is the one-stage run unchanged; stage two goes on from its best weights with steps and wall
    time that continue stage one's, and the summary keeps stage one's result beside the final one."""
    _, one_stage, reference = train("one", config=training_config(max_steps=20))
    out, summary, history = train("two", config=training_config(max_steps=20, stage_two=STAGE_TWO))
    first, second = history[history.stage == 1], history[history.stage == 2]
    np.testing.assert_allclose(first[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(), rtol=0,
                               atol=1e-6)
    assert second.step.tolist() == [25, 30, 35, 40]
    assert history.step.is_unique and history.wall_time_s.is_monotonic_increasing
    assert (summary["stopped_step"], summary["stop_reason"]) == (40, "max_steps")
    assert summary["stage_one"] == {
        "best_step": one_stage["best_step"], "best_val_loss": pytest.approx(one_stage["best_val_loss"]),
        "best_val_energy_mae_mev_atom": pytest.approx(one_stage["best_val_energy_mae_mev_atom"]),
        "best_val_force_mae_mev_ang": pytest.approx(one_stage["best_val_force_mae_mev_ang"]),
        "stopped_step": 20, "stop_reason": "max_steps", "stage_two_lr": STAGE_TWO["lr"],
        "train_wall_time_s": pytest.approx(first.wall_time_s.iloc[-1], abs=1e-3)}
    # the stage-two validation loss weighs energies twice as much, and the saved model is the best by it
    assert summary["best_step"] > 20
    best = history.set_index("step").loc[summary["best_step"]]
    assert best.val_loss == pytest.approx(summary["best_val_loss"])
    assert best.val_energy_mae_mev_atom == pytest.approx(summary["best_val_energy_mae_mev_atom"])
    assert not any(out.glob("checkpoint*"))


def test_stage_two_that_never_improves_keeps_stage_one_weights(train, splits, sw_pools, tiny_model_config):
    """A stage two that cannot move the weights (lr 1e-12) never beats its start: the saved model, best step
    and errors are stage one's best."""
    stage_two = {"loss_weights": {"energy": 100.0}, "lr": 1e-12}
    _, one_stage, _ = train("one", config=training_config(max_steps=20))
    out, summary, _ = train("two", config=training_config(max_steps=20, stage_two=stage_two))
    assert summary["best_step"] == one_stage["best_step"] == summary["stage_one"]["best_step"]
    assert summary["best_val_force_mae_mev_ang"] == pytest.approx(one_stage["best_val_force_mae_mev_ang"])
    reference = models.load_model(out.parent / "one" / "model.pt").state_dict()
    for key, value in models.load_model(out / "model.pt").state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-7)


def kill_in_stage_two_after_checkpoint(monkeypatch, at_step: int) -> None:
    """Like kill_after_checkpoint, counting stage two's own steps (its trainer's settings have no stage_two)."""
    original = Trainer.save_checkpoint

    def save_then_die_in_stage_two(self):
        original(self)
        if self.settings.stage_two is None and self.step >= at_step:
            raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die_in_stage_two)


def test_stage_two_resumes_after_a_kill(train, monkeypatch):
    """Killed in stage two, the rerun replays stage one from its final checkpoint and resumes stage two from
    its own: the history is the uninterrupted run's."""
    config = training_config(max_steps=20, stage_two=STAGE_TWO)
    _, _, reference = train("reference", config=config)
    _, summary, resumed = interrupt_and_rerun(train, monkeypatch, "killed", config,
                                              lambda mp: kill_in_stage_two_after_checkpoint(mp, 10))
    assert summary["resumed_from_step"] == 30
    assert resumed.step.tolist() == reference.step.tolist()
    np.testing.assert_allclose(resumed[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(), rtol=0,
                               atol=1e-6)


def test_signal_at_the_end_of_stage_one_stops_before_stage_two(train, monkeypatch):
    """SIGTERM during stage one's last validation: the run stops there (its checkpoint is written) instead of
    starting stage two, and the rerun reproduces the uninterrupted two-stage run."""
    config = training_config(max_steps=20, stage_two=STAGE_TWO)
    _, _, reference = train("reference", config=config)
    record = Trainer._record

    def record_with_signal(self, train_loss):
        if self.settings.stage_two is not None and self.step == 20:  # stage one's final validation
            self.signal_received = 15
        return record(self, train_loss)

    _, summary, resumed = interrupt_and_rerun(
        train, monkeypatch, "killed", config, lambda mp: mp.setattr(Trainer, "_record", record_with_signal),
        stops=TrainingInterrupted, match="end of stage one")
    assert summary["resumed_from_step"] == 20  # stage one replayed from its final checkpoint, stage two fresh
    assert resumed.step.tolist() == reference.step.tolist()
    np.testing.assert_allclose(resumed[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(), rtol=0,
                               atol=1e-6)


def test_stage_two_checkpoint_of_other_settings_is_discarded(train, monkeypatch, tmp_path):
    """A run killed in stage two and rerun with another stage two starts afresh: neither stage's checkpoint of
    the old settings is resumed, and the history is a clean run's."""
    config = training_config(max_steps=20, stage_two=STAGE_TWO)
    other = training_config(max_steps=20, stage_two={**STAGE_TWO, "lr": 5e-4})
    _, _, reference = train("reference", config=other)
    kill_in_stage_two_after_checkpoint(monkeypatch, 10)
    with pytest.raises(Killed):
        train("killed", config=config)
    monkeypatch.undo()
    assert (tmp_path / "killed" / "checkpoint_stage_two.pt").is_file()
    _, summary, history = train("killed", config=other)
    assert summary["resumed_from_step"] is None
    np.testing.assert_allclose(history[VALUE_COLUMNS].to_numpy(), reference[VALUE_COLUMNS].to_numpy(), rtol=0,
                               atol=1e-6)
