"""No lost work: kill the local workflow (its whole process group, SIGKILL or SIGTERM) during data
generation, training, evaluation and aggregation, rerun it with --rerun-incomplete, and reach the same
final tables as an uninterrupted run. After every kill, no file that looks finished may be incomplete."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd

from mlp_transfer import models
from mlp_transfer.config import load_config, sw_pool_size
from mlp_transfer.data.common import read_extxyz
from mlp_transfer.data.validate import validate_frames
from test_determinism import assert_same_numbers
from tiny_runs import SNAKEMAKE, TABLES, TINY, reference_run, snakemake_args

# (phase, files whose appearance or update means the phase is under way, text they must then hold (or None),
# signal, seconds to wait then). Triggers are files that stay once written, such as the rule logs: a tiny training
# run lasts ~0.1 s and its checkpoint is deleted at its end, so polling for the checkpoint can miss it on a fast
# machine. A rule log appears when its job starts (seconds before a tiny job ends: imports); a target-training log
# holding a "step" line means that trainer runs or has just finished, with more training jobs still to come.
KILLS = [
    ("data generation", "logs/data/sw/*.log", None, signal.SIGKILL, 1.0),
    ("source training", "logs/train/sw/source/*.log", None, signal.SIGKILL, 0.5),
    ("target training", "logs/train/sw/Si-Ge/*/*/*.log", r"step\s+\d+", signal.SIGTERM, 0.0),
    ("evaluation", "logs/eval/sw/Si-Ge/*/*/*.log", None, signal.SIGKILL, 0.3),
    ("aggregation", "logs/aggregate.log", None, signal.SIGKILL, 0.3),
]
PNG_END = b"IEND\xaeB`\x82"


def triggered(workdir: Path, pattern: str, text: str | None, since: float) -> bool:
    """A file matching ``pattern`` was written at or after ``since`` (and holds ``text``, if given)."""
    for path in workdir.glob(pattern):
        try:
            if path.stat().st_mtime >= since and (text is None or re.search(text, path.read_text())):
                return True
        except FileNotFoundError:  # removed between glob and stat
            continue
    return False


def run_until(workdir: Path, pattern: str, text: str | None, signum: int, delay: float,
              timeout: float = 600) -> bool:
    """Start the workflow; once a file matching ``pattern`` is new or updated (and holds ``text``), kill the
    process group. Returns whether it was killed (False: the workflow finished first)."""
    start = time.time()
    with open(workdir.parent / f"{workdir.name}.stderr", "a") as stderr:  # kept for the failure message
        stderr.write(f"--- run until {pattern} holds {text!r}\n")
        stderr.flush()
        proc = subprocess.Popen(snakemake_args(workdir, TINY, "--rerun-incomplete"), stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True)
    try:
        while proc.poll() is None and time.time() - start < timeout:
            if triggered(workdir, pattern, text, start):
                time.sleep(delay)
                os.killpg(proc.pid, signum)
                proc.wait(timeout=120)
                return True
            time.sleep(0.05)
        proc.wait(timeout=timeout)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_finished_files_complete(workdir: Path) -> int:
    """Every result file present must be complete; returns how many were checked."""
    config = load_config(TINY)
    sw = config["datasets"]["sw"]
    n_test = len(sw["temperatures"]) * sw["frames_per_temperature"]["test"] + sw["rattle"]["test"]
    results = workdir / "results"
    checked = 0
    for path in results.glob("data/sw/*/*.extxyz"):
        frames = read_extxyz(path)
        validate_frames(frames, path.parent.name, path)
        assert len(frames) == (sw_pool_size(sw) if path.stem == "train" else n_test), path
        checked += 1
    for path in results.glob("splits/**/*.json"):
        split = json.loads(path.read_text())
        assert {"validation", "train", "pool_size"} <= set(split), path
        checked += 1
    for path in results.glob("models/**/model.pt"):
        models.load_model(path)
        summary = json.loads(path.with_name("summary.json").read_text())
        history = pd.read_csv(path.with_name("history.csv"))
        assert summary["stop_reason"] and history["step"].iloc[-1] == summary["stopped_step"], path
        checked += 1
    for path in results.glob("models/**/summary.json"):
        json.loads(path.read_text())
        assert not pd.read_csv(path.with_name("history.csv")).empty, path
    for path in [*results.glob("eval/**/*.csv"), *results.glob("eval_source/**/*.csv")]:
        table = pd.read_csv(path)
        assert len(table) == len(sw["temperatures"]) + 1, path  # one row per test set
        assert table[["energy_mae_mev_atom", "force_mae_mev_ang"]].notna().all().all(), path
        checked += 1
    for path in results.glob("tables/*.csv"):
        try:
            columns = pd.read_csv(path).columns.size
        except pd.errors.EmptyDataError:
            raise AssertionError(f"{path} has no columns ({path.stat().st_size} bytes)") from None
        assert columns > 0, path
        checked += 1
    for path in results.glob("tables/*.md"):
        assert path.read_text().strip(), path
    for path in results.glob("plots/*.png"):
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and data.endswith(PNG_END), f"{path} is a truncated PNG"
        checked += 1
    return checked


def test_interrupted_runs_reach_the_uninterrupted_tables(tmp_path_factory):
    reference = reference_run(tmp_path_factory)
    workdir = tmp_path_factory.mktemp("tiny_interrupted")
    interrupted = []
    for phase, pattern, text, signum, delay in KILLS:
        if run_until(workdir, pattern, text, signum, delay):
            interrupted.append(phase)
        check_finished_files_complete(workdir)
        # a SIGKILLed Snakemake leaves its lock behind, as it would for a user after a crash
        subprocess.run([*SNAKEMAKE, "--unlock", "--configfile", str(TINY), "--directory", str(workdir)],
                       capture_output=True, check=True)
    log = (workdir.parent / f"{workdir.name}.stderr").read_text()
    assert len(interrupted) >= 4, f"only interrupted during {interrupted}; Snakemake's stderr:\n{log[-4000:]}"
    proc = subprocess.run(snakemake_args(workdir, TINY, "--rerun-incomplete"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert check_finished_files_complete(workdir) > 0
    for name in TABLES:
        a, b = (pd.read_csv(run / "results/tables" / name) for run in (reference, workdir))
        assert_same_numbers(a, b, name)
    dry = subprocess.run([*SNAKEMAKE, "-n", "--configfile", str(TINY), "--directory", str(workdir)],
                         capture_output=True, text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    print(f"interrupted during: {', '.join(interrupted)}")


# ---------------------------------------------------------------------------------- partial grids


def write_eval(results: Path, regime: str, size: int, seed: int) -> Path:
    path = results / "eval/sw/Si-Ge" / regime / f"n{size}" / f"seed{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"dataset": "sw", "source": "Si", "target": "Ge", "regime": regime, "n_train": size, "seed": seed,
                   "test_set": "T300K", "n_structures": 2, "energy_mae_mev_atom": 10.0 / size + seed,
                   "energy_rmse_mev_atom": 12.0 / size, "force_mae_mev_ang": 300.0 / size + seed,
                   "force_rmse_mev_ang": 400.0 / size}]).to_csv(path, index=False)
    return path


def test_aggregation_refuses_a_partial_grid_unless_asked(tmp_path, capsys):
    from mlp_transfer.aggregate import cli

    results, tables = tmp_path / "results", tmp_path / "tables"
    grid = [(r, n, s) for r in ("transfer", "scratch") for n in (2, 4) for s in (0, 1)]  # tiny.yaml's grid
    for regime, size, seed in grid:
        if (regime, size, seed) != ("scratch", 4, 1):
            write_eval(results, regime, size, seed)
    argv = ["--results", str(results), "--tables", str(tables), "--plots", str(tmp_path / "plots"),
            "--histories", "--configfile", str(TINY)]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "partial grid: 1 of 8 expected runs" in err and "scratch n4 seed1" in err and "--allow-partial" in err
    assert not tables.exists()
    # a whole size missing for every run is caught by the config's grid, not by the grid the runs span
    for regime in ("transfer", "scratch"):
        for seed in (0, 1):
            (results / f"eval/sw/Si-Ge/{regime}/n4/seed{seed}.csv").unlink(missing_ok=True)
    assert cli(argv[:-2]) == 0  # no --configfile: n2 alone looks complete
    assert not (tables / "missing_runs.csv").exists()
    assert cli(argv) == 2
    assert "4 of 8 expected runs" in capsys.readouterr().err

    assert cli([*argv, "--allow-partial"]) == 0
    missing = pd.read_csv(tables / "missing_runs.csv")
    assert sorted(zip(missing["regime"], missing["size"], missing["seed"])) == \
        sorted((r, 4, s) for r in ("transfer", "scratch") for s in (0, 1))
    assert set(pd.read_csv(tables / "learning_curve.csv")["n_train"]) == {2}
    for name in ("summary.md", "comparison.md", "convergence_summary.md"):
        assert (tables / name).read_text().startswith("> **Partial grid: 4 of 8 expected runs are missing**")

    for regime, size, seed in grid:  # finished: the marks of the partial table go away
        write_eval(results, regime, size, seed)
    assert cli(argv) == 0
    assert not (tables / "missing_runs.csv").exists()
    assert "Partial grid" not in (tables / "summary.md").read_text()
    assert len(pd.read_csv(tables / "learning_curve.csv")) == 8
