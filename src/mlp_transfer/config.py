"""Configuration checks beyond JSON Schema: cross-references between pairs, datasets, elements and sizes.

The workflow validates the config against ``workflow/schemas/config.schema.yaml`` (types, ranges, unknown
keys) and then calls :func:`check_config`, so every config error stops planning with one message naming
the key at fault, before any job runs.
"""

from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def schema_default(*keys: str):
    """The schema's default of the config key at ``keys`` (e.g. ``"aggregation", "force_thresholds_mev_ang"``).

    Command-line stages run without a config use it, so they and the workflow share one default.
    """
    node = yaml.safe_load(SCHEMA_PATH.read_text())
    for key in keys:
        node = node["properties"][key]
    return node["default"]


class ConfigError(ValueError):
    """The configuration is inconsistent; the message names the key."""


def dataset_elements(dataset: dict) -> list[str]:
    elements = dataset["elements"]
    return list(elements) if isinstance(elements, dict) else list(elements)


def sw_pool_size(dataset: dict, max_temperature: float | None = None) -> int:
    """Training-pool size of a generated Stillinger-Weber dataset, known before generation; with
    ``max_temperature`` the frames a split may draw from (MD frames up to it; rattled and strained cells, which
    have no temperature, always: see mlp_transfer.splits)."""
    temperatures = dataset.get("temperatures", [300, 600, 900, 1200])
    if max_temperature is not None:
        temperatures = [t for t in temperatures if t <= max_temperature]
    per_t = dataset.get("frames_per_temperature", {"train": 30})["train"]
    return (len(temperatures) * per_t + dataset.get("rattle", {}).get("train", 0)
            + dataset.get("strain", {}).get("train", 0))


def _check_sizes(what: str, sizes, n_validation: int, pool: int) -> None:
    numeric = [s for s in sizes if s != "all"]
    if numeric and max(numeric) + n_validation > pool:
        raise ConfigError(f"{what}: training size {max(numeric)} plus {n_validation} validation structures "
                          f"exceeds the {pool} structures of the training pool it may draw from")
    if pool - n_validation < 1:
        raise ConfigError(f"{what}: the training pool of {pool} structures it may draw from leaves nothing after "
                          f"{n_validation} validation structures")


# Model settings that belong to one architecture only (also used by the search's model overrides). Kept here,
# not in mlp_transfer.models, so that loading a config does not import torch.
ARCHITECTURE_ONLY_KEYS = {"lmax": "so3net", "norm_epsilon": "painn"}


