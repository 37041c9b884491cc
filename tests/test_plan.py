"""`mlp-transfer plan`: what a study would submit to SLURM, and which of its jobs would ask for GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlearn_data import needs_mlearn, shipped_config_with_mlearn
from mlp_transfer.plan import local_rules, parse_dry_run, plan

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm"

DRY_RUN = """\
Building DAG of jobs...
Job stats:
job             count
------------  -------
all                 1
train_target        2
total               3

[Sun Dec  6 18:00:00 2026]
rule train_target:
    input: results/splits/x.json
    output: results/models/a/model.pt
    jobid: 1
    wildcards: regime=transfer
    resources: mem_mb=16000, mem_mib=15259, disk_mb=1000, tmpdir=<TBD>, runtime=240, gpu=1, cpus_per_task=4

rule train_target:
    output: results/models/b/model.pt
    resources: mem_mb=16000, runtime=120, gpu=0

localrule all:
    input: results/models/a/model.pt
    resources: tmpdir=<TBD>
Job stats:
job             count
"""


def test_parse_dry_run_counts_jobs_gpus_and_time_limits():
    rules = parse_dry_run(DRY_RUN, local={"all"})
    train = rules["train_target"]
    assert (train.jobs, train.gpu_jobs, train.gpus) == (2, 1, 1)
    assert train.runtime_min == 360 and train.gpu_runtime_min == 240 and not train.local
    assert rules["all"].jobs == 1 and rules["all"].local
    # the "Job stats" table is not mistaken for jobs
    assert set(rules) == {"train_target", "all"}


def test_local_rules_of_the_workflow():
    """Rules without anything to execute or marked localrule run on the submitting node; training does not."""
    local = local_rules(SNAKEFILE)
    # the last three are defined inside `if` blocks (optional stages)
    assert {"all", "aggregate", "hpsearch_table", "committee_table", "published_comparison"} <= local
    assert not {"train_source", "train_target", "hpsearch_train", "evaluate_target"} & local


def _study_config(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(shipped_config_with_mlearn(name)))
    return str(path)


@needs_mlearn
def test_gpu_study_sends_every_training_and_nothing_else_to_gpus(tmp_path):
    """config/mlearn_so3net.yaml (training.device cuda) through the SLURM profile: the source, the 8 search
    candidates and the 36 learning-curve runs ask for one GPU each, for the config's time limit; evaluation and
    properties run on CPUs. The CPU study config/mlearn.yaml asks for no GPU at all."""
    configfile = _study_config(tmp_path, "mlearn_so3net.yaml")
    config = shipped_config_with_mlearn("mlearn_so3net.yaml")
    lc, search = config["learning_curve"], config["hyperparameter_search"]
    n_runs = len(lc["sizes"]) * len(lc["seeds"]) * len(lc["regimes"])
    n_candidates = sum(len(c) for c in search["candidates"].values())

    gpu = plan(configfile, str(PROFILE), str(tmp_path / "gpu"), SNAKEFILE)
    expected_gpu_jobs = {"train_source": 1, "hpsearch_train": n_candidates, "train_target": n_runs}
    assert {name: r.gpu_jobs for name, r in gpu.rules.items() if r.gpu_jobs} == expected_gpu_jobs
    for name, count in expected_gpu_jobs.items():
        assert gpu.rules[name].jobs == count and not gpu.rules[name].local
    limit_h = config["resources"]["train_runtime_min"] / 60
    assert gpu.gpu_jobs == 1 + n_candidates + n_runs
    assert gpu.gpu_hours == pytest.approx(gpu.gpu_jobs * limit_h)
    assert gpu.rules["evaluate_target"].jobs == n_runs and gpu.rules["evaluate_target"].gpu_jobs == 0
    # the data jobs take the config's data time limit (imports as well as generation)
    import_jobs = gpu.rules["import_mlearn"]
    assert import_jobs.jobs == 2 and import_jobs.runtime_min == 2 * config["resources"]["data_runtime_min"]

    cpu = plan(_study_config(tmp_path, "mlearn.yaml"), str(PROFILE), str(tmp_path / "cpu"), SNAKEFILE)
    assert cpu.gpu_jobs == 0 and cpu.gpu_hours == 0
    assert cpu.rules["train_target"].jobs == n_runs


def test_failed_dry_run_is_an_error_with_snakemake_output(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_curv: {sizes: [2]}\n")
    with pytest.raises(RuntimeError, match="learning_curv"):
        plan(str(bad), None, str(tmp_path), SNAKEFILE)
