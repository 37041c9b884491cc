"""Learning-curve splits: nesting, determinism, a fixed disjoint validation set, clear errors, atomic output."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from ase.io import read, write

from mlp_transfer.splits import ALL, SplitError, cli, make_splits, parse_size, stratified_order, write_splits

SIZES = [2, 5, 10, ALL]


def test_subsets_are_nested():
    """Every smaller training subset lies inside each larger one (and has the requested size)."""
    split = make_splits(40, SIZES, n_validation=6, seed=3)
    subsets = [set(split["train"][str(s)]) for s in SIZES]
    assert [len(s) for s in subsets] == [2, 5, 10, 34]
    for small, large in zip(subsets, subsets[1:]):
        assert small < large


def test_deterministic_for_a_seed_and_different_for_another():
    """The same seed reproduces the split exactly; another seed draws a different one."""
    first = make_splits(40, SIZES, n_validation=6, seed=3)
    assert make_splits(40, SIZES, n_validation=6, seed=3) == first
    other = make_splits(40, SIZES, n_validation=6, seed=4)
    assert other["validation"] != first["validation"]
    assert other["train"]["10"] != first["train"]["10"]


def test_validation_disjoint_from_training_and_same_for_all_sizes():
    """The validation set never overlaps any training subset and does not depend on the sizes requested."""
    split = make_splits(40, SIZES, n_validation=6, seed=1)
    validation = set(split["validation"])
    assert len(validation) == 6
    for indices in split["train"].values():
        assert not validation & set(indices)
    # Asking for only one size gives the same validation set and the same subset.
    alone = make_splits(40, [5], n_validation=6, seed=1)
    assert alone["validation"] == split["validation"]
    assert alone["train"]["5"] == split["train"]["5"]


def test_all_is_pool_minus_validation():
    """'all' is every pool index except the validation ones."""
    split = make_splits(25, [ALL], n_validation=4, seed=0)
    assert sorted(split["train"][ALL] + split["validation"]) == list(range(25))
    assert len(split["train"][ALL]) == 21


def test_size_larger_than_pool_names_sizes_and_pool():
    """Too large a size is a SplitError that names the offending size and the pool."""
    with pytest.raises(SplitError) as info:
        make_splits(20, [5, 17], n_validation=4, seed=0, pool_name="Ge_pool.xyz")
    message = str(info.value)
    assert "17" in message and "Ge_pool.xyz" in message and "20" in message


def test_size_equal_to_available_is_allowed():
    """The boundary case pool - validation is accepted (it equals 'all')."""
    split = make_splits(20, [16, ALL], n_validation=4, seed=0)
    assert split["train"]["16"] == split["train"][ALL]


@pytest.mark.parametrize("size", [0, -3, "five", "2.5", 2.5, True, "0"])
def test_invalid_sizes_raise(size):
    """Zero, negative, non-integer and boolean sizes are SplitErrors."""
    with pytest.raises(SplitError):
        make_splits(20, [size], n_validation=4, seed=0)


def test_parse_size_accepts_integer_strings_and_all():
    """CLI sizes arrive as strings: '7' -> 7 and 'all' stays 'all'."""
    assert parse_size("7") == 7
    assert parse_size(ALL) == ALL


def test_too_few_structures_for_validation():
    """A pool no larger than the validation set is a SplitError."""
    with pytest.raises(SplitError):
        make_splits(4, [ALL], n_validation=4, seed=0)
    with pytest.raises(SplitError):
        make_splits(10, [2], n_validation=0, seed=0)


def test_write_splits_writes_json_atomically(sw_pools, tmp_path):
    """write_splits reads the pool size, writes the same split as make_splits and leaves no temp files."""
    out = tmp_path / "splits" / "seed0.json"
    returned = write_splits(sw_pools["Si"], out, ["2", "4", ALL], n_validation=3, seed=0)
    assert sorted(p.name for p in out.parent.iterdir()) == ["seed0.json"]
    written = json.loads(out.read_text())
    assert written == returned
    assert written["pool_size"] == 12
    assert written["pool"] == str(sw_pools["Si"])
    expected = make_splits(12, [2, 4, ALL], n_validation=3, seed=0)
    assert written["train"] == expected["train"] and written["validation"] == expected["validation"]


def test_write_splits_error_leaves_no_file(sw_pools, tmp_path):
    """A split that cannot be drawn raises before anything is written."""
    out = tmp_path / "seed0.json"
    with pytest.raises(SplitError):
        write_splits(sw_pools["Si"], out, [50], n_validation=3, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_unstratified_split_is_unchanged():
    """The plain random draw is pinned: results of earlier studies (mlearn Ge pool, seed 0) stay reproducible."""
    split = make_splits(228, [5, ALL], n_validation=20, seed=0)
    assert split["validation"] == [0, 6, 36, 65, 70, 75, 84, 89, 97, 102, 110, 111, 133, 144, 159, 185, 196,
                                   202, 218, 225]
    assert split["train"]["5"] == [25, 52, 60, 74, 124]
    assert make_splits(228, [5, ALL], 20, 0, labels=None) == split


def _within_one_of_share(indices, labels, pool=None):
    """Every label's count among ``indices`` is within one of its share of ``pool`` (default: every index)."""
    pool = range(len(labels)) if pool is None else pool
    shares = Counter(labels[i] for i in pool)
    counts = Counter(labels[i] for i in indices)
    return all(abs(counts[name] - len(indices) * n / len(pool)) < 1 for name, n in shares.items())


