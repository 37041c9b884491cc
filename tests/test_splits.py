"""Learning-curve splits: nesting, determinism, a fixed disjoint validation set, clear errors, atomic output."""

from __future__ import annotations

import json

import pytest

from mlp_transfer.splits import ALL, SplitError, make_splits, parse_size, write_splits

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
