import json
import os

from mlp_transfer.config import validate_config

# JSON Schema (workflow/schemas/config.schema.yaml, defaults filled in), then the cross-references it
# cannot express (pairs -> datasets -> elements, sizes vs pools); errors name the config file and key.
validate_config(config, source=", ".join(map(str, workflow.configfiles)) or "config")

RESULTS = "results"
PAIRS = config["pairs"]
LC = config["learning_curve"]
SIZES = [str(size) for size in LC["sizes"]]
SEEDS = [str(seed) for seed in LC["seeds"]]
REGIMES = LC["regimes"]
TRAINING = config["training"]
USE_GPU = 1 if TRAINING["device"] == "cuda" else 0


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    element="[A-Z][a-z]?",
    source="[A-Z][a-z]?",
    target="[A-Z][a-z]?",
    regime="|".join(REGIMES),
    size="|".join(SIZES),
    seed=r"\d+",
    candidate=r"\d+",
    model_tag=r"m[0-9a-f]{10}",


def datasets_of_kind(kind):
    """Regex alternation of dataset names of one kind; never matches when there is none."""
    names = [name for name, d in config["datasets"].items() if d["kind"] == kind]
    return "|".join(names) if names else "(?!x)x"


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


# Data-rule params hold only what makes one element's files (not the dataset's element list or other elements'
# paths), so adding an element does not regenerate, and rerun everything after, the others.
def sw_generation_params(wildcards):
    from mlp_transfer.config import sw_generation_kwargs

    return sw_generation_kwargs(dataset_config(wildcards))


def extxyz_label_keys(wildcards):
    dataset = dataset_config(wildcards)
    return {"energy_key": dataset.get("energy_key", "energy"), "forces_key": dataset.get("forces_key", "forces")}


def data_files(dataset, element):
    base = f"{RESULTS}/data/{dataset}/{element}"
    return {"train": f"{base}/train.extxyz", "test": f"{base}/test.extxyz"}


def get_extxyz_inputs(wildcards):
    return config["datasets"][wildcards.dataset]["elements"][wildcards.element]


def get_mlearn_inputs(wildcards):
    folder = config["datasets"][wildcards.dataset]["path"]
    return {kind: f"{folder}/{wildcards.element}/{name}.json" for kind, name in
            (("train", "training"), ("test", "test"))}


def run_dir(dataset, source, target, regime, size, seed):
    return f"{RESULTS}/models/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}"


def target_runs():
    """Every (pair, regime, size, seed) of the learning-curve grid."""
    for pair in PAIRS:
        for regime in REGIMES:
            for size in SIZES:
                for seed in SEEDS:
                    yield dict(pair, regime=regime, size=size, seed=seed)


def get_eval_csvs(wildcards=None):
    return [
        f"{RESULTS}/eval/{r['dataset']}/{r['source']}-{r['target']}/{r['regime']}/n{r['size']}/seed{r['seed']}.csv"
        for r in target_runs()
    ]


def get_histories(wildcards=None):
    return [f"{run_dir(r['dataset'], r['source'], r['target'], r['regime'], r['size'], r['seed'])}/history.csv"
            for r in target_runs()]


def get_source_evals(wildcards=None):
    return sorted({f"{RESULTS}/eval_source/{p['dataset']}/{p['source']}.csv" for p in PAIRS})


# Seed committees (mean prediction of a cell's seeds) need at least two seeds.
COMMITTEE = config["aggregation"]["committee"] and len(SEEDS) >= 2


def committee_member_files(wildcards, name):
    """``name`` (model.pt, summary.json) of every seed's run of one (pair, regime, size) cell."""
    w = wildcards
    return [os.path.join(run_dir(w.dataset, w.source, w.target, w.regime, w.size, seed), name) for seed in SEEDS]


def get_committee_inputs(wildcards):
    return {"models": committee_member_files(wildcards, "model.pt"),
            "summaries": committee_member_files(wildcards, "summary.json"),
            "test": data_files(wildcards.dataset, wildcards.target)["test"]}


def get_committee_csvs(wildcards=None):
    cells = {(r["dataset"], r["source"], r["target"], r["regime"], r["size"]) for r in target_runs()}
    return [f"{RESULTS}/eval_committee/{d}/{s}-{t}/{regime}/n{size}.csv" for d, s, t, regime, size in sorted(cells)]


