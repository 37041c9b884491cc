"""The cluster path against a real SLURM: a private single-node cluster (munged, slurmctld, slurmd; no
accounting) is started for this module (tests/slurm/cluster.py) and torn down afterwards.

- the tiny workflow runs through workflow/profiles/slurm to its tables, data/evaluation jobs on the CPU
  partition, training jobs on the GPU partition holding a (fake) GPU;
- the submitit launcher runs the controller as a SLURM job; a preemption signal makes it stop Snakemake
  (which cancels its jobs), requeue itself, and finish on the second run.

Skipped, with the reason, where SLURM cannot run (not root, slurm-wlm/munge not installed); .ci/run
installs the packages, so CI runs it. Run alone: ``pytest -m slurm``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from cluster import LocalSlurm, unavailable_reason  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = REPO / "tests" / "configs" / "tiny.yaml"
TRAIN_RULES = {"train_source", "train_target", "hpsearch_train", "hpsearch_source"}
GPU_PARTITION_RULES = TRAIN_RULES | {"md_model"}  # as in workflow/profiles/slurm set-resources

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"local SLURM cannot run here: {reason}")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tiny config cut to one size and one seed (both regimes: every rule still runs), and a copy of the
    SLURM profile that only adds a fake GPU to training jobs and shortens the waits of a local cluster."""
    directory = tmp_path_factory.mktemp("slurm_study")
    config = yaml.safe_load(TINY.read_text())
    config["learning_curve"].update(sizes=[2], seeds=[0])
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    for rule in TRAIN_RULES:
        profile["set-resources"][rule]["gpu"] = 1
    profile.update({"slurm-init-seconds-before-status-checks": 3, "latency-wait": 5, "jobs": 4,
                    "slurm-keep-successful-logs": True})
    (directory / "profile").mkdir()
    (directory / "profile/config.yaml").write_text(yaml.safe_dump(profile))
    return {"dir": directory, "config": directory / "config.yaml", "profile": directory / "profile",
            "grid": config["learning_curve"]}


def env_for(slurm: LocalSlurm) -> dict:
    env = slurm.env()
    env.update(MLP_CPU_PARTITION=slurm.cpu_partition, MLP_GPU_PARTITION=slurm.gpu_partition)
    env.pop("MLP_SLURM_ACCOUNT", None)
    return env


def jobs_in_queue(slurm: LocalSlurm) -> list[dict]:
    """Every job slurmctld still remembers (MinJobAge=3600 s: longer than any test run, so the first jobs of a
    slow run are not purged before they are checked), with partition, GPU request and rule."""
    out = slurm.run("squeue", "--states=all", "--noheader", "-o", "%i|%P|%T|%k|%j").stdout
    fields = ("id", "partition", "state", "comment", "name")
    jobs = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]
    for job in jobs:  # --gpus=1 shows as TresPerJob=gres:gpu:1 (squeue's %b is per node)
        detail = slurm.run("scontrol", "show", "job", job["id"], check=False).stdout
        job["tres"] = " ".join(f for f in detail.split() if f.startswith(("TresPerJob=", "TresPerNode=")))
    return jobs


def test_tiny_workflow_through_slurm_profile(slurm, study):
    workdir = study["dir"] / "run"
    workdir.mkdir()
    start = time.monotonic()
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--profile",
                           str(study["profile"]), "--configfile", str(study["config"]), "--directory", str(workdir)],
                          env=env_for(slurm), capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{output[-6000:]}\n{slurm.logs()}"
    print(f"tiny workflow through SLURM: {time.monotonic() - start:.0f} s")

    lc = pd.read_csv(workdir / "results/tables/learning_curve.csv")
    grid = study["grid"]
    assert set(lc["regime"]) == {"transfer", "scratch"}
    assert set(lc["n_train"]) == set(grid["sizes"]) and set(lc["seed"]) == set(grid["seeds"])
    assert (workdir / "results/tables/source_models.csv").is_file()
    assert lc["force_mae_mev_ang"].notna().all()

    jobs = [j for j in jobs_in_queue(slurm) if j["comment"].startswith("rule_")]
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job["comment"][len("rule_"):].split("_wildcards")[0], []).append(job)
    # Local rules (splits, aggregation) never reach SLURM; every other job did, once, and completed.
    assert {"generate_sw", "train_source", "train_target", "evaluate_source", "evaluate_target"} <= set(by_rule)
    assert not {"split_source", "split_learning_curve", "aggregate", "source_table"} & set(by_rule)
    assert len(by_rule["train_target"]) == 2 and len(by_rule["evaluate_target"]) == 2
    assert all(j["state"] == "COMPLETED" for j in jobs), jobs
    for rule, rule_jobs in by_rule.items():
        for job in rule_jobs:
            if rule in TRAIN_RULES:  # the test profile gives them a (fake) GPU
                assert job["partition"] == slurm.gpu_partition and "gres:gpu:1" in job["tres"], job
            elif rule in GPU_PARTITION_RULES:  # MD with a model: GPU partition, a GPU only with md.device cuda
                assert job["partition"] == slurm.gpu_partition, job
            else:
                assert job["partition"] == slurm.cpu_partition and "gpu" not in job["tres"], job
    # SLURM logs per rule and wildcards (kept here; by default only failed jobs' logs are kept).
    assert list((workdir / ".snakemake/slurm_logs/rule_train_target").rglob("*.log"))


