"""Test-set evaluation: hand-computed metrics, grouping by test set, a perfect predictor, the output CSV."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mlp_transfer import models
from mlp_transfer.data.common import attach_results, write_extxyz
from mlp_transfer.evaluate import (METRIC_COLUMNS, cli, error_metrics, evaluate_model, labelled_subsets, predict,
                                   run_evaluation)

LABELS = ["T900K", "rattle", "T900K", "T300K", "T900K"]


@pytest.fixture(scope="module")
def model(tiny_model_config):
    torch.manual_seed(0)
    model = models.build_model(**tiny_model_config)
    models.set_energy_offset(model, -4.1)
    return model


@pytest.fixture(scope="module")
def test_frames(make_sw_frames):
    """Five labelled Si cells in the groups T900K (3), rattle (1), T300K (1), plus one without a label."""
    frames = make_sw_frames("Si", 6, seed=31, test_sets=LABELS + ["unused"])
    del frames[5].info["test_set"]
    return frames


def test_error_metrics_hand_computed():
    """Energies per atom and force components, in meV: values worked out by hand."""
    ref_e, pred_e, n_atoms = [-10.0, -20.0], [-9.6, -20.8], [2, 8]  # E/N errors +0.2 and -0.1 eV/atom
    ref_f = [np.zeros((2, 3)), np.zeros((8, 3))]
    pred_f = [np.zeros((2, 3)), np.zeros((8, 3))]
    pred_f[0][0, 0] = 0.3
    pred_f[1][5, 2] = -0.6  # 30 components, two of them wrong
    metrics = error_metrics(ref_e, pred_e, n_atoms, ref_f, pred_f)
    assert set(metrics) == set(METRIC_COLUMNS)
    assert metrics["energy_mae_mev_atom"] == pytest.approx(150.0)
    assert metrics["energy_rmse_mev_atom"] == pytest.approx(1000 * math.sqrt((0.2 ** 2 + 0.1 ** 2) / 2))
    assert metrics["force_mae_mev_ang"] == pytest.approx(1000 * 0.9 / 30)
    assert metrics["force_rmse_mev_ang"] == pytest.approx(1000 * math.sqrt((0.3 ** 2 + 0.6 ** 2) / 30))


def test_predict_shapes(model, test_frames):
    """One energy per structure and one (N, 3) force array per structure, across batch boundaries."""
    energies, forces = predict(model, test_frames, cutoff=4.0, batch_size=4)
    assert energies.shape == (6,)
    assert [f.shape for f in forces] == [(8, 3)] * 6
    energies8, forces8 = predict(model, test_frames, cutoff=4.0, batch_size=8)
    np.testing.assert_allclose(energies, energies8, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.concatenate(forces), np.concatenate(forces8), rtol=0, atol=1e-5)


def test_evaluate_model_groups_by_test_set_in_first_appearance_order(model, test_frames):
    """One row per test_set label in order of first appearance (unlabelled frames -> 'test'),
    each with its structure count and the metrics of its own structures."""
    table = evaluate_model(model, test_frames, cutoff=4.0)
    assert table.test_set.tolist() == ["T900K", "rattle", "T300K", "test"]
    assert table.n_structures.tolist() == [3, 1, 1, 1]
    assert list(table.columns) == ["test_set", "n_structures", *METRIC_COLUMNS]
    energies, forces = predict(model, test_frames, cutoff=4.0)
    groups = {"T900K": [0, 2, 4], "rattle": [1], "T300K": [3], "test": [5]}
    for row in table.itertuples():
        idx = groups[row.test_set]
        expected = error_metrics([test_frames[i].calc.results["energy"] for i in idx], energies[idx], [8] * len(idx),
                                 [test_frames[i].calc.results["forces"] for i in idx], [forces[i] for i in idx])
        for column in METRIC_COLUMNS:
            assert getattr(row, column) == pytest.approx(expected[column], rel=1e-9), (row.test_set, column)
    # The groups really differ (a model evaluated on all frames at once would give equal rows).
    assert table.force_mae_mev_ang.nunique() == 4


def test_perfect_predictor_has_zero_errors(model, test_frames):
    """Labels replaced by the model's own predictions give zero errors in every group."""
    energies, forces = predict(model, test_frames, cutoff=4.0)
    perfect = []
    for atoms, energy, force in zip(test_frames, energies, forces):
        copy = atoms.copy()
        attach_results(copy, energy, force)
        perfect.append(copy)
    table = evaluate_model(model, perfect, cutoff=4.0)
    assert len(table) == 4
    np.testing.assert_allclose(table[METRIC_COLUMNS].to_numpy(), 0.0, atol=1e-6)
    # ...while the true SW labels give clearly non-zero errors.
    assert (evaluate_model(model, test_frames, cutoff=4.0)[METRIC_COLUMNS].to_numpy() > 1.0).all()


@pytest.fixture
def saved(model, test_frames, tmp_path):
    model_path, test_path, summary_path = tmp_path / "model.pt", tmp_path / "test.xyz", tmp_path / "summary.json"
    models.save_model(model, model_path)
    write_extxyz(test_path, test_frames)
    summary_path.write_text(json.dumps({"n_train": 9, "regime": "scratch"}))
    return model_path, test_path, summary_path


