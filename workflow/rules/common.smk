import json

from snakemake.utils import validate

from mlp_transfer.config import check_config

validate(config, schema="../schemas/config.schema.yaml", set_default=True)
# Cross-references JSON Schema cannot express (pairs -> datasets -> elements, sizes vs pools).
check_config(config)

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


def datasets_of_kind(kind):
    """Regex alternation of dataset names of one kind; never matches when there is none."""
    names = [name for name, d in config["datasets"].items() if d["kind"] == kind]
    return "|".join(names) if names else "(?!x)x"


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_kind(wildcards):
    return dataset_config(wildcards)["kind"]


def used_elements(dataset):
    """Only elements that appear in a transfer pair are generated or imported."""
    return sorted({e for p in PAIRS if p["dataset"] == dataset for e in (p["source"], p["target"])})


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


def get_train_inputs(wildcards):
    inputs = {
        "pool": data_files(wildcards.dataset, wildcards.target)["train"],
        "splits": f"{RESULTS}/splits/{wildcards.dataset}/{wildcards.target}/seed{wildcards.seed}.json",
    }
    if wildcards.regime == "transfer":
        inputs["source_model"] = f"{RESULTS}/models/{wildcards.dataset}/source/{wildcards.source}/model.pt"
    return inputs


# Targets of `rule all`. Rule files of later stages append their own final outputs to this list.
FINAL_OUTPUTS = [
    f"{RESULTS}/tables/learning_curve.csv",
    f"{RESULTS}/tables/source_models.csv",
]


def get_final_outputs():
    return FINAL_OUTPUTS


def train_runtime(wildcards, attempt):
    """Minutes; a retried training job (e.g. killed at the time limit) asks for more each attempt."""
    return config["resources"]["train_runtime_min"] * attempt


def training_params():
    """Model and training settings as plain dicts (threads follow the rule's thread count)."""
    return {"model": dict(config["model"]), "training": dict(TRAINING)}