@pytest.mark.parametrize("seed", range(5))
def test_stratified_order_keeps_every_prefix_proportional(seed):
    """Each prefix of the order holds every label within one of its share, and the order is a permutation."""
    rng = np.random.default_rng(100 + seed)
    labels = list(rng.choice(["AIMD", "Elastic", "Surface", "Vacancy", "Liquid"], size=int(rng.integers(7, 90)),
                             p=[0.4, 0.25, 0.05, 0.25, 0.05]))
    order = stratified_order(labels, np.random.default_rng(seed))
    assert sorted(order.tolist()) == list(range(len(labels)))
    for k in range(1, len(labels) + 1):
        assert _within_one_of_share(order[:k], labels), k


def test_stratified_order_is_random_within_a_label():
    """Different seeds give different members of a label first (not the pool order)."""
    labels = ["a"] * 30 + ["b"] * 10
    firsts = {tuple(stratified_order(labels, np.random.default_rng(seed))[:4]) for seed in range(6)}
    assert len(firsts) > 1


MLEARN_LIKE = ["AIMD-NVT"] * 90 + ["Vacancy"] * 72 + ["Elastic"] * 55 + ["Surface"] * 11


def test_stratified_splits_nested_disjoint_and_proportional():
    """With labels, validation and every subset are stratified, subsets nested and disjoint from validation."""
    sizes = [5, 10, 25, 50, ALL]
    for seed in range(3):
        split = make_splits(len(MLEARN_LIKE), sizes, n_validation=20, seed=seed, labels=MLEARN_LIKE)
        validation = split["validation"]
        assert _within_one_of_share(validation, MLEARN_LIKE)
        assert Counter(MLEARN_LIKE[i] for i in validation)["Surface"] == 1  # a random draw can miss it
        subsets = [split["train"][str(s)] for s in sizes]
        assert [len(s) for s in subsets] == [5, 10, 25, 50, 208]
        for small, large in zip(subsets, subsets[1:]):
            assert set(small) < set(large)
        assert not set(subsets[-1]) & set(validation)
        # the rest of the pool is re-stratified, so each subset keeps the shares of what validation left
        for subset in subsets[:-1]:
            assert _within_one_of_share(subset, MLEARN_LIKE, pool=subsets[-1])
    assert make_splits(228, sizes, 20, 1, labels=MLEARN_LIKE) == make_splits(228, sizes, 20, 1, labels=MLEARN_LIKE)
    assert make_splits(228, sizes, 20, 1, labels=MLEARN_LIKE) != make_splits(228, sizes, 20, 2, labels=MLEARN_LIKE)