def check_model_section(model: dict, where: str = "model") -> None:
    """``lmax`` (the highest angular momentum of the features) belongs to so3net, which cannot do without it;
    ``norm_epsilon`` belongs to painn."""
    architecture = model.get("architecture", "painn")
    if architecture == "so3net" and "lmax" not in model:
        raise ConfigError(f"{where}.lmax: architecture so3net needs lmax (the highest angular momentum of its "
                          f"features, e.g. 3: the first order at which a tetrahedral environment is not blind)")
    for key, owner in ARCHITECTURE_ONLY_KEYS.items():
        if architecture != owner and key in model:
            raise ConfigError(f"{where}.{key}: only architecture {owner} has {key}; {architecture} does not use it")


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` on inconsistencies the schema cannot express."""
    from mlp_transfer.reference import SW_PARAMETERS

    check_model_section(config.get("model", {}))

    datasets = config["datasets"]
    for name, dataset in datasets.items():
        if dataset["kind"] == "stillinger_weber":
            missing = [e for e in dataset["elements"] if e not in SW_PARAMETERS]
            if missing:
                raise ConfigError(f"datasets.{name}.elements: no Stillinger-Weber parameters for {missing}; "
                                  f"available: {sorted(SW_PARAMETERS)}")
    lc = config["learning_curve"]
    source_cfg = config.get("source_training", {})
    for i, pair in enumerate(config["pairs"]):
        where = f"pairs[{i}]"
        if pair["dataset"] not in datasets:
            raise ConfigError(f"{where}.dataset: unknown dataset {pair['dataset']!r}; defined: {sorted(datasets)}")
        if pair["source"] == pair["target"]:
            raise ConfigError(f"{where}: source and target are both {pair['source']}")
        dataset = datasets[pair["dataset"]]
        for role in ("source", "target"):
            if pair[role] not in dataset_elements(dataset):
                raise ConfigError(f"{where}.{role}: element {pair[role]} is not in dataset {pair['dataset']!r} "
                                  f"(elements: {dataset_elements(dataset)})")
        if dataset["kind"] == "stillinger_weber":
            # the learning curve draws only from the frames up to its temperature limit; the source from all
            eligible = sw_pool_size(dataset, lc.get("train_max_temperature"))
            _check_sizes(f"learning_curve.sizes for {where}", lc["sizes"], lc.get("n_validation", 10), eligible)
            _check_sizes(f"source_training.n_train for {where}", [source_cfg.get("n_train", "all")],
                         source_cfg.get("n_validation", 20), sw_pool_size(dataset))
    pairs = [(p["dataset"], p["source"], p["target"]) for p in config["pairs"]]
    if len(set(pairs)) != len(pairs):
        raise ConfigError("pairs: the same (dataset, source, target) is listed twice")
    for name, elements in config.get("aggregation", {}).get("published_errors", {}).items():
        if name not in datasets:
            raise ConfigError(f"aggregation.published_errors.{name}: unknown dataset; defined: {sorted(datasets)}")
        unknown = sorted(set(elements) - set(dataset_elements(datasets[name])))
        if unknown:
            raise ConfigError(f"aggregation.published_errors.{name}: elements {unknown} are not in the dataset "
                              f"(elements: {dataset_elements(datasets[name])})")
    if config.get("hyperparameter_search"):
        from mlp_transfer.hpsearch import check_search

        schema = yaml.safe_load(SCHEMA_PATH.read_text())
        training_keys = set(schema["properties"]["training"]["properties"])
        try:
            check_search(config["hyperparameter_search"], lc["regimes"], lc["sizes"], training_keys,
                         config["model"], schema["properties"]["model"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


def load_config(path: str | Path) -> dict:
    """Read a workflow config and validate it like the workflow does (schema with defaults, then checks)."""
    path = Path(path)
    try:
        # safe_load builds plain data only (no Python tags): a config can never construct objects or run code
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys (datasets, pairs, ...), got "
                          f"{type(config).__name__}")
    return validate_config(config, str(path))


def validate_config(config: dict, source: str) -> dict:
    """Schema validation (filling defaults) and cross-reference checks; errors name ``source`` and the key.

    Used by the workflow (``common.smk``) and by :func:`load_config`, so both report identical messages.
    """
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except Exception as exc:  # snakemake wraps jsonschema errors in WorkflowError
        raise ConfigError(f"{source}: {_schema_problem(exc)}") from exc
    try:
        check_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return config


def _schema_problem(exc: Exception) -> str:
    """``key.path: problem`` from a (wrapped) jsonschema ValidationError; the full text otherwise.

    A ``oneOf`` failure (e.g. a size that is neither a positive integer nor "all") adds the schema's
    description of what is expected.
    """
    import jsonschema

    # WorkflowError keeps only the text; the ValidationError is the exception it was raised while handling
    candidates = [exc, exc.__cause__, exc.__context__, *getattr(exc, "args", ())]
    error = next((a for a in candidates if isinstance(a, jsonschema.ValidationError)), None)
    if error is None:
        return str(exc)
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    expected = error.schema.get("description") if error.validator == "oneOf" else None
    return f"{key}: {error.message}" + (f" (expected: {expected})" if expected else "")


def sw_generation_kwargs(dataset: dict) -> dict:
    """Keyword arguments of :func:`mlp_transfer.data.generate.generate_sw_dataset` from a dataset entry."""
    md = dataset.get("md", {})
    frames = dataset.get("frames_per_temperature", {"train": 30, "test": 10})
    rattle = {"train": 0, "test": 0, "stdev": 0.1, **dataset.get("rattle", {})}
    strain = {"train": 0, "test": 0, "max_strain": 0.03, "stdev": 0.03, **dataset.get("strain", {})}
    kwargs = {
        "supercell": dataset.get("supercell", 2),
        "temperatures": dataset.get("temperatures", [300, 600, 900, 1200]),
        "n_train_per_temperature": frames["train"],
        "n_test_per_temperature": frames["test"],
        "rattle": {"n_train": rattle["train"], "n_test": rattle["test"], "stdev": rattle["stdev"]},
        "strain": {"n_train": strain["train"], "n_test": strain["test"], "max_strain": strain["max_strain"],
                   "stdev": strain["stdev"]},
        "seed": dataset.get("seed", 0),
    }
    kwargs.update({key: md[key] for key in ("timestep_fs", "friction", "equilibration_steps", "sample_interval")
                   if key in md})
    return kwargs
