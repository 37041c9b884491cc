"""The CUDA paths (training and MD with ``device: cuda``) against the CPU paths on the same inputs.

Skipped on machines without CUDA (CI has none); run them where a GPU is available with
``pytest tests/test_cuda.py`` (``benchmarks/device/gpu_check.sh`` does, next to the GPU MD benchmark).
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch

from mlp_transfer import md
from mlp_transfer.models import build_model, load_model, save_model
from mlp_transfer.splits import write_splits
from mlp_transfer.stability import StabilityCriteria
from mlp_transfer.train import run_training

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

TRAINING = {"batch_size": 3, "lr": 5e-3, "transfer_lr": 2e-4, "max_steps": 20, "val_interval": 5,
            "early_stopping": {"patience": 100, "min_rel_improvement": 0.0},
            "lr_schedule": {"factor": 0.5, "patience": 100, "min_lr": 1e-6}, "threads": 1}


@pytest.fixture(scope="module")
def runs(sw_pools, tiny_model_config, tmp_path_factory):
    """The same scratch run (seed, data, steps) on the CPU and on CUDA."""
    directory = tmp_path_factory.mktemp("cuda_runs")
    splits = directory / "Si.json"
    write_splits(sw_pools["Si"], splits, ["all"], n_validation=3, seed=0)
    out = {}
    for device in ("cpu", "cuda"):
        run = directory / device
        summary = run_training(regime="scratch", pool=sw_pools["Si"], splits=splits, size="all", element="Si",
                               seed=0, model_config=tiny_model_config,
                               training_config={**TRAINING, "device": device}, out_model=run / "model.pt",
                               out_history=run / "history.csv", out_summary=run / "summary.json")
        out[device] = (run, summary, pd.read_csv(run / "history.csv"))
    return out


def test_cuda_training_follows_the_cpu_run(runs):
    (_, cpu_summary, cpu), (_, gpu_summary, gpu) = runs["cpu"], runs["cuda"]
    assert gpu_summary["device"] == "cuda" and cpu_summary["device"] == "cpu"
    assert gpu_summary["device_name"] == torch.cuda.get_device_name(0) and cpu_summary["device_name"] is None
    assert list(gpu["step"]) == list(cpu["step"])
    # same initial weights and batches: the first validation agrees to float32 round-off
    assert gpu["val_force_mae_mev_ang"].iloc[0] == pytest.approx(cpu["val_force_mae_mev_ang"].iloc[0], rel=1e-4)
    # later steps differ only by the order of floating-point sums on the GPU
    assert gpu["val_force_mae_mev_ang"].iloc[-1] == pytest.approx(cpu["val_force_mae_mev_ang"].iloc[-1], rel=0.02)
    assert gpu["val_force_mae_mev_ang"].iloc[-1] < gpu["val_force_mae_mev_ang"].iloc[0]


class Killed(Exception):
    """Stands in for the job being killed right after a checkpoint was written."""


def test_cuda_run_resumes_from_its_checkpoint(runs, sw_pools, tiny_model_config, tmp_path, monkeypatch):
    """A CUDA run killed after its step-10 checkpoint resumes there (the checkpoint is loaded onto the GPU, the
    batch-order generator's state back onto the CPU) and ends with the uninterrupted CUDA run's steps."""
    from mlp_transfer.train import Trainer

    _, _, reference = runs["cuda"]
    splits = tmp_path / "Si.json"
    write_splits(sw_pools["Si"], splits, ["all"], n_validation=3, seed=0)
    save = Trainer.save_checkpoint

    def save_then_die(self):
        save(self)
        if self.step >= 10:
            raise Killed

    def train():
        return run_training(regime="scratch", pool=sw_pools["Si"], splits=splits, size="all", element="Si", seed=0,
                            model_config=tiny_model_config, training_config={**TRAINING, "device": "cuda"},
                            out_model=tmp_path / "model.pt", out_history=tmp_path / "history.csv",
                            out_summary=tmp_path / "summary.json")

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train()
    monkeypatch.undo()
    summary = train()
    history = pd.read_csv(tmp_path / "history.csv")
    assert summary["resumed_from_step"] == 10
    assert list(history["step"]) == list(reference["step"])
    assert history["val_force_mae_mev_ang"].iloc[-1] == pytest.approx(
        reference["val_force_mae_mev_ang"].iloc[-1], rel=0.02)


def test_model_trained_on_cuda_predicts_the_same_on_the_cpu(runs, make_sw_frames, tiny_model_config):
    from mlp_transfer.evaluate import predict

    run, _, _ = runs["cuda"]
    frames = make_sw_frames("Si", 3, seed=11)
    cutoff = tiny_model_config["cutoff"]
    on_cpu = predict(load_model(run / "model.pt", "cpu"), frames, cutoff, batch_size=2)
    on_gpu = predict(load_model(run / "model.pt", "cpu"), frames, cutoff, batch_size=2, device="cuda")
    assert on_cpu[0] == pytest.approx(on_gpu[0], rel=1e-5)
    for f_cpu, f_gpu in zip(on_cpu[1], on_gpu[1]):
        assert abs(f_cpu - f_gpu).max() < 1e-4


def test_factorized_so3net_on_cuda_matches_schnetpack_convolution(make_sw_frames, tiny_model_config):
    """The factorized SO3 convolution on the card: the same energies and forces as schnetpack's, there and on
    the CPU."""
    from mlp_transfer.evaluate import predict
    from mlp_transfer.so3 import set_so3_convolutions

    torch.manual_seed(0)
    model = build_model(**dict(tiny_model_config, architecture="so3net", lmax=2))
    frames = make_sw_frames("Ge", 3, seed=13)
    cutoff = tiny_model_config["cutoff"]
    results = {}
    for implementation, device in (("factorized", "cuda"), ("factorized", "cpu"), ("schnetpack", "cuda")):
        set_so3_convolutions(model, implementation)
        results[implementation, device] = predict(model, frames, cutoff, batch_size=2, device=device)
    reference = results["schnetpack", "cuda"]
    for other in (results["factorized", "cuda"], results["factorized", "cpu"]):
        assert other[0] == pytest.approx(reference[0], rel=1e-5)
        for f_other, f_ref in zip(other[1], reference[1]):
            assert abs(f_other - f_ref).max() < 1e-4


def test_md_on_cuda_runs_batched_replicas(tmp_path, tiny_model_config):
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_model(build_model(**tiny_model_config), path)
    (tmp_path / "summary.json").write_text(json.dumps({"n_train": 5}))
    settings = md.MDSettings(temperatures=(300.0,), supercell=2, n_steps=30, replicas=8, log_interval=5,
                             precision=32, device="cuda",
                             stability=StabilityCriteria(equilibration_steps=10, temperature_window=10))
    table = md.run_md_job(element="Ge", settings=settings, out_h5=[tmp_path / "T300K.h5"],
                          out_stability=tmp_path / "stability.csv", model_path=path,
                          cutoff=tiny_model_config["cutoff"], summary_path=tmp_path / "summary.json")
    assert len(table) == 8
    assert set(table["device"].astype(str)) <= {"cuda", "cuda:0"}
    assert (table["n_atoms"] == 64).all()


def test_compiled_md_on_cuda_matches_eager(tmp_path, tiny_model_config):
    """md.compile on CUDA (Triton kernels): it compiles, and energies and forces agree with eager CUDA."""
    from schnetpack.md import System
    from schnetpack.md.neighborlist_md import NeighborListMD
    from schnetpack.transform import MatScipyNeighborList
    from ase.build import bulk

    torch.manual_seed(0)
    model = build_model(**tiny_model_config)
    atoms = bulk("Ge", "diamond", a=5.66, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    results = {}
    for compile in (False, True):
        system = System()
        system.load_molecules(atoms, n_replicas=4, position_unit_input="Angstrom")
        system = system.to(device="cuda", dtype=torch.float64)
        nbl = NeighborListMD(cutoff=tiny_model_config["cutoff"], cutoff_shell=1.0, base_nbl=MatScipyNeighborList)
        calc = md.ModelMDCalculator(copy.deepcopy(model), nbl, dtype=torch.float64, compile=compile).to("cuda")
        calc.calculate(system)
        assert calc.compiled == compile
        results[compile] = (system.energy.detach().cpu(), system.forces.detach().cpu())
    assert torch.allclose(results[True][0], results[False][0], rtol=1e-10, atol=1e-10)
    assert torch.allclose(results[True][1], results[False][1], rtol=1e-8, atol=1e-10)