def train_inputs(wildcards, seed, size):
    """Pool, subset file of ``seed`` and ``size`` and (transfer only) the source model of one target
    training run. A run reads its own size's subset file, not the seed's overview of all sizes: adding a size to
    the study rewrites the overview but no existing subset (tests/test_splits.py), so nothing finished reruns."""
    inputs = {
        "pool": data_files(wildcards.dataset, wildcards.target)["train"],
        "splits": subset_file(wildcards.dataset, wildcards.target, seed, size),
    }
    if wildcards.regime == "transfer":
        inputs["source_model"] = f"{RESULTS}/models/{wildcards.dataset}/source/{wildcards.source}/model.pt"
    return inputs


def subset_file(dataset, element, seed, size):
    return f"{RESULTS}/splits/{dataset}/{element}/seed{seed}/n{size}.json"


def get_train_inputs(wildcards):
    return train_inputs(wildcards, wildcards.seed, wildcards.size)


# Targets of `rule all`. Rule files of later stages append their own final outputs to this list.
FINAL_OUTPUTS = [
    f"{RESULTS}/tables/learning_curve.csv",
    f"{RESULTS}/tables/source_models.csv",
    # each seed's split overview: validation set and every subset with its group counts (the runs read their
    # own size's file)
    *sorted({f"{RESULTS}/splits/{p['dataset']}/{p['target']}/seed{seed}.json" for p in PAIRS for seed in SEEDS}),
]


def get_final_outputs():
    return FINAL_OUTPUTS


def train_runtime(wildcards, attempt):
    """Minutes; a retried training job (e.g. killed at the time limit) asks for more each attempt."""
    return config["resources"]["train_runtime_min"] * attempt


def md_runtime(wildcards, attempt):
    """Minutes of an MD job; more on each retry (MD restarts from its first step)."""
    return MD_CFG["resources"]["runtime_min"] * attempt


def analysis_runtime(wildcards, attempt):
    """Minutes of an evaluation, properties or MD-structure job; more on each retry, as for training."""
    return config["resources"]["analysis_runtime_min"] * attempt


def target_training_params(wildcards):
    """Model and training settings of one regime as plain dicts, without the keys that regime does not use
    (threads follow the rule's thread count)."""
    from mlp_transfer.train import regime_training_config

    return {"model": dict(config["model"]), "training": regime_training_config(TRAINING, wildcards.regime)}


def source_training_params(model=None):
    """Settings of pre-training (``model`` replaces the config's: a search candidate's own source model)."""
    from mlp_transfer.train import source_training_settings

    return source_training_settings(config, model)


# ---- out-of-target properties (workflow/rules/properties.smk) ----
PROPERTIES_CFG = config["properties"]


def property_names():
    """Scalar properties of the enabled groups (one table row and one plot each)."""
    from mlp_transfer.properties import PROPERTIES

    groups = {"eos", *PROPERTIES_CFG["groups"]}
    return [name for name, (group, _, _) in PROPERTIES.items() if group in groups]


def property_settings():
    """Computation settings as plain dicts (no reference values)."""
    return {key: value for key, value in PROPERTIES_CFG.items() if key not in ("enabled", "reference_values")}


def property_reference_values(wildcards):
    values = PROPERTIES_CFG["reference_values"].get(wildcards.dataset, {})
    return dict(values.get(wildcards.element, {}))


def property_run_path(run, suffix):
    return (f"{RESULTS}/properties/{run['dataset']}/{run['source']}-{run['target']}/{run['regime']}/"
            f"n{run['size']}/seed{run['seed']}.{suffix}")


def get_property_tables(wildcards=None):
    return [property_run_path(r, "csv") for r in target_runs()]


def get_property_spectra(wildcards=None):
    return [property_run_path(r, "json") for r in target_runs()]


def get_property_references(wildcards=None):
    return sorted({f"{RESULTS}/properties/{p['dataset']}/reference/{p['target']}.json" for p in PAIRS})


def property_plots():
    return {name: f"{RESULTS}/plots/properties_{name}.png" for name in property_names()}


def property_band_plot():
    return f"{RESULTS}/plots/properties_phonon_bands.png" if "phonons" in PROPERTIES_CFG["groups"] else None


def property_plot_files():
    return [*property_plots().values(), *([property_band_plot()] if property_band_plot() else [])]


def property_outputs():
    return [f"{RESULTS}/tables/properties.csv", f"{RESULTS}/tables/properties_summary.csv",
            f"{RESULTS}/tables/properties_summary.md", *property_plot_files()]


