"""Config loading: schema validation with defaults, cross-reference checks naming the key, SW generation kwargs."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import pytest
import yaml

from mlp_transfer.config import ConfigError, check_config, load_config, sw_generation_kwargs, sw_pool_size
from mlp_transfer.data.generate import generate_sw_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
DEFAULT = ROOT / "config" / "config.yaml"


@pytest.fixture
def tiny() -> dict:
    """The raw (un-defaulted) tiny config, to be modified by each test."""
    return yaml.safe_load(TINY.read_text())


@pytest.fixture
def load(tmp_path):
    """Write a config dict to YAML and load it like the workflow does."""

    def _load(config: dict) -> dict:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return load_config(path)

    return _load


def test_tiny_config_loads_with_defaults():
    """The tiny test config is valid; schema defaults are filled in (also inside nested objects)."""
    config = load_config(TINY)
    assert config["model"]["n_atom_basis"] == 8
    assert config["training"]["lr"] == 0.001 and config["training"]["embedding_init"] == "copy"
    assert config["training"]["lr_schedule"] == {"factor": 0.5, "patience": 4, "min_lr": 1e-5}
    assert config["resources"]["train_mem_mb"] == 4000
    assert config["datasets"]["sw"]["strain"]["stdev"] == 0.03
    assert sw_pool_size(config["datasets"]["sw"]) == 2 * 6 + 2 + 0


def test_default_config_loads():
    """The shipped default config is valid and its Si -> Ge pair refers to a 60-structure SW pool."""
    config = load_config(DEFAULT)
    assert config["pairs"] == [{"dataset": "sw", "source": "Si", "target": "Ge"}]
    assert sw_pool_size(config["datasets"]["sw"]) == 4 * 12 + 6 + 6


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_every_shipped_config_is_valid(name):
    """Every study config in config/ passes the schema and the cross-reference checks."""
    config = load_config(ROOT / "config" / name)
    assert config["pairs"] and config["learning_curve"]["sizes"]


def test_missing_or_unparsable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(bad)


# ------------------------------------------------------------------------------------------- schema errors

def test_unknown_top_level_key(tiny, load):
    """A typo at top level is an error naming the key, not a silently ignored setting."""
    tiny["learning_curv"] = {"sizes": [2]}
    with pytest.raises(ConfigError, match="learning_curv"):
        load(tiny)


@pytest.mark.parametrize("sizes", ["five", ["five"], [2, "five"]])
def test_sizes_of_wrong_type(tiny, load, sizes):
    tiny["learning_curve"]["sizes"] = sizes
    with pytest.raises(ConfigError, match="sizes"):
        load(tiny)


@pytest.mark.parametrize("size", [0, -2])
def test_non_positive_size(tiny, load, size):
    tiny["learning_curve"]["sizes"] = [size, 2]
    with pytest.raises(ConfigError, match="sizes"):
        load(tiny)


def test_unknown_nested_training_key(tiny, load):
    tiny["training"]["early_stopping"]["patiance"] = 4
    with pytest.raises(ConfigError, match="patiance"):
        load(tiny)


@pytest.mark.parametrize("key, bad", [("gradient_clip_norm", 0), ("gradient_clip_norm", -1.0),
                                      ("gradient_clip_norm", "large"), ("force_huber_delta", 0),
                                      ("force_huber_delta", -0.05), ("force_huber_delta", "small")])
def test_bad_positive_training_setting(tiny, load, key, bad):
    tiny["training"][key] = bad
    with pytest.raises(ConfigError, match=key):
        load(tiny)


@pytest.mark.parametrize("key, value", [("gradient_clip_norm", 5.0), ("warmup_steps", 100),
                                        ("force_huber_delta", 0.05), ("max_wall_time_s", 600)])
def test_optional_training_setting_has_no_default(tiny, load, key, value):
    """Absent means off (no clipping, no warm-up, the squared force error, no cap) and stays absent, so the run
    fingerprints of configs without it do not change; given, it is kept."""
    assert key not in load(tiny)["training"]
    tiny.setdefault("training", {})[key] = value
    assert load(tiny)["training"][key] == value


@pytest.mark.parametrize("where", ["training", "stage_two"])
@pytest.mark.parametrize("steps", [-1, 2.5, "long"])
def test_bad_warmup_steps(tiny, load, where, steps):
    if where == "training":
        tiny["training"]["warmup_steps"] = steps
    else:
        tiny["training"]["stage_two"] = {"loss_weights": {"energy": 100.0}, "lr": 1e-4, "warmup_steps": steps}
    with pytest.raises(ConfigError, match="warmup_steps"):
        load(tiny)


@pytest.mark.parametrize("where", ["learning_curve", "source_training"])
def test_stratify_by_defaults_to_none_and_takes_a_key(tiny, load, where):
    assert load(tiny)[where]["stratify_by"] is None
    tiny.setdefault(where, {})["stratify_by"] = "source"
    assert load(tiny)[where]["stratify_by"] == "source"


@pytest.mark.parametrize("where", ["learning_curve", "source_training"])
@pytest.mark.parametrize("bad", ["", 3, ["group"]])
def test_bad_stratify_by(tiny, load, where, bad):
    tiny.setdefault(where, {})["stratify_by"] = bad
    with pytest.raises(ConfigError, match="stratify_by"):
        load(tiny)


def test_so3net_needs_lmax(tiny, load):
    tiny["model"]["architecture"] = "so3net"
    with pytest.raises(ConfigError, match="model.lmax: architecture so3net needs lmax"):
        load(tiny)
    tiny["model"]["lmax"] = 3
    assert load(tiny)["model"]["lmax"] == 3


def test_norm_epsilon_belongs_to_painn(tiny, load):
    tiny["model"]["norm_epsilon"] = 0.01
    assert load(tiny)["model"]["norm_epsilon"] == 0.01
    tiny["model"].update(architecture="schnet")
    with pytest.raises(ConfigError, match="model.norm_epsilon: only architecture painn has norm_epsilon"):
        load(tiny)
    tiny["model"].update(architecture="painn", norm_epsilon=0)
    with pytest.raises(ConfigError, match="norm_epsilon"):
        load(tiny)


@pytest.mark.parametrize("lmax, problem", [(2, "only architecture so3net has lmax"), (0, "lmax"), (2.5, "lmax")])
def test_lmax_outside_so3net_or_out_of_range(tiny, load, lmax, problem):
    tiny["model"]["lmax"] = lmax
    if lmax != 2:
        tiny["model"]["architecture"] = "so3net"
    with pytest.raises(ConfigError, match=problem):
        load(tiny)


def test_painn_model_section_gets_no_lmax(tiny, load):
    """No default: PaiNN and SchNet model sections, and so their run fingerprints, stay as they were."""
    assert "lmax" not in load(tiny)["model"]


# -------------------------------------------------------------------------------------- cross-references

def test_pair_with_unknown_dataset(tiny, load):
    tiny["pairs"][0]["dataset"] = "mlearn"
    with pytest.raises(ConfigError, match=r"pairs\[0\]\.dataset.*'mlearn'"):
        load(tiny)


@pytest.mark.parametrize("role", ["source", "target"])
def test_pair_element_not_in_dataset(tiny, load, role):
    tiny["pairs"][0][role] = "C"
    with pytest.raises(ConfigError, match=rf"pairs\[0\]\.{role}: element C"):
        load(tiny)


def test_element_without_sw_parameters(tiny, load):
    """Cu has no Stillinger-Weber parameters, so a stillinger_weber dataset cannot list it."""
    tiny["datasets"]["sw"]["elements"] = ["Si", "Ge", "Cu"]
    with pytest.raises(ConfigError, match=r"datasets\.sw\.elements.*Cu"):
        load(tiny)


def test_size_larger_than_sw_pool(tiny, load):
    """Pool of 14 with 3 validation structures: size 11 fits exactly, size 12 does not."""
    tiny["learning_curve"]["sizes"] = [2, 11]
    load(copy.deepcopy(tiny))
    tiny["learning_curve"]["sizes"] = [2, 12]
    with pytest.raises(ConfigError, match=r"learning_curve\.sizes.*12.*14"):
        load(tiny)


def test_temperature_limit_counts_only_the_frames_a_split_may_draw(tiny, load):
    """With train_max_temperature 300 the learning curve draws from 6 MD frames at 300 K plus 2 rattled cells
    (8; of 14): size 5 fits beside 3 validation structures, size 6 does not, and the source (all 14) is
    unaffected."""
    tiny["learning_curve"]["train_max_temperature"] = 300
    tiny["learning_curve"]["sizes"] = [2, 5]
    load(copy.deepcopy(tiny))
    tiny["learning_curve"]["sizes"] = [2, 6]
    with pytest.raises(ConfigError, match=r"learning_curve\.sizes.*6 plus 3 .* 8 structures"):
        load(tiny)


def test_validation_counted_against_pool(tiny, load):
    """A larger validation set makes a previously valid size too large."""
    tiny["learning_curve"]["sizes"] = [4]
    tiny["learning_curve"]["n_validation"] = 11
    with pytest.raises(ConfigError, match="learning_curve.sizes"):
        load(tiny)


def test_source_n_train_larger_than_pool(tiny, load):
    tiny["source_training"]["n_train"] = 12
    with pytest.raises(ConfigError, match=r"source_training\.n_train"):
        load(tiny)


def test_source_equals_target(tiny, load):
    tiny["pairs"][0]["target"] = "Si"
    with pytest.raises(ConfigError, match=r"pairs\[0\].*Si"):
        load(tiny)


def test_duplicate_pair(tiny, load):
    tiny["pairs"].append(dict(tiny["pairs"][0]))
    with pytest.raises(ConfigError, match="pairs"):
        load(tiny)


def test_check_config_on_other_dataset_kinds():
    """Element checks also apply to mlearn and extxyz datasets (the latter list elements as a mapping);
    no SW-parameter or pool-size check applies to them."""
    config = {
        "datasets": {"dft": {"kind": "mlearn", "path": "x", "elements": ["Cu", "Ni"]},
                     "own": {"kind": "extxyz", "elements": {"Cu": {"train": "a", "test": "b"},
                                                            "Ni": {"train": "c", "test": "d"}}}},
        "pairs": [{"dataset": "dft", "source": "Cu", "target": "Ni"},
                  {"dataset": "own", "source": "Ni", "target": "Cu"}],
        "learning_curve": {"sizes": [1000], "seeds": [0]},
    }
    check_config(config)
    config["pairs"][1]["target"] = "Mo"
    with pytest.raises(ConfigError, match=r"pairs\[1\]\.target"):
        check_config(config)


# ------------------------------------------------------------------------------------ generation kwargs

def test_sw_generation_kwargs_from_tiny_config():
    """train/test counts map to n_train/n_test (per temperature, rattle and strain); md keys pass through."""
    dataset = load_config(TINY)["datasets"]["sw"]
    kwargs = sw_generation_kwargs(dataset)
    assert kwargs == {
        "supercell": 1, "temperatures": [300, 900],
        "n_train_per_temperature": 6, "n_test_per_temperature": 2,
        "rattle": {"n_train": 2, "n_test": 2, "stdev": 0.1},
        "strain": {"n_train": 0, "n_test": 0, "max_strain": 0.03, "stdev": 0.03},
        "seed": 0, "timestep_fs": 2.0, "friction": 0.02, "equilibration_steps": 20, "sample_interval": 5,
    }
    # Every key is a keyword of the generator.
    inspect.signature(generate_sw_dataset).bind("Si", "train.xyz", "test.xyz", **kwargs)


def test_sw_generation_kwargs_defaults():
    """A minimal dataset entry gives the generator's documented defaults and no md overrides."""
    kwargs = sw_generation_kwargs({"kind": "stillinger_weber", "elements": ["Si"]})
    assert kwargs["supercell"] == 2 and kwargs["temperatures"] == [300, 600, 900, 1200]
    assert (kwargs["n_train_per_temperature"], kwargs["n_test_per_temperature"]) == (30, 10)
    assert kwargs["rattle"]["n_train"] == kwargs["strain"]["n_test"] == 0
    assert not {"timestep_fs", "friction", "equilibration_steps", "sample_interval"} & set(kwargs)