def test_stratification_within_a_temperature_restriction():
    """Eligible frames only, stratified by their own shares; indices still refer to the whole pool."""
    labels = ["hot"] * 20 + ["cold"] * 20 + ["strained"] * 10
    eligible = list(range(20, 50))  # the 20 cold and 10 strained frames
    split = make_splits(50, [6, ALL], n_validation=3, seed=0, eligible=eligible, labels=labels)
    used = set(split["validation"]) | set(split["train"][ALL])
    assert used == set(eligible)
    assert Counter(labels[i] for i in split["train"]["6"]) == {"cold": 4, "strained": 2}
    assert Counter(labels[i] for i in split["validation"]) == {"cold": 2, "strained": 1}


def test_labels_must_match_the_pool():
    with pytest.raises(SplitError, match="3 stratification labels for 12 structures"):
        make_splits(12, [2], n_validation=3, seed=0, labels=["a", "b", "a"])


def _pool_with_groups(sw_pools, tmp_path, groups):
    frames = read(sw_pools["Si"], ":")
    for atoms, group in zip(frames, groups):
        if group is not None:
            atoms.info["group"] = group
    path = tmp_path / "pool.extxyz"
    write(path, frames, format="extxyz")
    return path


def test_write_splits_stratified_records_groups(sw_pools, tmp_path):
    """The JSON names the key and the group counts of validation and every subset."""
    pool = _pool_with_groups(sw_pools, tmp_path, ["bulk"] * 8 + ["surface"] * 4)
    out = tmp_path / "seed0.json"
    written = write_splits(pool, out, [3, ALL], n_validation=3, seed=0, stratify_by="group")
    assert json.loads(out.read_text()) == written
    assert written["stratify_by"] == "group"
    assert written["validation_groups"] == {"bulk": 2, "surface": 1}
    assert written["train_groups"] == {"3": {"bulk": 2, "surface": 1}, "all": {"bulk": 6, "surface": 3}}


def test_write_splits_missing_key_names_pool_key_and_frames(sw_pools, tmp_path, capsys):
    """A frame without the stratification key: clear error (file, key, frames), no JSON, exit 2 on the CLI."""
    pool = _pool_with_groups(sw_pools, tmp_path, ["bulk"] * 10 + [None, None])
    out = tmp_path / "splits" / "seed0.json"
    with pytest.raises(SplitError, match=r"pool.extxyz: 2 of 12 frames have no info\['group'\].*\[10, 11\]"):
        write_splits(pool, out, [3], n_validation=3, seed=0, stratify_by="group")
    assert not out.exists()
    code = cli(["--pool", str(pool), "--out", str(out), "--sizes", "3", "--n-validation", "3", "--seed", "0",
                "--stratify-by", "group"])
    assert code == 2 and not out.exists()
    assert "no info['group']" in capsys.readouterr().err


@pytest.mark.parametrize("labels", [None, MLEARN_LIKE], ids=["random", "stratified"])
def test_a_subset_does_not_depend_on_the_other_sizes(labels):
    """Adding a size to a study leaves every existing subset as it was (the workflow then trains only the new
    size: its training rules do not rerun when the split file gains a subset)."""
    eligible = list(range(0, 228, 2))  # a temperature-like restriction as well
    for restriction in (None, eligible):
        before = make_splits(228, [5, 25], 20, seed=3, labels=labels, eligible=restriction)
        after = make_splits(228, [5, 10, 25, 50], 20, seed=3, labels=labels, eligible=restriction)
        assert after["validation"] == before["validation"]
        assert {size: after["train"][size] for size in ("5", "25")} == before["train"]