# ---- molecular dynamics: stability and structure (workflow/rules/md.smk) ----
MD_CFG = config["md"]
MD_GPU = 1 if MD_CFG["device"] == "cuda" else 0
MD_TEMPERATURE_LABELS = [f"T{float(t):g}K" for t in MD_CFG["temperatures"]]


def md_run_dir(run):
    return (f"{RESULTS}/md/{run['dataset']}/{run['source']}-{run['target']}/{run['regime']}/"
            f"n{run['size']}/seed{run['seed']}")


def md_reference_dirs():
    """One reference MD per (dataset, target element) of a Stillinger-Weber dataset."""
    if not MD_CFG["reference"]:
        return []
    return sorted({f"{RESULTS}/md/{p['dataset']}/reference/{p['target']}" for p in PAIRS
                   if config["datasets"][p["dataset"]]["kind"] == "stillinger_weber"})


def md_run_dirs():
    return [md_run_dir(r) for r in target_runs()] + md_reference_dirs()


def get_md_stability_csvs(wildcards=None):
    return [f"{d}/stability.csv" for d in md_run_dirs()]


def get_md_structure_csvs(wildcards=None):
    return [f"{d}/structure.csv" for d in md_run_dirs()]


def md_plot_files():
    stems = sorted({f"{p['dataset']}_{p['source']}-{p['target']}" for p in PAIRS})
    return [f"{RESULTS}/plots/md_{kind}_{stem}.png" for stem in stems for kind in ("stability", "structure")]


def md_outputs():
    tables = [f"{RESULTS}/tables/md_{name}" for name in
              ("stability_runs.csv", "stability.csv", "stability.md", "structure_runs.csv", "structure.csv",
               "structure.md")]
    return tables + md_plot_files()


# md keys that do not change a trajectory: which jobs exist, their resources, the analysis after them; the
# thread count comes from the job itself (--set-threads, the cluster's cores)
MD_NOT_SETTINGS = ("enabled", "resources", "structure", "reference", "threads")


def md_settings(element):
    """The MD settings of one element's jobs as a plain dict (a params value: a change reruns exactly the runs
    it changes, so only this element's starting lattice constant is in it)."""
    settings = {key: value for key, value in MD_CFG.items() if key not in MD_NOT_SETTINGS}
    settings["lattice_constants"] = {e: a for e, a in MD_CFG["lattice_constants"].items() if e == element}
    return settings


def md_model_settings(wildcards):
    return md_settings(wildcards.target)


def md_reference_settings(wildcards):
    return md_settings(wildcards.element)


# ---- hyper-parameter search on validation data (workflow/rules/hpsearch.smk) ----
SEARCH = config.get("hyperparameter_search")


def search_run_dir(run, candidate):
    return f"{RESULTS}/hpsearch/{run['dataset']}/{run['source']}-{run['target']}/{run['regime']}/c{candidate}"


def get_search_summaries(wildcards=None):
    return [f"{search_run_dir(dict(pair, regime=regime), i)}/summary.json"
            for pair in PAIRS for regime in REGIMES for i in range(len(SEARCH["candidates"][regime]))]


def search_candidate(wildcards):
    return SEARCH["candidates"][wildcards.regime][int(wildcards.candidate)]


def get_search_train_inputs(wildcards):
    """As a learning-curve run's inputs; a transfer candidate with its own model starts from a source model
    pre-trained with that model."""
    from mlp_transfer.hpsearch import model_tag, own_source_model

    inputs = train_inputs(wildcards, SEARCH["seed"], SEARCH["size"])
    model = own_source_model(config["model"], search_candidate(wildcards))
    if wildcards.regime == "transfer" and model is not None:
        inputs["source_model"] = (f"{RESULTS}/hpsearch/{wildcards.dataset}/source/{wildcards.source}/"
                                  f"{model_tag(model)}/model.pt")
    return inputs


def search_overrides(wildcards):
    return dict(search_candidate(wildcards))


def search_training_params(wildcards):
    from mlp_transfer.hpsearch import candidate_run_settings

    return candidate_run_settings(config, wildcards.regime, search_candidate(wildcards))


def search_source_params(wildcards):
    """Pre-training settings of a source model the search trains itself (rule hpsearch_source)."""
    from mlp_transfer.hpsearch import search_source_models

    return source_training_params(search_source_models(SEARCH, config["model"])[wildcards.model_tag])
