"""Published-error anchors: config checks, the comparison table, and their lines in the learning-curve plot."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from mlp_transfer.aggregate import plot_learning_curve
from mlp_transfer.config import ConfigError, load_config
from mlp_transfer.published import comparison_table, comparison_markdown

from test_config import TINY

PUBLISHED = {"d": {"Ge": [{"model": "GAP", "energy_mae_mev_atom": 2.0, "force_mae_mev_ang": 50.0, "citation": "c"},
                          {"model": "MTP", "energy_mae_mev_atom": 1.0, "force_mae_mev_ang": 60.0, "citation": "c"}],
                   "Si": [{"model": "GAP", "force_mae_mev_ang": 70.0, "citation": "c"}]}}


def _summary() -> pd.DataFrame:
    rows = []
    for regime, scale in (("transfer", 1.0), ("scratch", 1.5)):
        for n in (5, 200):
            rows.append({"dataset": "d", "source": "Si", "target": "Ge", "regime": regime, "n_train": n,
                         "test_set": "test", "n_seeds": 3, "energy_mae_mev_atom_mean": scale * 1000 / n,
                         "energy_mae_mev_atom_std": 0.1, "force_mae_mev_ang_mean": scale * 20000 / n,
                         "force_mae_mev_ang_std": 1.0})
    return pd.DataFrame(rows)


def _source() -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "element": "Si", "regime": "source", "n_train": 194, "test_set": "test",
                          "energy_mae_mev_atom": 7.0, "force_mae_mev_ang": 105.0}])


def test_comparison_takes_the_largest_size_and_the_source_model():
    table = comparison_table(_summary(), _source(), PUBLISHED)
    ours = table[table["citation"] == "this study"].set_index("model")
    assert set(ours.index) == {"transfer (Si→Ge)", "scratch (Si→Ge)", "source (Si)"}
    assert ours.loc["transfer (Si→Ge)", "n_train"] == 200
    # ratios against the best published value of the same element: energy 1.0 (MTP), force 50 (GAP)
    assert ours.loc["transfer (Si→Ge)", "force_vs_best_published"] == pytest.approx(100.0 / 50.0)
    assert ours.loc["scratch (Si→Ge)", "energy_vs_best_published"] == pytest.approx(7.5 / 1.0)
    assert ours.loc["source (Si)", "force_vs_best_published"] == pytest.approx(105.0 / 70.0)
    assert pd.isna(ours.loc["source (Si)", "energy_vs_best_published"])  # no published Si energy here
    assert table[table["citation"] != "this study"]["force_vs_best_published"].isna().all()
    md = comparison_markdown(table)
    assert "## d: Ge, test set 'test'" in md and "2.00" in md


def test_comparison_takes_each_regimes_own_largest_size():
    """A partial table (scratch has not reached the largest size yet) keeps both regimes, each at its largest."""
    summary = _summary()
    summary = summary[~((summary["regime"] == "scratch") & (summary["n_train"] == 200))]
    ours = comparison_table(summary, _source(), PUBLISHED).set_index("model")
    assert ours.loc["transfer (Si→Ge)", "n_train"] == 200
    assert ours.loc["scratch (Si→Ge)", "n_train"] == 5


def test_comparison_without_a_matching_test_set_is_empty():
    published = {"d": {"Ge": [{"model": "X", "test_set": "other", "force_mae_mev_ang": 1.0, "citation": "c"}]}}
    table = comparison_table(_summary(), _source(), published)
    assert (table["citation"] != "this study").all()


@pytest.mark.parametrize("published, message", [
    ({"nope": {"Ge": []}}, "published_errors.nope: unknown dataset"),
    ({"sw": {"Cu": []}}, "elements ['Cu'] are not in the dataset"),
    ({"sw": {"Ge": [{"model": "GAP", "force_mae_mev_ang": 50}]}}, "'citation' is a required property"),
    ({"sw": {"Ge": [{"model": "GAP", "citation": "c"}]}}, "published_errors.sw.Ge.0"),
    ({"sw": {"Ge": [{"model": "GAP", "citation": "c", "force_mae_mev_ang": -1}]}}, "published_errors.sw.Ge.0"),
])
def test_bad_published_errors_name_the_key(tmp_path, published, message):
    config = yaml.safe_load(TINY.read_text())
    config["aggregation"]["published_errors"] = published
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=None) as info:
        load_config(path)
    assert message in str(info.value)


def test_learning_curve_plot_draws_the_anchors(tmp_path, monkeypatch):
    drawn = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.axhline
    monkeypatch.setattr(matplotlib.axes.Axes, "axhline",
                        lambda self, y=0, *a, **k: drawn.append(y) or original(self, y, *a, **k))
    lc = _summary().rename(columns={"force_mae_mev_ang_mean": "force_mae_mev_ang"}).assign(seed=0)
    plot_learning_curve(lc, "force_mae_mev_ang", tmp_path / "lc.png", PUBLISHED["d"]["Ge"])
    assert sorted(drawn) == [50.0, 60.0]
    assert (tmp_path / "lc.png").stat().st_size > 1000