def test_submitit_launcher_requeues_the_controller(slurm, study):
    """`mlp-transfer launch`: the controller runs as a SLURM job; on USR2 (preemption / time-limit warning) it
    interrupts Snakemake, which cancels its job, requeues itself, and completes the target on its rerun."""
    workdir = study["dir"] / "launch"
    workdir.mkdir()
    target = "results/data/sw/Si/train.extxyz"
    env = env_for(slurm)
    proc = subprocess.run([str(BIN / "mlp-transfer"), "launch", "--profile", str(study["profile"]),
                           "--configfile", str(study["config"]), "--directory", str(workdir), "--time", "00:10:00",
                           "--signal-delay", "30", "--mem-gb", "1", "--", target],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    controller_id = proc.stdout.split("submitted controller job ")[1].split()[0]
    log_dir = workdir / "logs/controller"

    # Wait until the controller has submitted its rule job, then preempt it.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(log_dir.glob("*_result.pkl")):
        rule_jobs = [j for j in jobs_in_queue(slurm)
                     if j["comment"].startswith("rule_generate_sw") and int(j["id"]) > int(controller_id)]
        if rule_jobs:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"controller submitted no job:\n{slurm.logs()}\n{_read(log_dir)}")
    first_rule_job = rule_jobs[0]["id"]
    slurm.run("scancel", "--signal=USR2", controller_id)
    # SLURM holds a requeued job for ~2 minutes (BeginTime); shorten that to 10 s to keep the test short
    # (starting it within the same seconds fails with "Job credential revoked").
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = slurm.run("squeue", "-h", "-j", controller_id, "-o", "%T|%r", check=False).stdout.strip()
        if state == "PENDING|BeginTime":
            slurm.run("scontrol", "update", f"JobId={controller_id}", "StartTime=now+10")
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"controller was not requeued (state {state!r}):\n{_read(log_dir)}\n{slurm.logs()}")

    deadline = time.monotonic() + 240
    result = log_dir / f"{controller_id}_0_result.pkl"
    while time.monotonic() < deadline and not result.exists():
        time.sleep(1)
    logs = _read(log_dir)
    assert result.exists(), f"controller did not finish:\n{logs}\n{slurm.logs()}"
    import submitit

    outcome, value = submitit.core.utils.pickle_load(result)  # ("success", return value) or ("error", trace)
    assert outcome == "success" and value == 0, (outcome, value, logs)
    assert "controller interrupted: stopping snakemake" in logs and "controller restart 1" in logs, logs
    assert (workdir / target).is_file()
    states = {j["id"]: j for j in jobs_in_queue(slurm)}
    assert states[first_rule_job]["state"] == "CANCELLED", states  # the interrupted controller's rule job
    reruns = [j for j in states.values() if j["comment"].startswith("rule_generate_sw")
              and int(j["id"]) > int(first_rule_job)]
    assert reruns and all(j["state"] == "COMPLETED" for j in reruns), states
    # The controller writes its result before its process exits: wait for SLURM to finish COMPLETING.
    assert final_state(slurm, controller_id) == "COMPLETED", jobs_in_queue(slurm)


def final_state(slurm: LocalSlurm, job_id: str, timeout: float = 60.0) -> str:
    """The job's state once it has left the transitional states (RUNNING, COMPLETING), or the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        state = slurm.run("squeue", "-h", "--states=all", "-j", job_id, "-o", "%T", check=False).stdout.strip()
        if state not in {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", ""} or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def _read(log_dir: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(log_dir.glob("*_log.*")))
