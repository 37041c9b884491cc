"""Throughput benchmarks of the workflow against the baselines a user would otherwise use.

    .venv/bin/python benchmarks/run_benchmarks.py                 # all sections, default sizes (~15 min)
    .venv/bin/python benchmarks/run_benchmarks.py --only training --repeats 3
    .venv/bin/python benchmarks/run_benchmarks.py --quick         # tiny sizes: checks the code paths only
    .venv/bin/python benchmarks/run_benchmarks.py --only md --device cuda --replicas 1 4 16 64   # GPU MD

Sections (``--only``, repeatable): ``training`` (workflow ``Trainer`` vs schnetpack's ``spktrain`` CLI on the
same frames, model, hyper-parameters and threads), ``ablation`` (step-time breakdown of the workflow's training
step and the speed-up ideas measured one by one), ``inference`` (energy+forces atoms/s, 64 and 512 atoms, vs
``SpkCalculator``), ``md`` (the workflow's MD engine vs ASE Langevin + ``SpkCalculator``, 64 and 512 atoms,
1 and 2 batched replicas; ``--device cuda`` runs both engines on the GPU and reports wall-time figures
only), ``planning`` (``benchmarks/plan_benchmark.py``'s dry run of config/paper.yaml), ``startup`` (the
CPU seconds each job of the default main job pays before its own work: interpreter start and the imports of its
rule script, times the number of such jobs in the default DAG), ``architectures`` (a training step of SO3net at
each ``--lmax`` against PaiNN, both at ``--arch-config``'s model width, depth and cutoff: what a higher-order
model costs before it is trained for accuracy).
Compared variants run interleaved (A, B, A, B, ...) so that load from other jobs on a shared machine hits
both; every figure is reported as median and [min, max] over ``--repeats``.

Writes ``benchmarks/results/benchmarks.json`` and ``benchmarks/results/benchmarks.md`` (``--out``).
Data: Ge diamond cells (64 atoms, or 512 for the large cells) rattled by 0.1 Å and labelled with the
workflow's Stillinger-Weber reference, generated in a few seconds; the model is the default config's.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from mlp_transfer import models  # noqa: E402
from mlp_transfer.batching import StructureSet, mean_energy_per_atom  # noqa: E402
from mlp_transfer.evaluate import error_metrics, predict  # noqa: E402
from mlp_transfer.md import compile_representation  # noqa: E402
from mlp_transfer.reference import diamond_cell, sw_calculator  # noqa: E402
from mlp_transfer.so3 import set_so3_convolutions  # noqa: E402
from mlp_transfer.train import Trainer, TrainSettings, _loss_terms  # noqa: E402

SECTIONS = ("training", "ablation", "inference", "md", "planning", "startup", "architectures")
ELEMENT = "Ge"


# -- helpers ---------------------------------------------------------------------------------------------
def spread(values) -> dict:
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def fmt(s: dict, digits: int = 1) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def cpu_pressure() -> str | None:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None


def machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform()}


def make_frames(n: int, supercell: int = 2, seed: int = 0, stdev: float = 0.1) -> list:
    calc = sw_calculator(ELEMENT)
    frames = []
    for i in range(n):
        atoms = diamond_cell(ELEMENT, supercell)
        atoms.rattle(stdev, seed=seed * 100003 + i)
        atoms.calc = calc
        atoms.get_forces()
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(atoms)
    return frames


def load_default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


# -- training --------------------------------------------------------------------------------------------
def write_spk_database(frames, path: Path) -> None:
    from schnetpack.data import ASEAtomsData

    db = ASEAtomsData.create(str(path), distance_unit="Ang",
                             property_unit_dict={"energy": "eV", "forces": "eV/Ang"})
    db.add_systems([{"energy": np.array([a.get_potential_energy()]), "forces": a.get_forces()} for a in frames],
                   frames)


def spk_config(*, db: Path, split: Path, run_dir: Path, timer_path: Path, model_cfg: dict, tr: dict,
               n_atoms: int, epochs: int, n_train: int, n_val: int, seed: int) -> dict:
    """A complete spktrain config with the workflow's model, loss, optimiser, schedule and batch size.

    The workflow's loss is ``w_E MSE(E/N) + w_F MSE(F)``; spktrain's energy loss is on total energies, so its
    energy weight is ``w_E / N^2`` (all cells have N atoms). EMA and early stopping (spktrain defaults that
    the workflow does not use) are off; validation runs every epoch in both.
    """
    cutoff = model_cfg["cutoff"]
    schedule = tr["lr_schedule"]
    return {
        "defaults": ["_self_"],
        "print_config": False,
        "seed": seed,
        "run": {"work_dir": str(run_dir), "data_dir": str(run_dir / "data"), "path": str(run_dir),
                "experiment": "bench", "id": "spk", "ckpt_path": None},
        "globals": {"model_path": "best_model", "cutoff": cutoff, "lr": tr["lr"], "energy_key": "energy",
                    "forces_key": "forces"},
        "hydra": {"job": {"chdir": True}, "run": {"dir": "${run.path}/${run.id}"}, "output_subdir": None},
        "trainer": {"_target_": "pytorch_lightning.Trainer", "devices": 1, "accelerator": "cpu",
                    "max_epochs": epochs, "min_epochs": None, "enable_model_summary": False,
                    "enable_progress_bar": False, "num_sanity_val_steps": 0, "check_val_every_n_epoch": 1,
                    "val_check_interval": 1.0, "precision": 32, "inference_mode": False,
                    "deterministic": False},
        "callbacks": {
            "model_checkpoint": {"_target_": "schnetpack.train.ModelCheckpoint", "monitor": "val_loss",
                                 "save_top_k": 1, "save_last": True, "mode": "min", "dirpath": "checkpoints/",
                                 "filename": "{epoch:02d}", "model_path": "best_model"},
            "bench_timer": {"_target_": "spk_timing.EpochTimer", "path": str(timer_path)},
        },
        "logger": {"csv": {"_target_": "pytorch_lightning.loggers.csv_logs.CSVLogger", "save_dir": "."}},
        "task": {"_target_": "schnetpack.AtomisticTask", "warmup_steps": 0,
                 "optimizer_cls": "torch.optim.Adam", "optimizer_args": {"lr": tr["lr"], "weight_decay": 0.0},
                 "scheduler_cls": "schnetpack.train.ReduceLROnPlateau", "scheduler_monitor": "val_loss",
                 "scheduler_args": {"mode": "min", "factor": schedule["factor"], "patience": schedule["patience"],
                                    "threshold": tr["early_stopping"]["min_rel_improvement"],
                                    "threshold_mode": "rel", "cooldown": 0, "min_lr": schedule["min_lr"],
                                    "smoothing_factor": 0.0},
                 "outputs": [
                     {"_target_": "schnetpack.task.ModelOutput", "name": "energy",
                      "loss_fn": {"_target_": "torch.nn.MSELoss"},
                      "loss_weight": tr["loss_weights"]["energy"] / n_atoms ** 2,
                      "metrics": {"mae": {"_target_": "torchmetrics.regression.MeanAbsoluteError"}}},
                     {"_target_": "schnetpack.task.ModelOutput", "name": "forces",
                      "loss_fn": {"_target_": "torch.nn.MSELoss"}, "loss_weight": tr["loss_weights"]["forces"],
                      "metrics": {"mae": {"_target_": "torchmetrics.regression.MeanAbsoluteError"}}}]},
        "model": {"_target_": "schnetpack.model.NeuralNetworkPotential",
                  "input_modules": [{"_target_": "schnetpack.atomistic.PairwiseDistances"}],
                  "representation": {"_target_": "schnetpack.representation.PaiNN",
                                     "n_atom_basis": model_cfg["n_atom_basis"],
                                     "n_interactions": model_cfg["n_interactions"],
                                     "radial_basis": {"_target_": "schnetpack.nn.radial.GaussianRBF",
                                                      "n_rbf": model_cfg["n_rbf"], "cutoff": cutoff},
                                     "cutoff_fn": {"_target_": "schnetpack.nn.cutoff.CosineCutoff",
                                                   "cutoff": cutoff}},
                  "output_modules": [{"_target_": "schnetpack.atomistic.Atomwise", "output_key": "energy",
                                      "n_in": model_cfg["n_atom_basis"], "aggregation_mode": "sum"},
                                     {"_target_": "schnetpack.atomistic.Forces", "energy_key": "energy",
                                      "force_key": "forces"}],
                  "postprocessors": [{"_target_": "schnetpack.transform.CastTo64"},
                                     {"_target_": "schnetpack.transform.AddOffsets", "property": "energy",
                                      "add_mean": True}]},
        "data": {"_target_": "schnetpack.data.AtomsDataModule", "datapath": str(db), "split_file": str(split),
                 "batch_size": tr["batch_size"], "val_batch_size": 16, "test_batch_size": 16,
                 "num_train": n_train, "num_val": n_val, "num_test": None,
                 "num_workers": 0, "num_val_workers": 0, "num_test_workers": 0, "train_sampler_cls": None,
                 "distance_unit": "Ang", "property_units": {"energy": "eV", "forces": "eV/Ang"},
                 "transforms": [{"_target_": "schnetpack.transform.RemoveOffsets", "property": "energy",
                                 "remove_mean": True},
                                {"_target_": "schnetpack.transform.MatScipyNeighborList", "cutoff": cutoff},
                                {"_target_": "schnetpack.transform.CastTo32"}]},
    }


def run_spktrain(frames, n_train: int, n_val: int, epochs: int, model_cfg: dict, tr: dict, threads: int,
                 seed: int, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "data.db"
    if not db.exists():
        write_spk_database(frames, db)
    split = workdir / "split.npz"
    np.savez(split, train_idx=np.arange(n_train), val_idx=np.arange(n_train, n_train + n_val),
             test_idx=np.arange(n_train + n_val, len(frames)))
    run_dir = workdir / f"run{time.monotonic_ns()}"
    timer = run_dir / "epochs.json"
    cfg_dir = run_dir / "cfg"
    cfg_dir.mkdir(parents=True)
    cfg = spk_config(db=db, split=split, run_dir=run_dir, timer_path=timer, model_cfg=model_cfg, tr=tr,
                     n_atoms=len(frames[0]), epochs=epochs, n_train=n_train, n_val=n_val, seed=seed)
    (cfg_dir / "bench.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # spktrain's final test step reloads its Lightning checkpoint with torch.load's default weights_only=True
    # (torch >= 2.6), which refuses schnetpack's pickled model; the variable restores the old default.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    spktrain = Path(sys.executable).with_name("spktrain")
    t0 = time.perf_counter()
    proc = subprocess.run([str(spktrain), "--config-dir", str(cfg_dir), "--config-name", "bench"], cwd=run_dir,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"spktrain failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rows = json.loads(timer.read_text())
    best = run_dir / "spk" / "best_model"
    return {"epochs": rows, "process_wall_s": wall, "best_model": str(best)}


def run_workflow_trainer(frames, n_train: int, n_val: int, epochs: int, model_cfg: dict, tr: dict, threads: int,
                         seed: int) -> dict:
    torch.set_num_threads(threads)
    train_frames, val_frames = frames[:n_train], frames[n_train:n_train + n_val]
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = models.build_model(**model_cfg)
    models.set_energy_offset(model, mean_energy_per_atom(train_frames))
    training = copy.deepcopy(tr)
    steps_per_epoch = n_train // training["batch_size"]
    training.update(max_steps=epochs * steps_per_epoch, val_interval=steps_per_epoch, threads=threads)
    training["early_stopping"] = {"patience": 10 ** 6, "min_rel_improvement": training["early_stopping"][
        "min_rel_improvement"]}
    settings = TrainSettings.from_config(training)
    trainer = Trainer(model, StructureSet(train_frames, model_cfg["cutoff"]),
                      StructureSet(val_frames, model_cfg["cutoff"]), settings, settings.lr, seed)
    val_cpu = [0.0]
    validate = trainer.validate

    def timed_validate():  # validation CPU time, subtracted like the spktrain callback does
        c = time.process_time()
        try:
            return validate()
        finally:
            val_cpu[0] += time.process_time() - c

    trainer.validate = timed_validate
    cpu0 = time.process_time()
    trainer.fit()
    train_cpu = time.process_time() - cpu0 - val_cpu[0]
    wall = time.perf_counter() - t0 + startup_seconds()
    model.load_state_dict(trainer.best_state)
    return {"train_s": trainer.wall_time, "train_cpu_s": train_cpu, "process_wall_s": wall, "epochs": trainer.epoch,
            "steps": trainer.step, "model": model}


def env_with_src() -> dict:
    """The environment with the package's source first on the path, keeping what was there (a lent GPU machine
    has the wheels it lacks on PYTHONPATH, benchmarks/device/gpu_check.sh)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                                      os.environ.get("PYTHONPATH")]))}


