"""Fault tolerance without a cluster: a training run killed with SIGTERM (what SLURM sends at a time limit,
on preemption or on scancel) and rerun resumes from its checkpoint and ends exactly like an uninterrupted
run; a job that keeps failing is retried by Snakemake and its log is named."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MLP = str(BIN / "mlp-transfer")
VAL_INTERVAL = 10
MAX_STEPS = 400


@pytest.fixture(scope="module")
def train_inputs(sw_pools, tiny_model_config, tmp_path_factory):
    directory = tmp_path_factory.mktemp("faults")
    splits = directory / "splits.json"
    subprocess.run([MLP, "split", "--pool", str(sw_pools["Ge"]), "--out", str(splits), "--sizes", "6",
                    "--n-validation", "3", "--seed", "0"], check=True, capture_output=True, timeout=120)
    config = directory / "config.yaml"
    # Patience larger than the run: every run goes to max_steps, so the interrupted and the reference run
    # must agree step for step.
    # `mlp-transfer train --config` takes a whole (validated) study config and uses its model and training.
    study = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    study["model"] = tiny_model_config
    study["training"] = {"batch_size": 2, "max_steps": MAX_STEPS, "val_interval": VAL_INTERVAL, "threads": 1,
                         "early_stopping": {"patience": 1000, "min_rel_improvement": 0.001}}
    config.write_text(yaml.safe_dump(study))
    return {"pool": sw_pools["Ge"], "splits": splits, "config": config, "dir": directory}


def train_command(inputs: dict, out_dir: Path) -> list[str]:
    return [MLP, "train", "--regime", "scratch", "--pool", str(inputs["pool"]), "--splits", str(inputs["splits"]),
            "--size", "6", "--element", "Ge", "--seed", "0", "--config", str(inputs["config"]),
            "--out-dir", str(out_dir)]


def test_sigterm_then_rerun_resumes_from_checkpoint(train_inputs):
    out = train_inputs["dir"] / "interrupted"
    checkpoint = out / "checkpoint.pt"
    proc = subprocess.Popen(train_command(train_inputs, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"training ended before its first checkpoint was seen:\n{proc.stdout.read()}"
    assert checkpoint.exists(), "no checkpoint within 120 s"
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)

    assert proc.returncode != 0, output
    assert "TrainingInterrupted" in output, output
    assert checkpoint.is_file()
    # Outputs appear only when complete: nothing that looks like a finished run.
    assert not (out / "model.pt").exists() and not (out / "summary.json").exists()
    assert not (out / "history.csv").exists()
    import torch

    interrupted_at = torch.load(checkpoint, weights_only=False)["step"]
    assert 0 < interrupted_at < MAX_STEPS

    rerun = subprocess.run(train_command(train_inputs, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_step"] == interrupted_at
    assert summary["stopped_step"] == MAX_STEPS and summary["stop_reason"] == "max_steps"
    assert (out / "model.pt").is_file() and not checkpoint.exists()

    history = pd.read_csv(out / "history.csv")
    # Continuous: one validation every VAL_INTERVAL steps from 0 to MAX_STEPS, none lost or repeated.
    assert history["step"].tolist() == list(range(0, MAX_STEPS + 1, VAL_INTERVAL))
    assert history["wall_time_s"].is_monotonic_increasing

    # Exact: identical to a run that was never interrupted (CPU, one thread, same seed).
    reference_dir = train_inputs["dir"] / "reference"
    subprocess.run(train_command(train_inputs, reference_dir), check=True, capture_output=True, timeout=300)
    reference = pd.read_csv(reference_dir / "history.csv")
    columns = ["step", "epoch", "lr", "val_loss", "val_force_mae_mev_ang", "val_energy_mae_mev_atom"]
    pd.testing.assert_frame_equal(history[columns], reference[columns], rtol=1e-6)
    reference_summary = json.loads((reference_dir / "summary.json").read_text())
    assert reference_summary["resumed_from_step"] is None
    assert summary["best_step"] == reference_summary["best_step"]


def test_failing_job_is_retried_and_names_its_log(tmp_path, make_sw_frames):
    """A job that keeps failing (an extxyz file with a non-finite energy) is attempted 1 + retries times and
    the error Snakemake prints names the rule's log, which holds the reason."""
    from mlp_transfer.data.common import write_extxyz

    frames = make_sw_frames("Ge", 4)
    frames[1].calc.results["energy"] = float("nan")
    for element in ("Si", "Ge"):
        write_extxyz(tmp_path / f"{element}_train.xyz", frames if element == "Ge" else make_sw_frames("Si", 4))
        write_extxyz(tmp_path / f"{element}_test.xyz", make_sw_frames(element, 2, seed=5))
    config = {
        "datasets": {"mine": {"kind": "extxyz", "elements": {
            e: {"train": str(tmp_path / f"{e}_train.xyz"), "test": str(tmp_path / f"{e}_test.xyz")}
            for e in ("Si", "Ge")}}},
        "pairs": [{"dataset": "mine", "source": "Si", "target": "Ge"}],
        "learning_curve": {"sizes": [1], "seeds": [0], "n_validation": 1},
        "source_training": {"n_validation": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--configfile",
                           str(tmp_path / "config.yaml"), "--directory", str(tmp_path), "--cores", "1",
                           "--retries", "2", "results/data/mine/Ge/train.extxyz"],
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    log = "logs/data/mine/Ge.log"
    assert log in output, output
    assert output.count("Error in rule import_extxyz") == 3, output  # first attempt + 2 retries
    # The log (rewritten by each attempt) holds the reason of the last one.
    assert "frame 1: energy is nan" in (tmp_path / log).read_text()
    assert not (tmp_path / "results/data/mine/Ge/train.extxyz").exists()