def test_run_evaluation_writes_metadata_first_and_n_train_from_summary(saved, model, test_frames, tmp_path):
    """Metadata columns come first, in the given order; n_train is the summary's number, not the size label."""
    model_path, test_path, summary_path = saved
    out = tmp_path / "eval" / "errors.csv"
    meta = {"dataset": "sw", "regime": "scratch", "n_train": "all", "seed": 1}
    table = run_evaluation(model_path, test_path, out, cutoff=4.0, metadata=meta, summary_path=summary_path)
    written = pd.read_csv(out)
    assert list(written.columns) == ["dataset", "regime", "n_train", "seed", "test_set", "n_structures",
                                     *METRIC_COLUMNS]
    assert written.n_train.tolist() == [9] * 4
    assert written.dataset.tolist() == ["sw"] * 4 and written.seed.tolist() == [1] * 4
    assert written.test_set.tolist() == ["T900K", "rattle", "T300K", "test"]
    expected = evaluate_model(model, test_frames, cutoff=4.0)
    np.testing.assert_allclose(written[METRIC_COLUMNS].to_numpy(), expected[METRIC_COLUMNS].to_numpy(), rtol=1e-6)
    assert list(table.columns) == list(written.columns)
    assert [p.name for p in out.parent.iterdir()] == ["errors.csv"]
    assert meta["n_train"] == "all"  # the caller's dict is not modified


def test_run_evaluation_without_summary_keeps_metadata(saved, tmp_path):
    """Without a summary the metadata is written as given; with one and no n_train key, n_train is added."""
    model_path, test_path, summary_path = saved
    plain = run_evaluation(model_path, test_path, tmp_path / "a.csv", cutoff=4.0, metadata={"n_train": "all"})
    assert plain.n_train.tolist() == ["all"] * 4
    added = run_evaluation(model_path, test_path, tmp_path / "b.csv", cutoff=4.0, metadata={"dataset": "sw"},
                           summary_path=summary_path)
    assert list(added.columns[:3]) == ["dataset", "n_train", "test_set"]
    assert added.n_train.tolist() == [9] * 4


def _with_groups(frames, groups):
    out = [atoms.copy() for atoms in frames]
    for atoms, original, group in zip(out, frames, groups):
        atoms.calc = original.calc
        if group is not None:
            atoms.info["group"] = group
    return out


def test_labelled_subsets_group_each_test_set():
    """Each test set's whole row (group 'all') comes first, then its groups in first-appearance order."""
    frames = [type("F", (), {"info": info})() for info in (
        {"test_set": "test", "group": "AIMD"}, {"test_set": "test", "group": "Vacancy"},
        {"test_set": "hot", "group": "AIMD"}, {"test_set": "test", "group": "AIMD"})]
    subsets = labelled_subsets(frames, "group")
    assert [(labels, idx.tolist()) for labels, idx in subsets] == [
        ({"test_set": "test", "group": "all"}, [0, 1, 3]), ({"test_set": "test", "group": "AIMD"}, [0, 3]),
        ({"test_set": "test", "group": "Vacancy"}, [1]), ({"test_set": "hot", "group": "all"}, [2]),
        ({"test_set": "hot", "group": "AIMD"}, [2])]
    assert [labels for labels, _ in labelled_subsets(frames)] == [{"test_set": "test"}, {"test_set": "hot"}]


def test_grouped_evaluation_rows_match_evaluating_each_group_alone(model, test_frames):
    """A group's row has exactly the errors of evaluating its structures alone; the 'all' rows are the ungrouped
    table; a structure without the key is an error naming it."""
    groups = ["A", "B", "A", "B", "B", "A"]
    frames = _with_groups(test_frames, groups)
    grouped = evaluate_model(model, frames, cutoff=4.0, group_by="group")
    plain = evaluate_model(model, frames, cutoff=4.0)
    whole = grouped[grouped.group == "all"].reset_index(drop=True)
    assert whole.test_set.tolist() == plain.test_set.tolist()
    np.testing.assert_allclose(whole[METRIC_COLUMNS].to_numpy(), plain[METRIC_COLUMNS].to_numpy(), rtol=1e-9)
    t900 = [i for i, f in enumerate(frames) if f.info.get("test_set") == "T900K"]  # indices 0, 2, 4: A, A, B
    alone = evaluate_model(model, [frames[i] for i in t900 if groups[i] == "A"], cutoff=4.0)
    row = grouped[(grouped.test_set == "T900K") & (grouped.group == "A")]
    assert row.n_structures.item() == 2
    np.testing.assert_allclose(row[METRIC_COLUMNS].to_numpy()[0], alone[METRIC_COLUMNS].to_numpy()[0], rtol=1e-9)
    with pytest.raises(ValueError, match="index 3.*'group'"):
        evaluate_model(model, _with_groups(test_frames, ["A", "B", "A", None, "B", "A"]), cutoff=4.0,
                       group_by="group")


def test_cli_group_by(saved, test_frames, tmp_path, capsys):
    """--group-by adds the group column; a key the test file lacks exits 2 with the reason and writes nothing."""
    model_path, test_path, _ = saved
    grouped_path, out = tmp_path / "grouped.xyz", tmp_path / "grouped.csv"
    write_extxyz(grouped_path, _with_groups(test_frames, ["A", "B", "A", "B", "B", "A"]))
    assert cli(["--model", str(model_path), "--test", str(grouped_path), "--cutoff", "4", "--out", str(out),
                "--group-by", "group"]) == 0
    written = pd.read_csv(out)
    assert written.columns[:2].tolist() == ["test_set", "group"]
    assert written.group.tolist() == ["all", "A", "B", "all", "B", "all", "B", "all", "A"]
    assert cli(["--model", str(model_path), "--test", str(test_path), "--cutoff", "4",
                "--out", str(tmp_path / "none.csv"), "--group-by", "mlearn_group"]) == 2
    err = capsys.readouterr().err
    assert "'mlearn_group'" in err and str(test_path) in err  # the error names the key and the file
    assert not (tmp_path / "none.csv").exists()
