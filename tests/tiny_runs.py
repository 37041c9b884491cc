"""Runs of the tiny workflow config shared by the reliability tests (determinism, no lost work).

The config is tests/configs/tiny.yaml restricted to the learning-curve study (data, splits, training,
evaluation, aggregation): the search, property and MD stages, which tiny.yaml also switches on, are turned off to
keep these tests within their time budget (their own tests run them). One uninterrupted run from scratch
is made once per pytest session (in the session's base temp folder) and reused as the reference by every
test that needs one.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY_FULL = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
TABLES = ["learning_curve.csv", "summary.csv", "comparison.csv", "source_models.csv", "convergence_runs.csv"]


def learning_curve_config(directory: Path) -> Path:
    """tiny.yaml with only the learning-curve stages, written to ``directory``."""
    config = yaml.safe_load(TINY_FULL.read_text())
    for stage in ("properties", "md"):
        if stage in config:
            config[stage] = {"enabled": False}
    config.pop("hyperparameter_search", None)
    path = Path(directory) / "tiny_learning_curve.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


TINY = learning_curve_config(Path(tempfile.mkdtemp(prefix="tiny_lc_")))


def snakemake_args(workdir: Path, config: Path = TINY, *extra: str) -> list[str]:
    return [*SNAKEMAKE, *extra, "--configfile", str(config), "--directory", str(workdir), "--cores", "2"]


def run_workflow(workdir: Path, config: Path = TINY, *extra: str) -> None:
    proc = subprocess.run(snakemake_args(workdir, config, *extra), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake in {workdir} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def reference_run(tmp_path_factory) -> Path:
    """The tiny learning-curve config run once from scratch, uninterrupted (cached for the session)."""
    workdir = tmp_path_factory.getbasetemp() / "tiny_reference"
    done = workdir / "REFERENCE_DONE"
    if not done.exists():
        workdir.mkdir(exist_ok=True)
        run_workflow(workdir)
        done.write_text("ok\n")
    return workdir