def startup_seconds() -> float:
    """Interpreter start + imports of the training module, so process wall times compare with spktrain's."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlp_transfer.train"], check=True,
                   env=env_with_src())
    return time.perf_counter() - t0


def test_errors(model, frames, cutoff: float) -> dict:
    energies, forces = predict(model, frames, cutoff)
    return error_metrics([a.get_potential_energy() for a in frames], energies, [len(a) for a in frames],
                         [a.get_forces() for a in frames], forces)


def bench_training(args, results: dict) -> None:
    cfg = load_default_config()
    model_cfg, tr = cfg["model"], cfg["training"]
    n_train, n_val, n_test, epochs = args.train_frames, args.val_frames, args.test_frames, args.epochs
    frames = make_frames(n_train + n_val + n_test, seed=1)
    test = frames[n_train + n_val:]
    n_atoms = len(frames[0])
    steps_per_epoch = n_train // tr["batch_size"]
    work = Path(tempfile.mkdtemp(prefix="bench_spk_"))
    ours, spk = [], []
    try:
        for r in range(args.repeats):
            # interleaved: workflow, spktrain, workflow, spktrain, ...
            w = run_workflow_trainer(frames, n_train, n_val, epochs, model_cfg, tr, args.threads, seed=r)
            w_err = test_errors(w.pop("model"), test, model_cfg["cutoff"])
            s = run_spktrain(frames, n_train, n_val, epochs, model_cfg, tr, args.threads, r, work)
            s_err = test_errors(models.load_model(s["best_model"]), test, model_cfg["cutoff"])
            # epoch 0 of spktrain includes Lightning's first-epoch set-up; both means are over all epochs
            s_train = sum(row["train_s"] for row in s["epochs"])
            ours.append({"s_per_epoch": w["train_s"] / w["epochs"], "cpu_s_per_epoch": w["train_cpu_s"] / w["epochs"],
                         "process_wall_s": w["process_wall_s"],
                         **{f"test_{k}": v for k, v in w_err.items()}})
            spk.append({"s_per_epoch": s_train / len(s["epochs"]),
                        "cpu_s_per_epoch": sum(row["train_cpu_s"] for row in s["epochs"]) / len(s["epochs"]),
                        "s_per_epoch_after_first": (sum(row["train_s"] for row in s["epochs"][1:])
                                                    / max(1, len(s["epochs"]) - 1)),
                        "val_s_per_epoch": sum(row["val_s"] for row in s["epochs"]) / len(s["epochs"]),
                        "process_wall_s": s["process_wall_s"], **{f"test_{k}": v for k, v in s_err.items()}})
            print(f"training repeat {r + 1}: workflow {ours[-1]['s_per_epoch']:.3f} s/epoch "
                  f"({ours[-1]['cpu_s_per_epoch']:.3f} CPU s/epoch, F MAE {w_err['force_mae_mev_ang']:.1f}), "
                  f"spktrain {spk[-1]['s_per_epoch']:.3f} s/epoch ({spk[-1]['cpu_s_per_epoch']:.3f} CPU s/epoch, "
                  f"(F MAE {s_err['force_mae_mev_ang']:.1f}); {cpu_pressure()}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    atoms_per_epoch = steps_per_epoch * tr["batch_size"] * n_atoms

    def summary(rows):
        out = {key: spread([row[key] for row in rows]) for key in rows[0]}
        out["atoms_per_s"] = spread([atoms_per_epoch / row["s_per_epoch"] for row in rows])
        out["atoms_per_cpu_s"] = spread([atoms_per_epoch / row["cpu_s_per_epoch"] for row in rows])
        return out

    results["training"] = {
        "setup": {"n_train": n_train, "n_val": n_val, "n_test": n_test, "epochs": epochs, "n_atoms": n_atoms,
                  "batch_size": tr["batch_size"], "steps_per_epoch": steps_per_epoch, "threads": args.threads,
                  "model": model_cfg, "repeats": args.repeats},
        "workflow": summary(ours), "spktrain": summary(spk),
        "speedup_s_per_epoch": spread([b["s_per_epoch"] / a["s_per_epoch"] for a, b in zip(ours, spk)]),
        "speedup_cpu_s_per_epoch": spread([b["cpu_s_per_epoch"] / a["cpu_s_per_epoch"] for a, b in zip(ours, spk)]),
        "speedup_process_wall": spread([b["process_wall_s"] / a["process_wall_s"] for a, b in zip(ours, spk)]),
    }


# -- ablation: where a training step's time goes, and each speed-up idea -----------------------------------
def bench_ablation(args, results: dict) -> None:
    """Step time of the workflow's training step, its parts, and variants (each idea measured alone)."""
    cfg = load_default_config()
    model_cfg, tr = cfg["model"], cfg["training"]
    frames = make_frames(args.train_frames, seed=2)
    n_steps = args.ablation_steps
    torch.set_num_threads(args.threads)

    def new_model():
        torch.manual_seed(0)
        m = models.build_model(**model_cfg)
        models.set_energy_offset(m, mean_energy_per_atom(frames))
        return m

    t0 = time.perf_counter()
    data = StructureSet(frames, model_cfg["cutoff"])
    setup_matscipy = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    orders = [rng.choice(len(frames), tr["batch_size"], replace=False).tolist() for _ in range(n_steps)]

    def loop(model, batches, parts=False, no_cast64=False, wall=False):
        """ms per step: process CPU time (robust to other jobs' load on one thread), or wall time."""
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        if no_cast64:
            model.postprocessors = torch.nn.ModuleList(
                [p for p in model.postprocessors if not type(p).__name__ == "CastTo64"])
        split = {"collate": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        clock = time.perf_counter if wall else time.process_time
        start = clock()
        for i in range(n_steps):
            a = clock()
            batch = batches(i)
            b = clock()
            pred = model(batch)
            e, f = _loss_terms(pred, batch)
            loss = 10.0 * (e ** 2).mean() + (f ** 2).mean()
            c = clock()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            d = clock()
            opt.step()
            g = clock()
            if parts:
                for key, dt in zip(split, (b - a, c - b, d - c, g - d)):
                    split[key] += dt
        total = clock() - start
        return total / n_steps * 1000, {k: v / n_steps * 1000 for k, v in split.items()}

    def collate(i):
        return data.batch(orders[i])

    cache = {}

    def precollated(i):  # an upper bound of what caching collated batches could save
        key = tuple(orders[i])
        if key not in cache:
            cache[key] = data.batch(orders[i])
        return {k: v.clone() for k, v in cache[key].items()}

    variants = {
        "workflow step": lambda: loop(new_model(), collate, parts=True),
        "precollated batches": lambda: loop(new_model(), precollated),
        "no CastTo64 in training": lambda: loop(new_model(), collate, no_cast64=True),
    }
    if args.threads == 1 and (os.cpu_count() or 1) >= 2:
        def two_threads():
            torch.set_num_threads(2)
            try:  # wall time: CPU time adds both threads up
                one = loop(new_model(), collate, wall=True)[0]
                return loop(new_model(), collate, wall=True)[0] / one * statistics.median(
                    times["workflow step"] or [one]), {}
            finally:
                torch.set_num_threads(args.threads)
        variants["2 threads (wall ratio vs 1 thread, scaled)"] = two_threads
    if not args.quick and not args.skip_compile:
        def compiled():
            m = new_model()
            compile_representation(m)
            try:
                loop(m, collate)  # compile outside the timing
                return loop(m, collate)
            except Exception as exc:  # double backward through compiled graphs is unsupported in places
                return None, {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        variants["torch.compile(representation)"] = compiled
    times = {name: [] for name in variants}
    parts = []
    errors = {}
    for _ in range(args.repeats):
        for name, fn in variants.items():  # interleaved
            ms, extra = fn()
            if ms is None:
                errors[name] = extra["error"]
                continue
            times[name].append(ms)
            if name == "workflow step":
                parts.append(extra)
    base = statistics.median(times["workflow step"])
    out = {"step_ms": {k: spread(v) for k, v in times.items() if v},
           "speedup_vs_workflow_step": {k: base / statistics.median(v) for k, v in times.items() if v},
           "errors": errors,
           "parts_ms": {k: spread([p[k] for p in parts]) for k in parts[0]}}
    out["clock"] = "process CPU time per step (2-thread variant: wall-time ratio of 2 vs 1 thread applied)"
    # Validation cost: one validation pass of n_val frames vs the training steps between validations.
    val = StructureSet(make_frames(args.val_frames, seed=3), model_cfg["cutoff"])
    m = new_model()
    settings = TrainSettings.from_config({**tr, "threads": args.threads})
    trainer = Trainer(m, data, val, settings, 1e-3, 0)
    vt = []
    for _ in range(max(3, args.repeats)):
        a = time.perf_counter()
        trainer.validate()
        vt.append(time.perf_counter() - a)
    out["validation"] = {"n_val": args.val_frames, "s_per_validation": spread(vt),
                         "val_interval": tr["val_interval"],
                         "fraction_of_training_time": statistics.median(vt) / (tr["val_interval"] * base / 1000)}
    # Neighbour lists once per dataset: setup cost of matscipy vs vesin (whole training set).
    out["neighbour_list_setup_s"] = {"matscipy": setup_matscipy}
    try:
        import vesin

        a = time.perf_counter()
        for atoms in frames:
            vesin.NeighborList(cutoff=model_cfg["cutoff"], full_list=True).compute(
                points=atoms.positions, box=atoms.cell.array, periodic=True, quantities="ijS")
        out["neighbour_list_setup_s"]["vesin"] = time.perf_counter() - a
        a = time.perf_counter()
        from mlp_transfer.batching import structure_inputs

        for i, atoms in enumerate(frames):
            structure_inputs(atoms, i, model_cfg["cutoff"])
        out["neighbour_list_setup_s"]["matscipy_again"] = time.perf_counter() - a
    except ImportError:
        out["neighbour_list_setup_s"]["vesin"] = None
    out["n_steps"] = n_steps
    results["ablation"] = out


# -- inference -------------------------------------------------------------------------------------------
def bench_inference(args, results: dict) -> None:
    from schnetpack.interfaces import SpkCalculator
    from schnetpack.transform import MatScipyNeighborList

    cfg = load_default_config()
    model_cfg = cfg["model"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = models.build_model(**model_cfg).eval()
    tmp = Path(tempfile.mkdtemp(prefix="bench_inf_"))
    path = tmp / "model.pt"
    models.save_model(model, path)
    out = {}
    try:
        for supercell in args.supercells:
            frames = make_frames(args.inference_frames, supercell=supercell, seed=4)
            n_atoms = len(frames[0])
            calc = SpkCalculator(str(path), neighbor_list=MatScipyNeighborList(cutoff=model_cfg["cutoff"]),
                                 energy_unit="eV", position_unit="Angstrom")
            wf, ase_rates, model_only = [], [], []
            structures = StructureSet(frames, model_cfg["cutoff"], with_targets=False)
            for _ in range(args.repeats):
                a = time.perf_counter()
                predict(model, frames, model_cfg["cutoff"], batch_size=8)  # the workflow's evaluate path
                wf.append(len(frames) * n_atoms / (time.perf_counter() - a))
                a = time.perf_counter()
                for batch in structures.batches(8):
                    model(batch)
                model_only.append(len(frames) * n_atoms / (time.perf_counter() - a))
                a = time.perf_counter()
                for atoms in frames:
                    atoms = atoms.copy()
                    atoms.calc = calc
                    atoms.get_forces()
                ase_rates.append(len(frames) * n_atoms / (time.perf_counter() - a))
            out[str(n_atoms)] = {"workflow_predict_atoms_per_s": spread(wf),
                                 "model_only_atoms_per_s": spread(model_only),
                                 "spkcalculator_atoms_per_s": spread(ase_rates),
                                 "ratio_workflow_vs_spkcalculator": spread(
                                     [a / b for a, b in zip(wf, ase_rates)]),
                                 "n_structures": len(frames)}
            print(f"inference {n_atoms} atoms: workflow {fmt(out[str(n_atoms)]['workflow_predict_atoms_per_s'], 0)}"
                  f" atoms/s, SpkCalculator {fmt(out[str(n_atoms)]['spkcalculator_atoms_per_s'], 0)}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["inference"] = {"threads": args.threads, **out}


# -- architectures: what a higher-order equivariant model costs per training step -----------------------------
def bench_architectures(args, results: dict) -> None:
    """CPU ms per training step (forward, forces, double backward, Adam) of SO3net at each lmax vs PaiNN, with
    the workflow's factorized convolution and, as the baseline, schnetpack's own (``*_schnetpack``)."""
    model_cfg = dict(yaml.safe_load(Path(args.arch_config).read_text())["model"])
    model_cfg.pop("lmax", None)
    model_cfg["architecture"] = "painn"
    if args.quick:
        model_cfg.update(n_atom_basis=8, n_interactions=1, cutoff=4.0)
    frames = make_frames(args.arch_batch, seed=5)
    torch.set_num_threads(args.threads)
    batch = StructureSet(frames, model_cfg["cutoff"]).batch(range(len(frames)))
    on_cuda = args.device == "cuda"
    batch = {k: v.to(args.device) for k, v in batch.items()}
    variants = {"painn": (model_cfg, None)}
    for lmax in args.lmax:
        for implementation, suffix in (("factorized", ""), ("schnetpack", "_schnetpack")):
            variants[f"so3net_lmax{lmax}{suffix}"] = ({**model_cfg, "architecture": "so3net", "lmax": lmax},
                                                      implementation)
    trained = {}
    for name, (cfg, implementation) in variants.items():
        torch.manual_seed(0)
        model = models.build_model(**cfg)
        if implementation:
            set_so3_convolutions(model, implementation)
        models.set_energy_offset(model, mean_energy_per_atom(frames))  # a new CPU tensor: before the move
        model.to(args.device)
        trained[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-4))

    # CPU time on the CPU (robust to other load); wall time between synchronisations on a GPU
    clock = time.perf_counter if on_cuda else time.process_time

    def step_ms(name: str) -> float:
        model, opt = trained[name]
        if on_cuda:
            torch.cuda.synchronize()
        start = clock()
        for _ in range(args.arch_steps):
            e_err, f_err = _loss_terms(model(dict(batch)), batch)
            loss = 10.0 * (e_err ** 2).mean() + (f_err ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_cuda:
            torch.cuda.synchronize()
        return 1000 * (clock() - start) / args.arch_steps

    for name in variants:  # untimed first steps: first-call allocations
        step_ms(name)
    times = {name: [] for name in variants}
    time_kind = "wall" if on_cuda else "CPU"
    for r in range(args.repeats):
        for name in variants:  # interleaved
            times[name].append(step_ms(name))
        print(f"architectures repeat {r + 1}: " + ", ".join(f"{n} {t[-1]:.0f} {time_kind} ms/step"
                                                           for n, t in times.items())
              + f"; {cpu_pressure()}", flush=True)
    out = {name: {f"{time_kind.lower()}_ms_per_step": spread(t), "n_parameters": models.count_parameters(trained[name][0]),
                  "ratio_vs_painn": spread([a / b for a, b in zip(t, times["painn"])])}
           for name, t in times.items()}
    for name, t in times.items():
        if f"{name}_schnetpack" in times:  # side by side with its baseline, repeat by repeat
            out[name]["speedup_vs_schnetpack_convolution"] = spread(
                [b / a for a, b in zip(t, times[f"{name}_schnetpack"])])
    results["architectures"] = {"model": model_cfg, "n_structures": len(frames), "n_atoms": len(frames[0]),
                                "steps": args.arch_steps, "threads": args.threads, "device": args.device,
                                "time": time_kind,
                                "cuda_device": torch.cuda.get_device_name(0) if on_cuda else None,
                                "variants": out}


# -- MD --------------------------------------------------------------------------------------------------
def model_call_cpu_ms(path: Path, atoms, cutoff: float, md_cfg: dict, n_calls: int, compile: bool = False):
    """A function returning CPU ms of one bare energy+forces call of the saved model on ``atoms``.

    ``compile``: the representation through ``torch.compile`` as ``md.compile`` does (compiled here, outside
    the timing).
    """
    from schnetpack.interfaces import AtomsConverter
    from schnetpack.transform import MatScipyNeighborList

    dtype = torch.float32 if int(md_cfg.get("precision", 32)) == 32 else torch.float64
    model = models.load_model(path).to(dtype).eval().requires_grad_(False)
    if compile:
        compile_representation(model)
    system = atoms.copy()
    system.rattle(0.05, seed=1)  # thermal-like displacements, as in MD
    inputs = AtomsConverter(neighbor_list=MatScipyNeighborList(cutoff=cutoff), dtype=dtype)(system)
    model({k: v.clone() for k, v in inputs.items()})

    def measure() -> float:
        model({k: v.clone() for k, v in inputs.items()})
        start = time.process_time()
        for _ in range(n_calls):
            model({k: v.clone() for k, v in inputs.items()})
        return 1e3 * (time.process_time() - start) / n_calls

    return measure


def md_variant_key(replicas: int, compiled: bool) -> str:
    return f"workflow_{replicas}_replica{'s' if replicas > 1 else ''}{'_compiled' if compiled else ''}"


def bench_md(args, results: dict) -> None:
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from schnetpack.interfaces import SpkCalculator
    from schnetpack.transform import MatScipyNeighborList

    from mlp_transfer import md as wmd
    from mlp_transfer.stability import nearest_neighbour_distance

    cfg = load_default_config()
    model_cfg, md_cfg = cfg["model"], cfg["md"]
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_md_"))
    # A briefly trained model (MD of an untrained one may fail at once and stop early).
    frames = make_frames(args.train_frames + 4, seed=5)
    w = run_workflow_trainer(frames, args.train_frames, 4, max(2, args.epochs // 2), model_cfg,
                             cfg["training"], args.threads, seed=0)
    path = tmp / "model.pt"
    models.save_model(w["model"], path)
    temperature = float(md_cfg["temperatures"][0])
    dt = float(md_cfg["timestep_fs"])
    out = {}
    compile_s = []  # compile time of the first compiled calculator (later ones reuse the compiled graph)
    compile_modes = (False, True) if (not args.skip_compile and not args.quick) or args.md_compile else (False,)
    try:
        for supercell in args.supercells:
            n_steps = args.md_steps if supercell <= 2 else max(5, args.md_steps // 8)
            a = wmd.lattice_constant(ELEMENT)
            atoms = wmd.start_cell(ELEMENT, supercell, a)
            nn = nearest_neighbour_distance(a)
            variants = [(r, c) for c in compile_modes for r in [1] + [r for r in args.replicas if r > 1]]
            rates = {md_variant_key(r, c): [] for r, c in variants}
            rates["ase_spkcalculator"] = []
            # CPU ms per step (stable on a shared machine, unlike wall time) and the bound of both engines:
            # one bare energy+forces call of the same model on the same cell (exact-cutoff neighbour list).
            # On CUDA the CPU time of the host process says nothing about the step: wall time only there.
            on_cpu = args.device == "cpu"
            cpu_ms = {md_variant_key(1, c): [] for c in compile_modes}
            cpu_ms.update({"ase_spkcalculator": [], "model_call": []})
            n_calls = max(10, n_steps // 2)
            bare = model_call_cpu_ms(path, atoms, model_cfg["cutoff"], md_cfg, n_calls) if on_cpu else None
            if on_cpu and True in compile_modes:
                bare_compiled = model_call_cpu_ms(path, atoms, model_cfg["cutoff"], md_cfg, n_calls, compile=True)
                cpu_ms["model_call_compiled"] = []
            for rep in range(args.repeats):
                if on_cpu:
                    cpu_ms["model_call"].append(bare())
                    if True in compile_modes:
                        cpu_ms["model_call_compiled"].append(bare_compiled())
                for r, compiled in variants:
                    settings = wmd.MDSettings.from_config({**md_cfg, "n_steps": n_steps, "replicas": r,
                                                           "supercell": supercell, "threads": args.threads,
                                                           "temperatures": [temperature], "device": args.device,
                                                           "compile": compiled})
                    calc = wmd.make_calculator(model_path=path, element=ELEMENT, cutoff=model_cfg["cutoff"],
                                               settings=settings)
                    if compiled:  # compile (or reuse this process's compiled graph) outside the timing
                        wmd.simulate(calc, atoms, temperature, dataclasses.replace(settings, n_steps=2),
                                     tmp / "warmup.h5", nn)
                        if not calc.compiled:
                            raise RuntimeError("torch.compile failed in the MD benchmark (see the log)")
                        compile_s.append(calc.compile_seconds)
                    records = wmd.simulate(calc, atoms, temperature, settings, tmp / f"md{rep}_{r}.h5", nn)
                    key = md_variant_key(r, compiled)
                    rates[key].append(records[0]["steps_per_s"])
                    if key in cpu_ms and on_cpu:
                        cpu_ms[key].append(1e3 * records[0]["cpu_s"] / n_steps)
                # ASE baseline: Langevin + SpkCalculator, same model, precision, timestep and temperature
                spk = SpkCalculator(str(path), neighbor_list=MatScipyNeighborList(cutoff=model_cfg["cutoff"]),
                                    energy_unit="eV", position_unit="Angstrom", device=args.device,
                                    dtype=torch.float32 if int(md_cfg.get("precision", 32)) == 32 else torch.float64)
                system = atoms.copy()
                system.calc = spk
                MaxwellBoltzmannDistribution(system, temperature_K=temperature, rng=np.random.default_rng(rep))
                friction = 1.0 / (float(md_cfg["thermostat"]["time_constant_fs"]) * units.fs)
                dyn = Langevin(system, dt * units.fs, temperature_K=temperature, friction=friction,
                               rng=np.random.default_rng(rep))
                dyn.run(2)  # first force call outside the timing, like the workflow's simulate()
                start, start_cpu = time.perf_counter(), time.process_time()
                dyn.run(n_steps)
                rates["ase_spkcalculator"].append(n_steps / (time.perf_counter() - start))
                if on_cpu:
                    cpu_ms["ase_spkcalculator"].append(1e3 * (time.process_time() - start_cpu) / n_steps)
            n_atoms = len(atoms)
            entry = {"n_steps": n_steps, "timestep_fs": dt}
            ase = rates["ase_spkcalculator"]
            for key, values in rates.items():
                n_rep = 1 if key == "ase_spkcalculator" else int(key.split("_")[1])
                entry[key] = {"steps_per_s": spread(values),
                              "ns_per_day": spread([v * dt * 86400 / 1e6 for v in values]),
                              "replica_steps_per_s": spread([v * n_rep for v in values])}
                if key != "ase_spkcalculator":  # replica-steps per second over ASE's steps per second
                    entry[f"ratio_{key}_vs_ase"] = spread([v * n_rep / b for v, b in zip(values, ase)])
            entry["ratio_workflow_vs_ase"] = entry["ratio_workflow_1_replica_vs_ase"]
            if compile_s:
                entry["first_compile_s"] = compile_s[0]
            if on_cpu:
                entry["cpu_ms_per_step"] = {key: spread(values) for key, values in cpu_ms.items()}
                for key in cpu_ms:
                    if key.startswith("workflow_"):
                        entry[f"ratio_{key}_vs_ase_cpu"] = spread(
                            [b / a for a, b in zip(cpu_ms[key], cpu_ms["ase_spkcalculator"])])
                entry["ratio_workflow_vs_ase_cpu"] = entry["ratio_workflow_1_replica_vs_ase_cpu"]
                # No engine can step faster than one model call: ASE's step over that call bounds any speed-up
                # of an engine that runs this model as it is; a compiled model moves the bound
                for call in ("model_call", "model_call_compiled"):
                    if call in cpu_ms:
                        entry[f"ceiling_ratio_vs_ase_cpu{call[len('model_call'):]}"] = spread(
                            [b / m for b, m in zip(cpu_ms["ase_spkcalculator"], cpu_ms[call])])
            out[str(n_atoms)] = entry
            print(f"MD {n_atoms} atoms: workflow {fmt(entry['workflow_1_replica']['steps_per_s'])} steps/s, "
                  f"ASE {fmt(entry['ase_spkcalculator']['steps_per_s'])} steps/s; {cpu_pressure()}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["md"] = {"threads": args.threads, "temperature_K": temperature, "precision": md_cfg.get("precision"),
                     "device": args.device, "cuda_available": torch.cuda.is_available(),
                     "cuda_device": torch.cuda.get_device_name(0) if args.device == "cuda" else None, **out}


# -- planning --------------------------------------------------------------------------------------------
def bench_planning(args, results: dict) -> None:
    from mlp_transfer.plan import plan

    times, result = [], None
    for _ in range(args.plan_repeats):
        result = plan(str(args.plan_config), str(REPO / "workflow" / "profiles" / "slurm"), directory=str(REPO))
        times.append(result.seconds)
    results["planning"] = {"config": str(args.plan_config), "dry_run_s": spread(times),
                           "jobs": result.total_jobs, "slurm_jobs": result.submitted_jobs,
                           "gpu_jobs": result.gpu_jobs}


# -- job startup -----------------------------------------------------------------------------------------
# Runs in a fresh interpreter per rule script: Snakemake's script preamble and the script's top-level imports
# (which pull in what the modules import at top level), plus schnetpack for the rules whose functions import it
# inside (LAZY_SCHNETPACK_RULES).
_STARTUP_PROBE = """
import ast, sys
from pathlib import Path
import snakemake.script
tree = ast.parse(Path(sys.argv[1]).read_text())
exec(compile(ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], []), "imports", "exec"))
if sys.argv[2] == "1":
    import schnetpack
"""
LAZY_SCHNETPACK_RULES = {"properties_target"}  # mlp_transfer.properties imports schnetpack to load the model


def rule_scripts() -> dict[str, Path]:
    """Rule name -> the script it runs, from the workflow's rule definitions."""
    from mlp_transfer.plan import rule_bodies

    scripts = {}
    for path, name, body in rule_bodies(REPO / "Snakefile"):
        script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
        if script:
            scripts[name] = (path.parent / script.group(1)).resolve()
    return scripts


def startup_cpu_seconds(script: Path, with_schnetpack: bool = False) -> float:
    """CPU seconds a fresh interpreter spends on a rule script's preamble and imports (see _STARTUP_PROBE)."""
    return resource_cpu_of([sys.executable, "-c", _STARTUP_PROBE, str(script), str(int(with_schnetpack))])


def bench_startup(args, results: dict) -> None:
    from mlp_transfer.plan import plan

    with tempfile.TemporaryDirectory() as empty:  # nothing done yet: the whole default DAG
        counts = {name: r.jobs for name, r in plan(str(REPO / "config" / "config.yaml"), directory=empty).rules.items()}
    scripts = rule_scripts()
    probes = sorted({(scripts[name], name in LAZY_SCHNETPACK_RULES) for name in counts if name in scripts})
    cpu_of: dict[tuple, list] = {}
    for _ in range(args.repeats):  # probes interleaved across repeats
        for script, lazy in probes:
            cpu_of.setdefault((script, lazy), []).append(startup_cpu_seconds(script, lazy))
    bare = [resource_cpu_of([sys.executable, "-c", "pass"]) for _ in range(args.repeats)]
    # What the model jobs' startup is made of: each library alone, in a fresh interpreter.
    libraries = {lib: spread([resource_cpu_of([sys.executable, "-c", f"import {lib}"]) for _ in range(args.repeats)])
                 for lib in ("torch", "pytorch_lightning", "schnetpack")}
    rows = {}
    for name, jobs in sorted(counts.items()):
        if name in scripts:
            cpu = spread(cpu_of[(scripts[name], name in LAZY_SCHNETPACK_RULES)])
            rows[name] = {"jobs": jobs, "script": scripts[name].name, "cpu_s_per_job": cpu,
                          "cpu_s_total": jobs * cpu["median"]}
    results["startup"] = {"config": "config/config.yaml", "rules": rows, "bare_interpreter_cpu_s": spread(bare),
                          "library_import_cpu_s": libraries,
                          "jobs": sum(r["jobs"] for r in rows.values()),
                          "cpu_s_total": sum(r["cpu_s_total"] for r in rows.values())}


def resource_cpu_of(cmd: list[str]) -> float:
    """CPU seconds (user + system) of one child process, interpreter start included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, env=env_with_src())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# -- main job wall time (read, not run) -------------------------------------------------------------------
def main_job_wall_time() -> dict:
    """Sum of per-rule wall times from a finished default run's Snakemake benchmark files, if present."""
    files = sorted((REPO / "results" / "benchmarks").rglob("*.tsv")) if (REPO / "results" / "benchmarks").is_dir() \
        else []
    if not files:
        return {"status": "no default run's benchmark files found (results/benchmarks/*.tsv); the lead measures "
                          "the default main job's wall time with `time make run`"}
    total = 0.0
    for f in files:
        lines = f.read_text().splitlines()
        if len(lines) > 1:
            total += float(lines[1].split("\t")[0])
    return {"status": "per-job wall times found in results/benchmarks (possibly a partial run; summed, not the "
                      "critical path; the lead measures the main job with `time make run`)",
            "n_jobs": len(files), "sum_job_s": total}


# -- report ----------------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"# Benchmarks ({results['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; threads {results['args']['threads']}; "
             f"CPU pressure at start: `{results['cpu_pressure_start']}`, at end: `{results['cpu_pressure_end']}`.",
             "Figures: median [min, max] over repeats, variants interleaved.", ""]
    if "training" in results:
        t = results["training"]
        s = t["setup"]
        lines += ["## Training (workflow Trainer vs spktrain)", "",
                  f"{s['n_train']} train / {s['n_val']} val frames of {s['n_atoms']} atoms, batch {s['batch_size']}, "
                  f"{s['epochs']} epochs, PaiNN {s['model']['n_atom_basis']}x{s['model']['n_interactions']}, "
                  f"cutoff {s['model']['cutoff']} Å, {s['threads']} thread(s), {s['repeats']} repeats.", "",
                  "| | workflow | spktrain | ratio |", "|---|---|---|---|",
                  f"| s/epoch (training only) | {fmt(t['workflow']['s_per_epoch'], 3)} | "
                  f"{fmt(t['spktrain']['s_per_epoch'], 3)} | {fmt(t['speedup_s_per_epoch'], 2)} |",
                  f"| CPU s/epoch (training only) | {fmt(t['workflow']['cpu_s_per_epoch'], 3)} | "
                  f"{fmt(t['spktrain']['cpu_s_per_epoch'], 3)} | {fmt(t['speedup_cpu_s_per_epoch'], 2)} |",
                  f"| atoms/s (wall) | {fmt(t['workflow']['atoms_per_s'], 0)} | {fmt(t['spktrain']['atoms_per_s'], 0)} | |",
                  f"| atoms per CPU s | {fmt(t['workflow']['atoms_per_cpu_s'], 0)} | "
                  f"{fmt(t['spktrain']['atoms_per_cpu_s'], 0)} | |",
                  f"| process wall time, s | {fmt(t['workflow']['process_wall_s'], 1)} | "
                  f"{fmt(t['spktrain']['process_wall_s'], 1)} | {fmt(t['speedup_process_wall'], 2)} |",
                  f"| test force MAE, meV/Å | {fmt(t['workflow']['test_force_mae_mev_ang'], 1)} | "
                  f"{fmt(t['spktrain']['test_force_mae_mev_ang'], 1)} | |",
                  f"| test energy MAE, meV/atom | {fmt(t['workflow']['test_energy_mae_mev_atom'], 2)} | "
                  f"{fmt(t['spktrain']['test_energy_mae_mev_atom'], 2)} | |", ""]
    if "ablation" in results:
        a = results["ablation"]
        lines += ["## Training step: breakdown and speed-up ideas", "", "| variant | ms/step | speed-up |",
                  "|---|---|---|"]
        for k, v in a["step_ms"].items():
            lines.append(f"| {k} | {fmt(v, 2)} | {a['speedup_vs_workflow_step'][k]:.2f} |")
        for k, v in a["errors"].items():
            lines.append(f"| {k} | failed: {v} | |")
        lines += ["", "| part of the workflow step | ms |", "|---|---|"]
        lines += [f"| {k} | {fmt(v, 2)} |" for k, v in a["parts_ms"].items()]
        v = a["validation"]
        nl = a["neighbour_list_setup_s"]
        lines += ["", f"Validation of {v['n_val']} frames: {fmt(v['s_per_validation'], 3)} s, "
                      f"{100 * v['fraction_of_training_time']:.1f}% of the {v['val_interval']} steps between "
                      f"validations. Neighbour lists for the whole training set (once per dataset): "
                      + ", ".join(f"{k} {x:.3f} s" for k, x in nl.items() if x is not None) + ".", ""]
    if "inference" in results:
        lines += ["## Inference (energy + forces)", "",
                  "| atoms | workflow predict, atoms/s | model only, atoms/s | SpkCalculator, atoms/s | ratio |",
                  "|---|---|---|---|---|"]
        for n, v in results["inference"].items():
            if isinstance(v, dict):
                lines.append(f"| {n} | {fmt(v['workflow_predict_atoms_per_s'], 0)} | "
                             f"{fmt(v['model_only_atoms_per_s'], 0)} | {fmt(v['spkcalculator_atoms_per_s'], 0)} | "
                             f"{fmt(v['ratio_workflow_vs_spkcalculator'], 2)} |")
        lines.append("")
    if "md" in results:
        md = results["md"]
        lines += [f"## MD ({md['temperature_K']:.0f} K, float{md['precision']}, {md['device']})", "",
                  "| atoms | engine | steps/s | ns/day | replica-steps/s | ratio vs ASE |", "|---|---|---|---|---|---|"]
        for n, v in md.items():
            if not isinstance(v, dict):
                continue
            for key in v:
                if key.startswith("workflow_") or key == "ase_spkcalculator":
                    ratio = fmt(v[f"ratio_{key}_vs_ase"], 2) if f"ratio_{key}_vs_ase" in v else ""
                    if ratio and not key.startswith("workflow_1_"):
                        ratio += " (replica-steps)"
                    lines.append(f"| {n} | {key} | {fmt(v[key]['steps_per_s'], 1)} | {fmt(v[key]['ns_per_day'], 2)} "
                                 f"| {fmt(v[key]['replica_steps_per_s'], 1)} | {ratio} |")
        compile_rows = [(n, v["first_compile_s"]) for n, v in md.items() if isinstance(v, dict)
                        and "first_compile_s" in v]
        if compile_rows:
            lines += ["", "`md.compile` variants: compiled outside the timing; the first compilation of this "
                          "process took " + ", ".join(f"{s:.1f} s ({n} atoms)" for n, s in compile_rows)
                      + " (later calculators reuse the compiled graph)."]
        cpu_rows = [(n, v) for n, v in md.items() if isinstance(v, dict) and "cpu_ms_per_step" in v]
        if cpu_rows:
            lines += ["", "CPU time per step (robust to other load on the machine) and the bound of any engine, one "
                          "bare energy+forces call of the model (eager, and compiled as `md.compile` does):", "",
                      "| atoms | engine | CPU ms/step | ratio vs ASE (CPU) |", "|---|---|---|---|"]
        for n, v in cpu_rows:
            c = v["cpu_ms_per_step"]
            for key, values in c.items():
                if key.startswith("workflow_"):
                    ratio = fmt(v[f"ratio_{key}_vs_ase_cpu"], 2)
                elif key.startswith("model_call"):
                    ratio = "ceiling " + fmt(v["ceiling_ratio_vs_ase_cpu" + key[len("model_call"):]], 2)
                else:
                    ratio = ""
                lines.append(f"| {n} | {key} | {fmt(values, 2)} | {ratio} |")
        if md.get("cuda_device"):
            lines += ["", f"GPU: {md['cuda_device']}."]
        lines.append("")
    if "planning" in results:
        p = results["planning"]
        lines += ["## Planning", "", f"`snakemake -n` of {Path(p['config']).name}: {fmt(p['dry_run_s'], 2)} s, "
                                     f"{p['jobs']} jobs ({p['slurm_jobs']} SLURM, {p['gpu_jobs']} GPU).", ""]
    if "startup" in results:
        st = results["startup"]
        lines += ["## Job startup (default main job)", "",
                  f"CPU seconds each job pays before its own work (interpreter, Snakemake's script preamble, imports "
                  f"of its rule script; bare interpreter: {fmt(st['bare_interpreter_cpu_s'], 3)} s), times the jobs "
                  f"of the default DAG ({st['config']}):", "",
                  "| rule | script | jobs | CPU s per job | CPU s in all |", "|---|---|---|---|---|"]
        for name, r in sorted(st["rules"].items(), key=lambda kv: -kv[1]["cpu_s_total"]):
            lines.append(f"| {name} | {r['script']} | {r['jobs']} | {fmt(r['cpu_s_per_job'], 2)} | "
                         f"{r['cpu_s_total']:.0f} |")
        lines += [f"| all | | {st['jobs']} | | {st['cpu_s_total']:.0f} |", "",
                  "Each library alone (fresh interpreter, CPU s): " + ", ".join(
                      f"`import {lib}` {fmt(v, 2)}" for lib, v in st["library_import_cpu_s"].items())
                  + " (schnetpack imports pytorch_lightning, which imports torch).", ""]
    if "architectures" in results:
        a = results["architectures"]
        arch_model = a["model"]  # not ``m``: that is the machine above
        lines += ["## Training step: SO3net vs PaiNN", "",
                  f"{a['n_structures']} structures of {a['n_atoms']} atoms per step, {arch_model['n_atom_basis']} "
                  f"features x {arch_model['n_interactions']} interactions, cutoff {arch_model['cutoff']} Å, "
                  f"{arch_model['n_rbf']} radial functions, "
                  f"{a['threads']} thread(s), {a['steps']} steps per repeat; {a.get('time', 'CPU')} time"
                  + (f" on {a['cuda_device']}" if a.get("cuda_device") else "") + ".", "",
                  f"| model | parameters | {a.get('time', 'CPU')} ms/step | vs PaiNN | "
                  "speed-up vs schnetpack's convolution |",
                  "|---|---|---|---|---|"]
        for name, v in a["variants"].items():
            speedup = v.get("speedup_vs_schnetpack_convolution")
            ms = v.get("cpu_ms_per_step") or v["wall_ms_per_step"]
            lines.append(f"| {name} | {v['n_parameters']} | {fmt(ms, 0)} | "
                         f"{fmt(v['ratio_vs_painn'], 1)} | {fmt(speedup, 1) if speedup else ''} |")
        lines += ["", "so3net_lmaxL: the workflow's model (mlp_transfer.so3.FactorizedSO3Convolution); "
                  "so3net_lmaxL_schnetpack: the same weights with schnetpack's SO3Convolution.", ""]
    mj = results.get("main_job", {})
    lines += ["## Main job (default config)", "", mj.get("status", "") +
              (f": {mj['n_jobs']} jobs, {mj['sum_job_s']:.0f} s summed" if "sum_job_s" in mj else ""), ""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections (repeatable)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths, numbers meaningless")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads of every variant (config default: 1)")
    p.add_argument("--train-frames", type=int, default=20)
    p.add_argument("--val-frames", type=int, default=10)
    p.add_argument("--test-frames", type=int, default=10)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--ablation-steps", type=int, default=60)
    p.add_argument("--inference-frames", type=int, default=8)
    p.add_argument("--supercells", type=int, nargs="+", default=[2, 4], help="2: 64 atoms, 4: 512 atoms")
    p.add_argument("--md-steps", type=int, default=200, help="steps at 64 atoms (512 atoms: 1/8 of it)")
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="device of the MD section (both engines) and of architectures (wall time there); "
                        "the other sections run on the CPU")
    p.add_argument("--skip-compile", action="store_true",
                   help="leave out the torch.compile variants of the ablation and of MD (compilation takes minutes)")
    p.add_argument("--md-compile", action="store_true",
                   help="include the md.compile variants in MD even with --quick")
    p.add_argument("--arch-config", default=str(REPO / "config" / "mlearn.yaml"),
                   help="architectures: the config whose model (width, depth, cutoff, radial basis) both use")
    p.add_argument("--lmax", type=int, nargs="+", default=[1, 2, 3], help="architectures: SO3net lmax values")
    p.add_argument("--arch-batch", type=int, default=4, help="architectures: 64-atom structures per step")
    p.add_argument("--arch-steps", type=int, default=2, help="architectures: timed steps per repeat")
    p.add_argument("--plan-config", default=str(REPO / "config" / "paper.yaml"))
    p.add_argument("--plan-repeats", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "benchmarks"),
                   help="output stem: writes STEM.json and STEM.md")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device on this machine")
    if args.quick:
        args.repeats, args.train_frames, args.val_frames, args.test_frames = 1, 4, 2, 2
        args.epochs, args.ablation_steps, args.inference_frames = 1, 3, 1
        args.supercells, args.md_steps, args.replicas, args.plan_repeats = [1], 5, [1, 2], 1
        args.lmax, args.arch_batch, args.arch_steps = [1, 2], 1, 1
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    sections = args.only or list(SECTIONS)
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "cpu_pressure_start": cpu_pressure(),
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    runners = {"training": bench_training, "ablation": bench_ablation, "inference": bench_inference,
               "md": bench_md, "planning": bench_planning, "startup": bench_startup,
               "architectures": bench_architectures}
    for name in SECTIONS:
        if name in sections:
            t0 = time.perf_counter()
            runners[name](args, results)
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", flush=True)
    results["main_job"] = main_job_wall_time()
    results["cpu_pressure_end"] = cpu_pressure()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    text = markdown(results)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()