def test_sw_generation_kwargs_rattle_without_counts(tiny, load):
    """A schema-valid rattle entry giving only stdev should mean no rattled frames, as in sw_pool_size."""
    tiny["datasets"]["sw"]["rattle"] = {"stdev": 0.2}
    dataset = load(tiny)["datasets"]["sw"]
    assert sw_pool_size(dataset) == 2 * 6
    kwargs = sw_generation_kwargs(dataset)
    assert kwargs["rattle"] == {"n_train": 0, "n_test": 0, "stdev": 0.2}


@pytest.mark.parametrize("bad", [0, -5, "long"])
def test_invalid_max_wall_time(tiny, load, bad):
    tiny.setdefault("training", {})["max_wall_time_s"] = bad
    with pytest.raises(ConfigError, match="max_wall_time_s"):
        load(tiny)


def test_stage_two_is_optional_and_validated(tiny, load):
    """Absent adds no key (existing run fingerprints stay); present, it needs loss weights and a learning rate."""
    assert "stage_two" not in load(tiny)["training"]
    stage_two = {"loss_weights": {"energy": 100.0}, "lr": 1e-4}
    tiny.setdefault("training", {})["stage_two"] = stage_two
    assert load(tiny)["training"]["stage_two"] == stage_two


@pytest.mark.parametrize("bad", [{"loss_weights": {"energy": 100.0}}, {"lr": 1e-4, "loss_weights": {}},
                                 {"lr": 0, "loss_weights": {"energy": 1.0}},
                                 {"lr": 1e-4, "loss_weights": {"energies": 1.0}},
                                 {"lr": 1e-4, "loss_weights": {"energy": 1.0}, "patience": 3}])
def test_invalid_stage_two(tiny, load, bad):
    tiny.setdefault("training", {})["stage_two"] = bad
    with pytest.raises(ConfigError, match="stage_two"):
        load(tiny)
