"""Seed committees: hand-computed committee metrics, agreement with single-model evaluation, the CSV and table,
bad input, and the committee rows of the published comparison."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mlp_transfer import committee, models
from mlp_transfer.committee import (COMMITTEE_COLUMNS, CommitteeError, committee_metrics, evaluate_committee,
                                    run_committee_evaluation, write_committee_tables)
from mlp_transfer.data.common import write_extxyz
from mlp_transfer.evaluate import METRIC_COLUMNS, evaluate_model, predict
from mlp_transfer.published import comparison_table

LABELS = ["T900K", "rattle", "T900K", "T300K"]


@pytest.fixture(scope="module")
def members(tiny_model_config):
    out = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = models.build_model(**tiny_model_config)
        models.set_energy_offset(model, -4.1)
        out.append(model)
    return out


@pytest.fixture(scope="module")
def test_frames(make_sw_frames):
    return make_sw_frames("Si", 4, seed=41, test_sets=LABELS)


def test_committee_metrics_hand_computed():
    """Two members on one 2-atom structure: committee mean, member errors, spreads and gain worked out by hand."""
    ref_e, n_atoms = [-10.0], [2]
    ref_f = [np.zeros((2, 3))]
    e = np.array([[-10.2], [-9.6]])  # E/N errors -0.1 and +0.2 eV/atom; mean prediction -9.9: +0.05 eV/atom
    f0, f1 = np.zeros((2, 3)), np.zeros((2, 3))
    f0[0, 0], f1[0, 0] = 0.3, 0.1  # atom 0: mean 0.2, spread 0.1 in x
    f0[1, 1], f1[1, 1] = -0.4, 0.4  # atom 1: mean 0.0, spread 0.4 in y
    row = committee_metrics(ref_e, n_atoms, ref_f, e, [[f0], [f1]])
    assert row["n_members"] == 2
    assert row["energy_mae_mev_atom"] == pytest.approx(50.0)
    assert row["force_mae_mev_ang"] == pytest.approx(1000 * 0.2 / 6)
    assert row["member_energy_mae_mev_atom_mean"] == pytest.approx(150.0)
    assert row["member_energy_mae_mev_atom_std"] == pytest.approx(np.std([100.0, 200.0], ddof=1))
    assert row["member_force_mae_mev_ang_mean"] == pytest.approx(1000 * (0.7 / 6 + 0.5 / 6) / 2)
    assert row["force_mae_gain"] == pytest.approx(1 - (0.2 / 6) / (0.6 / 6))
    assert row["energy_spread_mev_atom"] == pytest.approx(150.0)  # std of (-5.1, -4.8) eV/atom
    assert row["force_spread_mev_ang"] == pytest.approx(1000 * np.sqrt((0.1 ** 2 + 0.4 ** 2) / 6))
    # Atom 1 has the larger spread but the smaller committee error: perfectly anti-ordered.
    assert row["force_spread_error_spearman"] == pytest.approx(-1.0)


def test_identical_members_equal_the_single_model(members, test_frames):
    """A committee of copies of one model has that model's errors, zero spread, zero gain and no correlation."""
    table = evaluate_committee([members[0], members[0]], test_frames, cutoff=4.0)
    single = evaluate_model(members[0], test_frames, cutoff=4.0)
    assert table.test_set.tolist() == single.test_set.tolist() == ["T900K", "rattle", "T300K"]
    np.testing.assert_allclose(table[METRIC_COLUMNS].to_numpy(), single[METRIC_COLUMNS].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(table.member_force_mae_mev_ang_mean, single.force_mae_mev_ang, rtol=1e-9)
    np.testing.assert_allclose(table[["force_spread_mev_ang", "energy_spread_mev_atom", "force_mae_gain"]], 0.0,
                               atol=1e-9)
    assert table.force_spread_error_spearman.isna().all()


def test_committee_of_different_members(members, test_frames):
    """Three different models: the committee's force MAE is no worse than the members' mean (the MAE is convex),
    the per-group rows use their own structures and the columns come in the documented order."""
    table = evaluate_committee(members, test_frames, cutoff=4.0)
    assert list(table.columns) == COMMITTEE_COLUMNS
    assert table.n_members.tolist() == [3, 3, 3] and table.n_structures.tolist() == [2, 1, 1]
    assert (table.force_mae_mev_ang <= table.member_force_mae_mev_ang_mean + 1e-9).all()
    assert (table.force_spread_mev_ang > 0).all()
    idx = [0, 2]  # the T900K group, by hand
    preds = [predict(m, [test_frames[i] for i in idx], cutoff=4.0) for m in members]
    mean_forces = np.mean([np.concatenate(f) for _, f in preds], axis=0)
    ref = np.concatenate([test_frames[i].calc.results["forces"] for i in idx])
    assert table.force_mae_mev_ang[0] == pytest.approx(1000 * np.mean(np.abs(mean_forces - ref)), rel=1e-6)


@pytest.fixture
def saved(members, test_frames, tmp_path):
    paths, summaries = [], []
    for seed, model in enumerate(members):
        paths.append(tmp_path / f"seed{seed}" / "model.pt")
        paths[-1].parent.mkdir()
        models.save_model(model, paths[-1])
        summaries.append(tmp_path / f"seed{seed}" / "summary.json")
        summaries[-1].write_text(json.dumps({"n_train": 12}))
    test_path = tmp_path / "test.xyz"
    write_extxyz(test_path, test_frames)
    return paths, summaries, test_path


def test_run_committee_evaluation_and_table(saved, tmp_path):
    """The CSV has the metadata first and n_train from the summaries; the table stacks cells and renders."""
    paths, summaries, test_path = saved
    meta = {"dataset": "sw", "source": "Si", "target": "Ge", "regime": "transfer", "seeds": "0 1 2"}
    out = tmp_path / "eval_committee" / "n12.csv"
    run_committee_evaluation(paths, test_path, out, 4.0, meta, summaries)
    written = pd.read_csv(out)
    assert list(written.columns) == ["dataset", "source", "target", "regime", "seeds", "n_train",
                                     *COMMITTEE_COLUMNS]
    assert written.n_train.tolist() == [12] * 3
    scratch = tmp_path / "eval_committee" / "scratch.csv"
    run_committee_evaluation(paths[:2], test_path, scratch, 4.0, {**meta, "regime": "scratch", "seeds": "0 1"},
                             summaries[:2])
    table = write_committee_tables([out, scratch], tmp_path / "c.csv", tmp_path / "c.md")
    assert len(table) == 6 and set(table.regime) == {"transfer", "scratch"}
    assert table.test_set.is_monotonic_increasing
    text = (tmp_path / "c.md").read_text()
    assert "## sw: Si → Ge" in text and "spread-error ρ" in text
    assert sorted(p.name for p in tmp_path.glob("c.*")) == ["c.csv", "c.md"]


def test_bad_committees_write_nothing(saved, tmp_path):
    paths, summaries, test_path = saved
    out = tmp_path / "bad.csv"
    with pytest.raises(CommitteeError, match="at least 2 models"):
        run_committee_evaluation(paths[:1], test_path, out, 4.0)
    summaries[1].write_text(json.dumps({"n_train": 13}))
    with pytest.raises(CommitteeError, match="different numbers of structures.*seed1"):
        run_committee_evaluation(paths, test_path, out, 4.0, summary_paths=summaries)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        run_committee_evaluation([paths[0], tmp_path / "nope.pt"], test_path, out, 4.0)
    assert not out.exists()
    (tmp_path / "short.csv").write_text("dataset,regime\nsw,transfer\n")
    with pytest.raises(CommitteeError, match="short.csv lacks columns"):
        committee.committee_table([tmp_path / "short.csv"])


def test_cli(saved, tmp_path, capsys):
    paths, summaries, test_path = saved
    out = tmp_path / "cli.csv"
    argv = ["evaluate", "--models", *map(str, paths), "--test", str(test_path), "--cutoff", "4", "--out", str(out),
            "--summaries", *map(str, summaries), "--meta", "dataset=sw", "source=Si", "target=Ge", "regime=scratch"]
    assert committee.cli(argv) == 0
    assert pd.read_csv(out).n_members.tolist() == [3] * 3
    assert committee.cli(["evaluate", "--models", str(paths[0]), "--test", str(test_path), "--cutoff", "4",
                          "--out", str(tmp_path / "x.csv")]) == 2
    assert "at least 2 models" in capsys.readouterr().err
    assert committee.cli(["table", "--inputs", str(out), "--out-csv", str(tmp_path / "t.csv"),
                          "--out-md", str(tmp_path / "t.md")]) == 0


def test_published_comparison_gets_committee_rows():
    """Committee rows of the largest size appear beside the seed means, with their ratio to the best published."""
    summary = pd.DataFrame([{"dataset": "d", "source": "Si", "target": "Ge", "regime": "transfer", "n_train": n,
                             "test_set": "test", "n_seeds": 3, "energy_mae_mev_atom_mean": 3.0,
                             "energy_mae_mev_atom_std": 0.3, "force_mae_mev_ang_mean": 60.0,
                             "force_mae_mev_ang_std": 1.0} for n in (10, 200)])
    source = pd.DataFrame(columns=["dataset", "element", "test_set", "energy_mae_mev_atom", "force_mae_mev_ang"])
    cells = pd.DataFrame([{"dataset": "d", "source": "Si", "target": "Ge", "regime": "transfer", "n_train": n,
                           "test_set": "test", "n_members": 3, "energy_mae_mev_atom": e, "force_mae_mev_ang": f}
                          for n, e, f in ((10, 9.0, 90.0), (200, 2.5, 55.0))])
    published = {"d": {"Ge": [{"model": "GAP", "force_mae_mev_ang": 50.0, "energy_mae_mev_atom": 2.0,
                               "citation": "x"}]}}
    table = comparison_table(summary, source, published, cells)
    row = table[table.model == "transfer committee of 3 (Si→Ge)"].iloc[0]
    assert row.n_train == 200 and row.n_seeds == 3
    assert row.force_mae_mev_ang == 55.0 and np.isnan(row.force_mae_mev_ang_std)
    assert row.force_vs_best_published == pytest.approx(1.1)
    assert len(table) == 3  # seed mean, committee, GAP


def test_grouped_committee_rows(members, test_frames, saved, tmp_path):
    """Grouped by an info key: an 'all' row per test set equal to the ungrouped row, then one row per group."""
    frames = [atoms.copy() for atoms in test_frames]
    for atoms, original, group in zip(frames, test_frames, ["A", "B", "B", "A"]):
        atoms.calc = original.calc
        atoms.info["group"] = group
    grouped = evaluate_committee(members, frames, cutoff=4.0, group_by="group")
    plain = evaluate_committee(members, frames, cutoff=4.0)
    assert grouped.columns[:2].tolist() == ["test_set", "group"]
    assert list(zip(grouped.test_set, grouped.group)) == [("T900K", "all"), ("T900K", "A"), ("T900K", "B"),
                                                          ("rattle", "all"), ("rattle", "B"), ("T300K", "all"),
                                                          ("T300K", "A")]
    whole = grouped[grouped.group == "all"].reset_index(drop=True)
    np.testing.assert_allclose(whole[METRIC_COLUMNS].to_numpy(), plain[METRIC_COLUMNS].to_numpy(), rtol=1e-9)
    paths, summaries, test_path = saved
    out = tmp_path / "grouped.csv"
    assert committee.cli(["evaluate", "--models", *map(str, paths), "--test", str(test_path), "--cutoff", "4",
                          "--out", str(out), "--group-by", "test_set"]) == 0
    assert pd.read_csv(out).group.tolist() == ["all", "T900K", "all", "rattle", "all", "T300K"]


def test_grouped_rows_stay_apart_in_the_table(saved, tmp_path):
    """The table keeps the structure type of grouped evaluations (rows would look like duplicates without it) and
    counts an ungrouped evaluation as the whole test set."""
    paths, summaries, test_path = saved
    meta = {"dataset": "sw", "source": "Si", "target": "Ge", "regime": "transfer", "seeds": "0 1 2"}
    grouped, plain = tmp_path / "grouped.csv", tmp_path / "plain.csv"
    run_committee_evaluation(paths, test_path, grouped, 4.0, meta, summaries, group_by="test_set")
    run_committee_evaluation(paths, test_path, plain, 4.0, {**meta, "regime": "scratch"}, summaries)
    table = write_committee_tables([grouped, plain], tmp_path / "c.csv", tmp_path / "c.md")
    rows = table[table.regime == "transfer"]
    assert sorted(zip(rows.test_set, rows.group)) == sorted([("T900K", "all"), ("T900K", "T900K"), ("rattle", "all"),
                                                             ("rattle", "rattle"), ("T300K", "all"), ("T300K", "T300K")])
    assert (table.loc[table.regime == "scratch", "group"] == "all").all()
    assert not table.duplicated(["test_set", "group", "regime", "n_train"]).any()
    assert "| group " in (tmp_path / "c.md").read_text().replace("|:", "| ")
