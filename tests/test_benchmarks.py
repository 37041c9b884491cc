"""Smoke test of benchmarks/run_benchmarks.py: every section's code path at tiny sizes (not a timed test)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the md.compile variants need a C++ compiler for torch.compile's CPU backend
HAVE_CXX = any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def _load():
    spec = importlib.util.spec_from_file_location("run_benchmarks", REPO / "benchmarks" / "run_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "spktrain").exists() and
                    not Path(__import__("sys").executable).with_name("spktrain").exists(),
                    reason="schnetpack's spktrain entry point is not installed")
def test_benchmarks_quick(tmp_path):
    bench = _load()
    stem = tmp_path / "bench"
    # planning is covered by the plan tests and needs the paper config's data folders: left out here
    bench.main(["--quick", "--only", "training", "--only", "ablation", "--only", "inference", "--only", "md",
                "--only", "architectures",
                *(["--md-compile"] if HAVE_CXX else []), "--out", str(stem)])
    results = json.loads(stem.with_suffix(".json").read_text())
    assert {"machine", "training", "ablation", "inference", "md", "main_job"} <= set(results)
    training = results["training"]
    for side in ("workflow", "spktrain"):
        assert {"s_per_epoch", "atoms_per_s", "process_wall_s", "test_force_mae_mev_ang"} <= set(training[side])
        assert training[side]["s_per_epoch"]["median"] > 0
    assert training["speedup_s_per_epoch"]["median"] > 0
    assert "workflow step" in results["ablation"]["step_ms"]
    assert set(results["ablation"]["parts_ms"]) == {"collate", "forward", "backward", "optimizer"}
    (n_atoms,) = [k for k in results["inference"] if k.isdigit()]
    assert results["inference"][n_atoms]["ratio_workflow_vs_spkcalculator"]["median"] > 0
    md = results["md"][n_atoms]
    assert md["workflow_1_replica"]["steps_per_s"]["median"] > 0
    assert md["ase_spkcalculator"]["ns_per_day"]["median"] > 0
    assert "workflow_2_replicas" in md and "ratio_workflow_vs_ase" in md
    if HAVE_CXX:
        assert md["workflow_2_replicas_compiled"]["replica_steps_per_s"]["median"] > 0
        assert md["ratio_workflow_1_replica_compiled_vs_ase"]["median"] > 0 and md["first_compile_s"] > 0
        assert "ceiling_ratio_vs_ase_cpu_compiled" in md
    variants = results["architectures"]["variants"]
    assert set(variants) == {"painn", "so3net_lmax1", "so3net_lmax2", "so3net_lmax1_schnetpack", "so3net_lmax2_schnetpack"}
    assert variants["so3net_lmax2"]["speedup_vs_schnetpack_convolution"]["median"] > 0
    assert variants["painn"]["ratio_vs_painn"]["median"] == 1.0
    assert all(v["cpu_ms_per_step"]["median"] > 0 and v["n_parameters"] > 0 for v in variants.values())
    text = stem.with_suffix(".md").read_text()
    assert "## Training" in text and "## Training step: SO3net vs PaiNN" in text


BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_compare_main_job_sums_stages(tmp_path, capsys):
    """Per-stage jobs, wall and CPU seconds of two runs from their Snakemake benchmark files."""
    spec = importlib.util.spec_from_file_location("compare_main_job", REPO / "benchmarks" / "compare_main_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for run, cpu in (("before", [8.0, 4.0]), ("after", [6.0, 3.0])):
        for i, value in enumerate(cpu):
            path = tmp_path / run / "results/benchmarks/train" / f"seed{i}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(BENCHMARK_HEADER + f"10\t0:00:10\t1\t1\t1\t1\t0\t0\t50\t{value}\n")
    costs = module.stage_costs(tmp_path / "before")
    assert costs.loc["train"].to_dict() == {"jobs": 2, "wall_s": 20.0, "cpu_s": 12.0}
    assert module.main([str(tmp_path / "before"), str(tmp_path / "after")]) == 0
    assert "0.75" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no benchmark files"):
        module.stage_costs(tmp_path / "missing")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_md_benchmark_without_cuda_is_a_usage_error(tmp_path, capsys):
    bench = _load()
    with pytest.raises(SystemExit) as stop:
        bench.main(["--quick", "--only", "md", "--device", "cuda", "--out", str(tmp_path / "bench")])
    assert stop.value.code == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_startup_probe_reads_rule_scripts_and_measures_imports():
    """The startup section maps rules to their scripts and times a fresh interpreter's imports of one."""
    bench = _load()
    scripts = bench.rule_scripts()
    assert scripts["train_target"].name == "train.py" and scripts["md_reference"].name == "md_run.py"
    assert all(path.is_file() for path in scripts.values())
    light = bench.startup_cpu_seconds(scripts["split_source"])
    assert 0 < light < 30
    # properties_target loads the model with schnetpack inside a function: the probe adds that import
    assert bench.startup_cpu_seconds(scripts["properties_reference"], with_schnetpack=True) > light


def test_cpu_allocator_benchmark_runs_each_malloc_setting(tmp_path):
    """Every variant runs in its own process and lands in the table with its ratio to glibc as shipped."""
    spec = importlib.util.spec_from_file_location("cpu_allocator", REPO / "benchmarks" / "cpu_allocator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--lmax", "0", "--steps", "1", "--repeats", "1", "--out", str(tmp_path)]) == 0
    runs = json.loads((tmp_path / "cpu_allocator.json").read_text())["runs"]
    assert set(runs) == {"default", "heap_only", "hugetlb"}
    assert all(r["s_per_step"] > 0 and r["max_rss_gb"] > 0 for rows in runs.values() for r in rows)
    table = (tmp_path / "cpu_allocator.md").read_text()
    assert "| default |" in table and table.count("\n| ") == 4
